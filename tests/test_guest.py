"""CPU-emulated guests: counts known by construction, traps into the same vPMU, UNDEF and
interrupt injection, budget and faults. Needs the `guest` extra (make install has it)."""

import json
from pathlib import Path

import pytest

from kvmpmu.cli.exitcodes import ExitCode
from tests.clihelpers import ROOT, run_cli

pytest.importorskip("unicorn", reason="the `guest` extra (unicorn) is not installed")
pytest.importorskip("capstone", reason="the `guest` extra (capstone) is not installed")
GUESTS = ROOT / "configs" / "guests"


def run_guest(*args: str) -> dict:
    result = run_cli("run", *args, "--json")
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def reports(doc: dict, vcpu: int = 0) -> list[int]:
    return doc["vcpus"][vcpu]["reports"]


@pytest.mark.parametrize("name", ["branches", "pmceid", "undef", "overflow", "user"])
def test_shipped_guests_pass_their_expectations(name):
    doc = run_guest("--workload", f"configs/guests/{name}.yaml")
    assert doc["ok"] and doc["expectations"] and all(e["passed"] for e in doc["expectations"])


def test_branch_and_instruction_counts_are_exact():
    doc = run_guest("--workload", "configs/guests/branches.yaml")
    assert reports(doc) == [10, 21]  # 10 B.NE; the enabling MSR and 20 loop instructions
    assert doc["vcpus"][0]["guest"]["instructions"] == 38  # every instruction up to the end


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def counting_guest(events: list[int], body: str, setup: str = "", tail: str = "") -> str:
    """Program counters 0.. with `events`, count around `body`, report each counter."""
    program = "".join(f"        mov x0, #{e:#x}\n        msr pmevtyper{i}_el0, x0\n"
                      for i, e in enumerate(events))
    report = "".join(f"        mrs x0, pmevcntr{i}_el0\n        str x0, [x9]\n"
                     for i in range(len(events)))
    return f"""
        movz    x9, #0x0900, lsl #16      // mailbox
{setup}
        mov     x0, #0x6
        msr     pmcr_el0, x0
{program}
        mov     x0, #{(1 << len(events)) - 1:#x}
        msr     pmcntenset_el0, x0
        mov     x0, #1
        msr     pmcr_el0, x0              // counted: it sets E
{body}
        msr     pmcr_el0, xzr             // not counted: it clears E
{report}
        str     xzr, [x9, #8]
        b       .
{tail}
"""


LOADS_STORES = counting_guest([0x06, 0x07, 0x13, 0x21], setup="        mov x1, #5", body="""
loop:
        ldr     x2, [sp, #-8]             // per iteration: 4 loads, 2 stores, 1 branch
        ldr     x3, [sp, #-16]
        ldp     x4, x5, [sp, #-32]
        ldrb    w6, [sp, #-1]
        str     x2, [sp, #-40]
        stp     x3, x4, [sp, #-64]
        subs    x1, x1, #1
        b.ne    loop""")  # LD_RETIRED, ST_RETIRED, MEM_ACCESS, BR_RETIRED


def test_loads_stores_and_memory_accesses_are_exact(tmp_path):
    write(tmp_path, "ls.S", LOADS_STORES)
    work = write(tmp_path, "w.yaml", "guest: {asm: ls.S}\n")
    doc = run_guest("--workload", work)
    assert reports(doc) == [20, 10, 30, 5]


def test_a_denied_event_reads_zero_from_a_real_mrs(tmp_path):
    spec = write(tmp_path, "s.yaml", "filters: [{deny: [BR_RETIRED]}]\n")
    doc = run_guest("--filter", spec, "--workload", "configs/guests/branches.yaml")
    assert reports(doc) == [0, 21]
    assert not doc["ok"]  # the workload expects 10 branches


@pytest.mark.parametrize("spec,kernel", [("configs/deny-shared-cache.yaml", "latest"),
                                         ("configs/big-little.yaml", "6.1"),
                                         ("configs/first-allow.yaml", "5.15")])
def test_pmceid_read_by_the_guest_equals_show_pmceid(spec, kernel):
    shown = json.loads(run_cli("show-pmceid", "--filter", spec, "--kernel", kernel,
                               "--json").stdout)
    doc = run_guest("--filter", spec, "--kernel", kernel, "--workload",
                    "configs/guests/pmceid.yaml")
    assert reports(doc) == [int(shown["guest"]["pmceid0"], 16), int(shown["guest"]["pmceid1"], 16)]


