"""CPU-emulated guests take exceptions as the Arm ARM says: EL0 programs call EL1 with SVC and
come back with ERET, UNDEF/BRK/aborts reach the right vector with the right ESR, ELR, SPSR and
FAR, overflow interrupts are taken from EL0 right after the overflowing instruction, HVC is an
SMCCC call. Every expected value is worked out by hand in the comments."""

import pytest

from kvmpmu.cli.exitcodes import ExitCode
from tests.guestprog import guest_workload, reports, run_asm, run_json, vector_table

pytest.importorskip("unicorn", reason="the `guest` extra (unicorn) is not installed")
pytest.importorskip("keystone", reason="the `guest` extra (keystone-engine) is not installed")

ESR_IL = 1 << 25
P_EXCLUDE_EL1 = 0x80000000  # PMEVTYPER.P
INST_RETIRED = 0x08

SETUP = """
        movz    x9, #0x0900, lsl #16      // mailbox
        adr     x0, vectors
        msr     vbar_el1, x0
        mov     x0, #0x6
        msr     pmcr_el0, x0              // counters reset
        mov     x0, #-1
        msr     pmcntenclr_el0, x0
        msr     pmintenclr_el1, x0
        msr     pmovsclr_el0, x0
        msr     pmuserenr_el0, xzr        // EL0 may not touch the PMU
"""

TO_EL0 = """
        movz    x0, #0x4010, lsl #16      // EL0 stack top 0x40100000
        msr     sp_el0, x0
        mov     x20, sp                   // the EL1 stack, for the handler to compare
        msr     spsr_el1, xzr             // to EL0t, interrupts unmasked, NZCV clear
        adr     x0, user
        msr     elr_el1, x0
        eret
"""

EL0_ONLY_INST_RETIRED = f"""
        movz    x0, #{P_EXCLUDE_EL1 >> 16:#x}, lsl #16
        orr     x0, x0, #{INST_RETIRED:#x}
        msr     pmevtyper0_el0, x0        // INST_RETIRED, EL1 excluded
        mov     x0, #1
        msr     pmcntenset_el0, x0
        msr     pmcr_el0, x0              // E
"""

SVC_ROUND_TRIP = SETUP + EL0_ONLY_INST_RETIRED + TO_EL0 + """
user:
        mov     x0, #5                    // EL0 instructions: 1
        svc     #0x42                     // 2 (the handler adds 10 to x0)
after_svc:
        add     x0, x0, #1                // 3
        mov     x22, sp                   // 4
        svc     #0x43                     // 5: report from EL1
        b       .

sync_el0:
        mrs     x10, esr_el1
        and     x11, x10, #0xffff
        cmp     x11, #0x42
        b.ne    report
        mrs     x12, elr_el1
        mrs     x13, spsr_el1
        mrs     x14, currentel
        mov     x15, sp
        mov     x16, x10
        add     x0, x0, #10
        eret
report:
        mrs     x1, pmevcntr0_el0
        str     x0, [x9]                  // 5 + 10 + 1
        str     x16, [x9]                 // ESR of SVC #0x42
        adr     x2, after_svc
        sub     x2, x12, x2
        str     x2, [x9]                  // ELR_EL1 - after_svc
        str     x13, [x9]                 // SPSR_EL1
        str     x14, [x9]                 // CurrentEL
        sub     x3, x15, x20
        str     x3, [x9]                  // SP in the handler - SP_EL1
        str     x22, [x9]                 // SP at EL0
        str     x1, [x9]                  // EL0 instructions
        str     x19, [x9]                 // the vector entry
        str     xzr, [x9, #8]
""" + vector_table(sync_el0="sync_el0")


def test_an_el0_program_calls_el1_with_svc_and_returns(tmp_path):
    doc = run_asm(tmp_path, SVC_ROUND_TRIP)
    assert reports(doc) == [
        16,
        0x15 << 26 | ESR_IL | 0x42,  # EC SVC (AArch64), IL, imm16
        0,  # ELR_EL1: the instruction after the SVC
        0,  # SPSR_EL1: EL0t, DAIF and NZCV clear, as ERET left them
        1 << 2,  # CurrentEL.EL = 1
        0,  # the handler runs on SP_EL1
        0x40100000,  # and EL0 on SP_EL0 again after ERET
        5,  # EL0 instructions, the SVCs included; none of EL1's
        0x400,  # lower EL, AArch64, synchronous
    ]
    assert doc["vcpus"][0]["guest"]["exceptions"] == 2


