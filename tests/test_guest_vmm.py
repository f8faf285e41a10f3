"""The CPU-emulated guest as a VMM drives it: register presets and get/set by name, console
lines, wall-clock and instruction limits, a run() that returns at each exit to the VMM, and
the errors of assembly sources and ELF files named where they are."""

import json
import struct

import pytest

from kvmpmu.cli.exitcodes import ExitCode
from tests.clihelpers import run_cli
from tests.guestprog import (
    LOAD,
    MAILBOX,
    engine,
    guest_workload,
    reports,
    run_asm,
    run_json,
    write,
)

pytest.importorskip("unicorn", reason="the `guest` extra (unicorn) is not installed")
pytest.importorskip("keystone", reason="the `guest` extra (keystone-engine) is not installed")

REPORT_PRESETS = """
        movz    x9, #0x0900, lsl #16
        mov     x0, #0xbad                // the default entry: the pc preset skips this
        str     x0, [x9]
        str     xzr, [x9, #8]
        .balign 0x100
start:                                    // 0x40080100
        movz    x9, #0x0900, lsl #16
        str     x0, [x9]
        str     x5, [x9]
        mov     x1, sp
        str     x1, [x9]
        mrs     x1, vbar_el1
        str     x1, [x9]
        mrs     x1, tpidr_el0
        str     x1, [x9]
        mrs     x1, currentel
        str     x1, [x9]
        str     xzr, [x9, #8]
"""


def test_register_presets_are_set_before_the_first_instruction(tmp_path):
    doc = run_asm(tmp_path, REPORT_PRESETS, """  regs:
    pc: 0x40080100
    x0: 0x1234
    X5: 0xffffffffffffffff
    sp: 0x40200000
    vbar_el1: 0x40081000
    tpidr_el0: 42
""")
    assert reports(doc) == [0x1234, 2**64 - 1, 0x40200000, 0x40081000, 42, 1 << 2]


@pytest.mark.parametrize("regs,message", [
    ("{vbar_el2: 0}", "unknown register 'vbar_el2'"),
    ("{sctlr_el1: 0x1}", "SCTLR_EL1.M (bit 0) set"),
    ("{pstate: 0x3c9}", "PSTATE.M = 0x9 is not EL0t (0), EL1t (4) or EL1h (5)"),
    ("{x0: -1}", "out of range"),
])
def test_bad_register_presets_are_spec_errors_at_their_line(tmp_path, regs, message):
    work = guest_workload(tmp_path, "  b .\n", f"  regs: {regs}\n")
    result = run_cli("run", "--workload", work)
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert "w.yaml:3:" in result.stderr and message in result.stderr
    if "vbar_el2" in regs:
        assert "did you mean 'vbar_el1'?" in result.stderr


def test_entry_and_a_pc_preset_together_are_refused(tmp_path):
    work = guest_workload(tmp_path, "  b .\n", "  entry: 0x40080000\n  regs: {pc: 0x40080000}\n")
    result = run_cli("run", "--workload", work)
    assert result.exit_code == ExitCode.INVALID_INPUT and "entry or regs.pc" in result.stderr


def test_get_and_set_reg_follow_the_stack_pointer_pstate_selects():
    guest = engine("  b .\n")
    assert guest.get_reg("pstate") == 0x3C5  # KVM's reset: EL1h, D, A, I, F masked
    assert guest.get_reg("pc") == LOAD
    el1_sp = guest.get_reg("sp")
    guest.set_reg("sp_el0", 0x40100000)
    assert guest.get_reg("sp") == el1_sp == guest.get_reg("sp_el1")  # EL1h runs on SP_EL1
    guest.set_reg("pstate", 0x0)  # EL0t
    assert guest.get_reg("sp") == 0x40100000 and guest.get_reg("sp_el1") == el1_sp
    guest.set_reg("SPSR_EL1", 0x3C5)
    guest.set_reg("elr_el1", 0x40080040)
    assert (guest.get_reg("spsr_el1"), guest.get_reg("elr_el1")) == (0x3C5, 0x40080040)