def test_undef_is_injected_and_the_guest_returns(tmp_path):
    spec = write(tmp_path, "s.yaml", "vm: {counters: 4}\n")  # PMCR_EL0.N = 4
    doc = run_guest("--filter", spec, "--workload", "configs/guests/undef.yaml")
    assert reports(doc) == [4, 1, 2, 0]
    assert doc["vcpus"][0]["guest"]["exceptions"] == 2
    assert doc["vcpus"][0]["undefined"] == [  # two in a row: one record with a count
        {"register": "PMXEVCNTR_EL0", "access": "read", "count": 2}]


def test_overflow_interrupt_is_taken_at_the_right_instruction():
    doc = run_guest("--workload", "configs/guests/overflow.yaml")
    interrupts, past_overflow, elr_offset, pmovs = reports(doc)
    assert (interrupts, past_overflow, elr_offset, pmovs) == (1, 2, 4, 0)
    assert doc["vcpus"][0]["guest"]["interrupts"] == 1


def test_a_guest_that_never_ends_is_stopped_by_the_budget(tmp_path):
    write(tmp_path, "spin.S", "loop:\n  add x0, x0, #1\n  b loop\n")
    work = write(tmp_path, "w.yaml", "guest: {asm: spin.S}\n")
    result = run_cli("run", "--workload", work, "--max-instructions", "100000")
    assert result.exit_code == ExitCode.GUEST_FAULT
    assert "did not end within 100000 instructions" in result.stderr


def test_undef_without_a_vector_table_is_a_clear_guest_fault(tmp_path):
    write(tmp_path, "bad.S", "  mrs x0, pmevcntr30_el0\n  b .\n")
    work = write(tmp_path, "w.yaml", "guest: {asm: bad.S}\n")
    result = run_cli("run", "--workload", work, "--json")
    assert result.exit_code == ExitCode.GUEST_FAULT
    error = json.loads(result.stdout)["error"]
    assert error["kind"] == "guest" and "no vector table" in error["message"]


def test_without_the_extra_the_message_names_it(tmp_path, monkeypatch):
    import importlib

    real = importlib.import_module

    def missing(name, *args):
        if name.split(".")[0] in ("unicorn", "capstone", "keystone"):
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", missing)
    result = run_cli("run", "--workload", "configs/guests/branches.yaml")
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert "pip install 'kvmpmu[guest]'" in result.stderr


def test_same_json_shape_as_the_scripted_guest():
    scripted = run_guest("--filter", "configs/deny-shared-cache.yaml", "--workload",
                         "configs/workload-basic.yaml")
    emulated = run_guest("--filter", "configs/deny-shared-cache.yaml", "--workload",
                         "configs/guests/branches.yaml")
    assert set(scripted) == set(emulated)
    assert set(scripted["vcpus"][0]) == set(emulated["vcpus"][0])


def test_prebuilt_binaries_match_their_sources():
    pytest.importorskip("keystone", reason="keystone-engine is not installed")
    from kvmpmu.spec.guestspec import DEFAULT_LOAD
    from kvmpmu.vmm.emulated.assembler import assemble

    for source in sorted(GUESTS.glob("*.S")):
        assert source.with_suffix(".bin").read_bytes() == \
            assemble(source.read_text(), DEFAULT_LOAD), source.name


EXCEPTIONS_AND_SWINC = counting_guest(
    [0x09, 0x0A, 0x00, 0x1B],  # EXC_TAKEN, EXC_RETURN, SW_INCR, INST_SPEC
    setup="""        adr     x0, vectors
        msr     vbar_el1, x0
        mov     x0, #-1
        msr     pmintenclr_el1, x0""",
    body="""        mrs     x1, pmevcntr30_el0        // three UNDEF reads, each handled and skipped
        mrs     x1, pmevcntr29_el0
        mrs     x1, pmevcntr28_el0
        mov     x0, #4                    // SW_INCR on counter 2 (bit 2), four times
        msr     pmswinc_el0, x0
        msr     pmswinc_el0, x0
        msr     pmswinc_el0, x0
        msr     pmswinc_el0, x0""",
    tail="""        .balign 0x800
vectors:
        .skip   0x200
        mrs     x22, elr_el1
        add     x22, x22, #4
        msr     elr_el1, x22
        eret""")