UNDEF_FROM_EL0 = SETUP + TO_EL0 + """
user:
        mrs     x1, pmccntr_el0           // PMUSERENR_EL0.EN/CR = 0: UNDEFINED at EL0
        .inst   0x00000000                // UDF #0
        hvc     #0                        // UNDEFINED at EL0
        svc     #0                        // to report
        b       .

sync_el0:
        mrs     x10, esr_el1
        lsr     x11, x10, #26
        cmp     x11, #0x15
        b.eq    report
        mrs     x12, elr_el1
        adr     x13, user
        sub     x12, x12, x13
        mrs     x14, spsr_el1
        and     x14, x14, #0x1f
        str     x10, [x9]                 // ESR_EL1
        str     x12, [x9]                 // ELR_EL1 - user
        str     x14, [x9]                 // SPSR_EL1.M
        str     x19, [x9]                 // vector entry
        mrs     x12, elr_el1
        add     x12, x12, #4              // skip it
        msr     elr_el1, x12
        eret
report:
        str     xzr, [x9, #8]
""" + vector_table(sync_el0="sync_el0")


def test_undef_from_el0_is_taken_at_the_lower_el_vector(tmp_path):
    doc = run_asm(tmp_path, UNDEF_FROM_EL0)
    undef = ESR_IL  # EC 0 (unknown reason), IL
    assert reports(doc) == [undef, 0, 0, 0x400,  # the PMU read KVM makes UNDEF
                            undef, 4, 0, 0x400,  # UDF
                            undef, 8, 0, 0x400]  # HVC at EL0
    assert doc["vcpus"][0]["undefined"] == [{"register": "PMCCNTR_EL0", "access": "read"}]


OVERFLOW_FROM_EL0 = SETUP + """
        movz    x0, #0x8000, lsl #16
        orr     x0, x0, #0x08
        msr     pmevtyper0_el0, x0        // INST_RETIRED at EL0 only
        mov     x0, #-10
        msr     pmevcntr0_el0, x0         // 2^32 - 10: overflows at the 10th EL0 instruction
        mov     x0, #1
        msr     pmintenset_el1, x0
        msr     pmcntenset_el0, x0
        msr     pmcr_el0, x0
""" + TO_EL0 + """
user:
""" + "        add     x2, x2, #1\n" * 20 + """
        b       .

irq_el0:
        mrs     x12, elr_el1
        adr     x13, user
        sub     x12, x12, x13
        str     x12, [x9]                 // ELR_EL1 - user
        str     x2, [x9]                  // ADDs done
        mrs     x14, spsr_el1
        str     x14, [x9]                 // SPSR_EL1
        mrs     x15, pmovsset_el0
        str     x15, [x9]                 // PMOVSSET_EL0
        str     x19, [x9]                 // vector entry
        str     xzr, [x9, #8]
""" + vector_table(irq_el0="irq_el0")


def test_an_overflow_interrupt_is_taken_from_el0_right_after_the_overflowing_instruction(
        tmp_path):
    doc = run_asm(tmp_path, OVERFLOW_FROM_EL0)
    # the 10th ADD overflows counter 0; the IRQ returns to the 11th (user + 40)
    assert reports(doc) == [40, 10, 0, 1, 0x480]
    assert doc["vcpus"][0]["guest"]["interrupts"] == 1