def test_console_lines_are_in_the_report_and_the_json(tmp_path):
    source = """
        movz    x9, #0x0900, lsl #16
        adr     x0, hello
        str     x0, [x9, #0x18]
        adr     x0, second
        str     x0, [x9, #0x18]
        mov     x0, #7
        str     x0, [x9]
        str     xzr, [x9, #8]
hello:  .asciz  "hello, world"
second: .asciz  "pass 2 of 2"
"""
    doc = run_asm(tmp_path, source)
    assert doc["vcpus"][0]["console"] == ["hello, world", "pass 2 of 2"]
    assert reports(doc) == [7]
    text = run_cli("run", "--workload", str(tmp_path / "w.yaml")).stdout
    assert "vCPU 0 console: hello, world" in text and "vCPU 0 console: pass 2 of 2" in text


def test_a_console_address_outside_ram_is_a_guest_fault(tmp_path):
    source = "  movz x9, #0x0900, lsl #16\n  movz x0, #0x1000, lsl #16\n  str x0, [x9, #0x18]\n"
    code, doc = run_json("--workload", guest_workload(tmp_path, source))
    assert code == ExitCode.GUEST_FAULT
    assert "console line at 0x10000000" in doc["error"]["message"]
    assert "pc 0x40080008 (str x0, [x9, #0x18])" in doc["error"]["message"]


SPIN2 = "1:\n  add x0, x0, #1\n  b 1b\n"


def test_the_wall_clock_timeout_ends_the_run_and_names_the_pc(tmp_path):
    work = guest_workload(tmp_path, SPIN2)
    result = run_cli("run", "--workload", work, "--timeout", "0.2", "--max-instructions",
                     str(2**40))
    assert result.exit_code == ExitCode.GUEST_FAULT
    assert "did not end within 0.2 s (--timeout or guest.timeout)" in result.stderr + \
        result.stdout
    assert "it was at pc 0x4008000" in result.stderr + result.stdout


def test_guest_timeout_in_the_workload(tmp_path):
    work = guest_workload(tmp_path, SPIN2, "  timeout: 1\n  max_instructions: 0x10000000000\n")
    code, doc = run_json("--workload", work)
    assert code == ExitCode.GUEST_FAULT and "within 1 s" in doc["error"]["message"]


def test_the_budget_ends_a_branch_to_itself_and_counts_every_pass(tmp_path):
    source = """
        mov     x0, #0x08
        msr     pmevtyper0_el0, x0        // INST_RETIRED
        msr     pmevcntr0_el0, xzr        // (KVM resets it to junk)
        mov     x0, #1
        msr     pmcntenset_el0, x0
        msr     pmcr_el0, x0              // counted: 1
        b       .
"""
    code, doc = run_json("--workload", guest_workload(tmp_path, source))
    assert code == ExitCode.GUEST_FAULT
    message = doc["error"]["message"]
    assert "did not end within 100000000 instructions" in message
    assert "it was at pc 0x40080018 (b #0x40080018)" in message
    counter = doc["vcpus"][0]["counters"][0]
    assert counter["value"] == 100_000_000 - 5  # the budget less the five uncounted set-up ones


EXITS = """
        movz    x9, #0x0900, lsl #16
        mov     x0, #7
        str     x0, [x9, #0x10]           // EXIT: the VMM sees 7
        mov     w0, #8
        str     w0, [x9, #0x20]           // another slot: an MMIO exit too, 4 bytes
        str     x0, [x9]                  // a report: handled inside run()
        str     xzr, [x9, #8]             // END
        b       .
"""


