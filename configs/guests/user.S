// A tiny OS with a user-mode test. EL1 installs a vector table, programs the PMU (counter 0:
// INST_RETIRED at EL0 only; counter 1: EXC_TAKEN) and drops to EL0 with ERET. The EL0 program
// makes system calls with SVC #0, the call number in x8: 1 prints the string at x0 (mailbox
// console), 2 returns its own instruction count in x0, 0 exits.
// Reports: [0] the count call 2 returned (5: ADR, MOV, SVC, MOV, SVC), [1] EL0 instructions
// in all (7), [2] exceptions taken (3 SVCs), [3] SPSR_EL1.M in the handler (0: EL0t).
        movz    x9, #0x0900, lsl #16      // mailbox at 0x09000000
        adr     x0, vectors
        msr     vbar_el1, x0
        mov     x0, #0x6
        msr     pmcr_el0, x0              // reset the counters
        mov     x0, #-1                   // PMOVS, PMINTEN and PMCNTEN reset UNKNOWN
        msr     pmovsclr_el0, x0
        msr     pmintenclr_el1, x0
        msr     pmcntenclr_el0, x0
        movz    x0, #0x8000, lsl #16      // PMEVTYPER.P: not at EL1
        orr     x0, x0, #0x08             // INST_RETIRED
        msr     pmevtyper0_el0, x0
        mov     x0, #0x09                 // EXC_TAKEN
        msr     pmevtyper1_el0, x0
        mov     x0, #0x3
        msr     pmcntenset_el0, x0
        mov     x0, #0x1
        msr     pmcr_el0, x0
        movz    x0, #0x4010, lsl #16      // EL0 stack at 0x40100000
        msr     sp_el0, x0
        msr     spsr_el1, xzr             // EL0t, interrupts unmasked
        adr     x0, user
        msr     elr_el1, x0
        eret

user:
        adr     x0, hello
        mov     x8, #1
        svc     #0                        // print
        mov     x8, #2
        svc     #0                        // x0 = EL0 instructions so far
        mov     x8, #0
        svc     #0                        // exit
        b       .
hello:  .asciz  "hello from EL0"

        .balign 0x800
vectors:
        .skip   0x400
sync_el0:                                 // VBAR_EL1 + 0x400: synchronous, from EL0
        mrs     x10, esr_el1
        lsr     x10, x10, #26
        cmp     x10, #0x15                // EC: SVC from AArch64
        b.ne    fail
        cmp     x8, #1
        b.eq    sys_print
        cmp     x8, #2
        b.eq    sys_count
        str     x0, [x9]                  // exit: the count call 2 returned
        mrs     x1, pmevcntr0_el0
        str     x1, [x9]
        mrs     x1, pmevcntr1_el0
        str     x1, [x9]
        mrs     x1, spsr_el1
        and     x1, x1, #0x1f
        str     x1, [x9]
        str     xzr, [x9, #8]             // end of run
sys_print:
        str     x0, [x9, #0x18]
        eret
sys_count:
        mrs     x0, pmevcntr0_el0
        eret
fail:
        mov     x1, #0xdead
        str     x1, [x9]
        str     xzr, [x9, #8]