PENDING_UNTIL_UNMASKED = SETUP + """
        mov     x0, #0x08
        msr     pmevtyper0_el0, x0        // INST_RETIRED
        mov     x0, #-3
        msr     pmevcntr0_el0, x0
        mov     x0, #1
        msr     pmintenset_el1, x0
        msr     pmcntenset_el0, x0
        msr     pmcr_el0, x0              // counts itself: 1
        nop                               // 2
        nop                               // 3: overflow, but PSTATE.I is set (reset value)
        nop
        nop
        msr     daifclr, #2
unmasked:
        nop
        nop
        b       .

irq_el1h:
        mrs     x12, elr_el1
        adr     x13, unmasked
        sub     x12, x12, x13
        str     x12, [x9]                 // ELR_EL1 - unmasked
        str     x19, [x9]
        str     xzr, [x9, #8]
""" + vector_table(irq_el1h="irq_el1h")


def test_a_pending_interrupt_is_taken_at_the_instruction_after_the_unmasking_one(tmp_path):
    assert reports(run_asm(tmp_path, PENDING_UNTIL_UNMASKED)) == [0, 0x280]


SKIPPING_HANDLER = """
sync_el1h:
        mrs     x10, esr_el1
        str     x10, [x9]                 // ESR_EL1
        mrs     x11, elr_el1
        adr     x12, base
        sub     x12, x11, x12
        str     x12, [x9]                 // ELR_EL1 - base
        mrs     x13, far_el1
        str     x13, [x9]                 // FAR_EL1
        str     x19, [x9]                 // vector entry
        add     x11, x11, #4
        msr     elr_el1, x11
        eret
"""


def test_brk_and_data_aborts_at_el1(tmp_path):
    source = SETUP + """
        movz    x0, #0x1000, lsl #16      // 0x10000000: no memory there
        msr     far_el1, xzr
base:
        brk     #0x77                     // base + 0
        ldr     x2, [x0]                  // base + 4
        str     x2, [x0, #8]              // base + 8
        str     xzr, [x9, #8]
""" + SKIPPING_HANDLER + vector_table(sync_el1h="sync_el1h")
    assert reports(run_asm(tmp_path, source)) == [
        0x3C << 26 | ESR_IL | 0x77, 0, 0, 0x200,  # BRK: EC 0x3C, comment; FAR untouched
        0x25 << 26 | ESR_IL | 0x10, 4, 0x10000000, 0x200,  # data abort, same EL, external
        0x25 << 26 | ESR_IL | 0x40 | 0x10, 8, 0x10000008, 0x200,  # ... WnR: a write
    ]


def test_an_instruction_abort_returns_to_the_link_register(tmp_path):
    source = SETUP + """
        movz    x0, #0x1000, lsl #16
        blr     x0                        // fetch from 0x10000000
after_blr:
        str     x30, [x9]
        adr     x1, after_blr
        str     x1, [x9]
        str     xzr, [x9, #8]

sync_el1h:
        mrs     x10, esr_el1
        str     x10, [x9]
        mrs     x11, elr_el1
        str     x11, [x9]
        mrs     x13, far_el1
        str     x13, [x9]
        msr     elr_el1, x30
        eret
""" + vector_table(sync_el1h="sync_el1h")
    esr, elr, far, lr, after_blr = reports(run_asm(tmp_path, source))
    # instruction abort, same EL, external; ELR and FAR: the address fetched
    assert (esr, elr, far) == (0x21 << 26 | ESR_IL | 0x10, 0x10000000, 0x10000000)
    assert lr == after_blr  # and the handler returned through the link register


def test_a_data_abort_from_el0_uses_the_lower_el_syndrome(tmp_path):
    source = SETUP + TO_EL0 + """
user:
        movz    x0, #0x1000, lsl #16
base:
        ldr     x1, [x0]
        b       .

sync_el0:
        mrs     x10, esr_el1
        str     x10, [x9]
        mrs     x13, far_el1
        str     x13, [x9]
        str     x19, [x9]
        str     xzr, [x9, #8]
""" + vector_table(sync_el0="sync_el0")
    assert reports(run_asm(tmp_path, source)) == [0x24 << 26 | ESR_IL | 0x10, 0x10000000, 0x400]