def test_run_returns_at_each_exit_to_the_vmm_and_stays_ended():
    guest = engine(EXITS)
    first = guest.run()
    assert (first.reason, first.addr, first.size, first.data) == ("mmio", MAILBOX + 0x10, 8, 7)
    assert guest.get_reg("pc") == LOAD + 12  # after the store
    second = guest.run()
    assert (second.reason, second.addr, second.size, second.data) == \
        ("mmio", MAILBOX + 0x20, 4, 8)
    end = guest.run()
    assert (end.reason, end.addr) == ("end", MAILBOX + 0x08)
    assert guest.result.reports == [8] and guest.result.instructions == 7
    assert guest.run() == end and guest.result.instructions == 7  # nothing more runs


IRQ_LEVEL = """
        mov     x0, #-1
        msr     pmovsclr_el0, x0          // (KVM resets the overflow flags to junk)
        mov     x0, #0x08
        msr     pmevtyper0_el0, x0        // INST_RETIRED
        mov     x0, #-3
        msr     pmevcntr0_el0, x0
        mov     x0, #1
        msr     pmintenset_el1, x0
        msr     pmcntenset_el0, x0
        msr     daifclr, #2               // unmasked: an in-kernel irqchip would inject
        msr     pmcr_el0, x0              // 1 (counts itself)
        nop                               // 2
        nop                               // 3: overflow, the line rises
after:
        nop
        msr     pmovsclr_el0, x0          // the line drops
        nop
        movz    x9, #0x0900, lsl #16
        str     xzr, [x9, #8]
"""


def test_with_a_userspace_irqchip_run_returns_on_each_change_of_the_interrupt_line():
    guest = engine(IRQ_LEVEL, exit_on_irq_change=True)
    rise = guest.run()
    assert (rise.reason, rise.data) == ("irq", 1)
    assert guest.get_reg("pc") == LOAD + 4 * 13  # `after`: right after the 3rd counted one
    drop = guest.run()
    assert (drop.reason, drop.data) == ("irq", 0)
    assert guest.get_reg("pc") == LOAD + 4 * 15  # after the PMOVSCLR write
    assert guest.run().reason == "end"
    assert guest.result.exceptions == 0  # nothing was injected (VBAR_EL1 is 0 anyway)


def test_a_userspace_irqchip_vm_from_the_cli_never_injects(tmp_path):
    spec = write(tmp_path, "s.yaml", "vm: {irqchip: userspace}\n")
    work = guest_workload(tmp_path, IRQ_LEVEL)
    code, doc = run_json("--filter", spec, "--workload", work)
    assert code == 0 and doc["vcpus"][0]["guest"]["interrupts"] == 0


# --- writing guests ---------------------------------------------------------------------

def test_numeric_local_labels_and_every_pmu_register_name(tmp_path):
    source = """
        movz    x9, #0x0900, lsl #16
        adr     x0, vectors
        msr     vbar_el1, x0
        mov     x1, #3
1:      subs    x1, x1, #1                // a loop on a numeric label
        b.ne    1b
        cbz     x1, 1f
        mov     x1, #99
1:      str     x1, [x9]                  // 0
        mrs     x2, pmmir_el1             // keystone lacks the name: reads 0 on this profile
        str     x2, [x9]
        mov     x3, #0
        mrs     x4, pmswinc_el0           // write-only: the read is UNDEFINED
        str     x3, [x9]                  // 1: the handler ran
        .inst   0xd503201f                // NOP, written as an instruction word
        str     xzr, [x9, #8]
        .balign 0x800
vectors:
        .skip   0x200
        add     x3, x3, #1
        mrs     x5, elr_el1
        add     x5, x5, #4
        msr     elr_el1, x5
        eret
"""
    doc = run_asm(tmp_path, source)
    assert reports(doc) == [0, 0, 1]
    assert doc["vcpus"][0]["undefined"] == [{"register": "PMSWINC_EL0", "access": "read"}]