def test_exceptions_returns_software_increments_and_speculated_instructions(tmp_path):
    write(tmp_path, "exc.S", EXCEPTIONS_AND_SWINC)
    doc = run_guest("--workload", write(tmp_path, "w.yaml", "guest: {asm: exc.S}\n"))
    # counted from the enabling MSR (1) to the disabling one (not counted): 3 UNDEF reads that
    # do not retire, 3 handlers of 4 instructions, 1 MOV and 4 PMSWINC writes: 1 + 12 + 5
    assert reports(doc) == [3, 3, 4, 18]


def elf64(code: bytes, address: int, entry_offset: int = 0) -> bytes:
    """A minimal AArch64 ELF: header, one PT_LOAD program header, the code."""
    import struct

    header_size, phdr_size = 64, 56
    offset = header_size + phdr_size
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header = ident + struct.pack("<HHIQQQIHHHHHH", 2, 183, 1, address + entry_offset,
                                 header_size, 0, 0, header_size, phdr_size, 1, 64, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, offset, address, address, len(code), len(code),
                       0x1000)
    return header + phdr + code


def test_an_elf_guest_runs_like_its_binary(tmp_path):
    code = (GUESTS / "branches.bin").read_bytes()
    (tmp_path / "branches.elf").write_bytes(elf64(code, 0x40080000))
    doc = run_guest("--workload", write(tmp_path, "w.yaml", "guest: {elf: branches.elf}\n"))
    assert reports(doc) == [10, 21]
    (tmp_path / "x86.elf").write_bytes(elf64(code, 0x40080000).replace(
        (183).to_bytes(2, "little"), (62).to_bytes(2, "little"), 1))
    bad = run_cli("run", "--workload", write(tmp_path, "x.yaml", "guest: {elf: x86.elf}\n"))
    assert bad.exit_code == ExitCode.INVALID_INPUT and "not AArch64" in bad.stderr


# --- the emulated guests agree with their scripted equivalents ------------------------------

def scripted(tmp_path: Path, steps: str, spec: str | None = None) -> dict:
    work = write(tmp_path, "scripted.yaml", "vcpus:\n  all:\n" + steps)
    return run_guest(*(["--filter", spec] if spec else []), "--workload", work)


def test_pmceid_matches_the_scripted_read(tmp_path):
    spec = "configs/multi-tenant.yaml"
    guest = run_guest("--filter", spec, "--workload", "configs/guests/pmceid.yaml")
    script = scripted(tmp_path, "    - read: [PMCEID0_EL0, PMCEID1_EL0]\n", spec)
    assert reports(guest) == [r["value"] for r in script["vcpus"][0]["reads"]]


def test_counts_match_the_scripted_execute(tmp_path):
    guest = run_guest("--workload", "configs/guests/branches.yaml")
    script = scripted(tmp_path, """    - write: {PMCR_EL0: 0x6}
    - program: {counter: 0, event: BR_RETIRED}
    - program: {counter: 1, event: INST_RETIRED}
    - enable: [0, 1]
    - write: {PMCR_EL0: 0x1}
    - execute: {el: 1, events: {BR_RETIRED: 10, INST_RETIRED: 21}}
    - read: [PMEVCNTR0_EL0, PMEVCNTR1_EL0]
""")
    assert reports(guest) == [r["value"] for r in script["vcpus"][0]["reads"]]


def test_undef_matches_the_scripted_reads(tmp_path):
    guest = run_guest("--workload", "configs/guests/undef.yaml")
    script = scripted(tmp_path, "    - write: {PMSELR_EL0: 6}\n    - read: PMXEVCNTR_EL0\n"
                      "    - write: {PMSELR_EL0: 7}\n    - read: PMXEVCNTR_EL0\n")
    assert guest["vcpus"][0]["undefined"] == script["vcpus"][0]["undefined"]


def test_overflow_matches_the_scripted_interrupt_line(tmp_path):
    script = scripted(tmp_path, """    - write: {PMCR_EL0: 0x6, PMOVSCLR_EL0: 0xffffffff}
    - program: {counter: 0, event: INST_RETIRED}
    - write: {PMEVCNTR0_EL0: 0xffffff00, PMINTENSET_EL1: 1, PMCNTENSET_EL0: 1, PMCR_EL0: 1}
    - execute: {el: 1, events: {INST_RETIRED: 256}}
    - read: [PMOVSSET_EL0]
""")
    assert script["vcpus"][0]["irq_level"] is True
    assert script["vcpus"][0]["reads"][0]["value"] & 1 == 1  # what the guest's IRQ reacts to
    guest = run_guest("--workload", "configs/guests/overflow.yaml")
    assert reports(guest)[0] == 1 and guest["vcpus"][0]["irq_level"] is False  # handled