def test_hvc_is_an_smccc_call_and_psci_system_off_ends_the_run(tmp_path):
    source = """
        movz    x9, #0x0900, lsl #16
        mov     x0, #0x1234               // no such SMCCC function
        hvc     #0
        str     x0, [x9]                  // NOT_SUPPORTED: -1
        movz    x0, #0x8400, lsl #16
        movk    x0, #0x8                  // PSCI_SYSTEM_OFF
        hvc     #1                        // a non-zero immediate is reserved
        str     x0, [x9]                  // -1
        movz    x0, #0x8400, lsl #16
        movk    x0, #0x8
        smc     #0                        // SMC at EL1: a call too (the PMU guest has no EL3)
        str     x0, [x9]                  // not reached
        b       .
"""
    doc = run_asm(tmp_path, source)
    assert reports(doc) == [2**64 - 1, 2**64 - 1]
    assert doc["ok"] and doc["vcpus"][0]["guest"]["finished"] is True


def test_wfi_waits_for_the_pending_interrupt_or_is_a_clear_fault(tmp_path):
    pending = SETUP + """
        mov     x0, #1
        msr     pmovsset_el0, x0          // overflow flag set by hand
        msr     pmintenset_el1, x0
        msr     pmcntenset_el0, x0
        msr     pmcr_el0, x0              // the line is high; PSTATE.I masks it
        wfi                               // completes: an interrupt is pending
        str     x0, [x9]
        str     xzr, [x9, #8]
""" + vector_table()
    assert reports(run_asm(tmp_path, pending)) == [1]
    code, doc = run_json("--workload", guest_workload(tmp_path, "  wfi\n  b .\n"))
    assert code == ExitCode.GUEST_FAULT
    assert "WFI at pc 0x40080000 (wfi) with no interrupt pending" in doc["error"]["message"]


def test_a_data_abort_without_a_vector_table_names_the_instruction_and_address(tmp_path):
    source = "  movz x0, #0x1000, lsl #16\n  ldr x2, [x0, #16]\n  b .\n"
    code, doc = run_json("--workload", guest_workload(tmp_path, source))
    assert code == ExitCode.GUEST_FAULT
    message = doc["error"]["message"]
    assert "data abort at pc 0x40080004 (ldr x2, [x0, #0x10])" in message
    assert "read from 0x10000010, outside guest memory" in message
    assert "no vector table (VBAR_EL1 is 0)" in message


def test_an_exception_at_its_own_vector_is_a_clear_fault(tmp_path):
    source = """
        adr     x0, empty
        msr     vbar_el1, x0
        .inst   0x00000000                // UDF: taken to VBAR_EL1 + 0x200, which holds UDF
        .balign 0x800
empty:  .skip   0x800
"""
    code, doc = run_json("--workload", guest_workload(tmp_path, source))
    assert code == ExitCode.GUEST_FAULT
    message = doc["error"]["message"]
    assert "undefined instruction at pc 0x40080a00" in message
    assert "the vector it is taken to (VBAR_EL1 + 0x200): the guest would take it forever" \
        in message


def test_msr_daif_unmasking_a_pending_interrupt_takes_it_after_itself(tmp_path):
    source = SETUP + """
        mov     x0, #1
        msr     pmovsset_el0, x0          // the overflow flag, set by hand
        msr     pmintenset_el1, x0
        msr     pmcntenset_el0, x0
        msr     pmcr_el0, x0              // the line is high; PSTATE.I (reset) masks it
        nop
        msr     daif, xzr                 // unmasks every exception
unmasked:
        nop
        b       .

irq_el1h:
        mrs     x12, elr_el1
        adr     x13, unmasked
        sub     x12, x12, x13
        str     x12, [x9]
        str     xzr, [x9, #8]
""" + vector_table(irq_el1h="irq_el1h")
    assert reports(run_asm(tmp_path, source)) == [0]


def test_a_guest_turning_the_mmu_on_is_a_clear_fault(tmp_path):
    source = "  mrs x0, sctlr_el1\n  orr x0, x0, #1\n  msr sctlr_el1, x0\n  b .\n"
    code, doc = run_json("--workload", guest_workload(tmp_path, source))
    assert code == ExitCode.GUEST_FAULT
    assert "enables the MMU (SCTLR_EL1.M) at pc 0x40080008 (msr sctlr_el1, x0)" in \
        doc["error"]["message"]