def test_assembler_errors_name_the_line_and_show_it(tmp_path):
    source = "  nop\n  b later\n  mov x0, #0x123456789\nlater:\n  b .\n"
    result = run_cli("run", "--workload", guest_workload(tmp_path, source))
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert "guest.S:3:3: error: guest: cannot assemble" in result.stderr
    assert "      3 |   mov x0, #0x123456789" in result.stderr
    missing = run_cli("run", "--workload", guest_workload(tmp_path, "  b 1f\n  b .\n"))
    assert "guest.S:1:3: error: guest: no label `1:` after this line for `1f`" in missing.stderr


def elf64(code: bytes, address: int, phoff: int = 64) -> bytes:
    """An AArch64 ELF: header, one PT_LOAD program header, the code."""
    offset = phoff + 56
    header = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9) + struct.pack(
        "<HHIQQQIHHHHHH", 2, 183, 1, address, phoff, 0, 0, 64, 56, 1, 64, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, offset, address, address, len(code), len(code),
                       0x1000)
    return header + bytes(phoff - 64) + phdr + code


@pytest.mark.parametrize("cut,message", [
    (64 + 30, "the program headers (e_phoff 0x40, 1 x 56 bytes) end at byte 0x78, past the "
              "end of the file (0x5e bytes): the file is cut short"),
    (64 + 56 + 8, "segment 0 (PT_LOAD at 0x40080000): its bytes 0x78..0x87 run past the end "
                  "of the file (0x80 bytes): the file is cut short"),
])
def test_a_cut_elf_says_which_part_is_missing(tmp_path, cut, message):
    code = bytes.fromhex("1f2003d5") * 4
    (tmp_path / "g.elf").write_bytes(elf64(code, 0x40080000)[:cut])
    result = run_cli("run", "--workload", write(tmp_path, "w.yaml", "guest: {elf: g.elf}\n"),
                     "--json")
    assert result.exit_code == ExitCode.INVALID_INPUT
    error = json.loads(result.stdout)["error"]
    assert message in error["message"] and "g.elf" in result.stderr


def test_an_elf_segment_outside_ram_is_refused_before_the_run(tmp_path):
    (tmp_path / "g.elf").write_bytes(elf64(bytes(8), 0x10000000))
    result = run_cli("run", "--workload", write(tmp_path, "w.yaml", "guest: {elf: g.elf}\n"))
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert "0x10000000..0x10000007 are outside guest RAM" in result.stderr


def test_code_rewritten_in_place_is_counted_as_it_now_is(tmp_path):
    source = """
        movz    x9, #0x0900, lsl #16
        mov     x0, #0x21
        msr     pmevtyper0_el0, x0        // BR_RETIRED
        msr     pmevcntr0_el0, xzr
        mov     x0, #1
        msr     pmcntenset_el0, x0
        movz    w5, #0x1400, lsl #16
        movk    w5, #0x1                  // `b .+4`
        adr     x6, patchable
        mov     x3, #2
        msr     pmcr_el0, x0
again:
        bl      patchable                 // pass 1: BL, RET, B.NE; pass 2: BL, B, RET, B.NE
        str     w5, [x6]                  // the NOP becomes a branch
        subs    x3, x3, #1
        b.ne    again
        msr     pmcr_el0, xzr
        mrs     x0, pmevcntr0_el0
        str     x0, [x9]
        str     xzr, [x9, #8]
patchable:
        nop
        ret
"""
    assert reports(run_asm(tmp_path, source)) == [3 + 4]


def test_one_reg_of_a_scenario_reaches_the_cpu_emulated_guest(tmp_path):
    """`set_one_reg` of core registers before the first run sets the guest's registers, over
    the workload's presets; the presets the VMM leaves alone hold (the same scenario runs on
    real kernels in tests/test_realkvm_conform.py)."""
    from tests.realkvm_payloads import REGS_REPORTED, regs_guest

    scenario = regs_guest(tmp_path / "regs")
    code, doc = run_json("--scenario", str(scenario))
    assert code == 0, doc["error"]
    assert doc["vcpus"][0]["reports"] == REGS_REPORTED == [0x1234, 0x5678, 0x99]
