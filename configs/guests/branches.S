// Program BR_RETIRED on counter 0 and INST_RETIRED on counter 1, run a loop with exactly
// 10 conditional branches, stop counting, and report both counters through the mailbox.
// Reports: [0] BR_RETIRED, [1] INST_RETIRED.
        movz    x9, #0x0900, lsl #16      // mailbox at 0x09000000
        mov     x0, #0x6                  // PMCR_EL0: P and C reset the counters
        msr     pmcr_el0, x0
        mov     x0, #0x21                 // BR_RETIRED
        msr     pmevtyper0_el0, x0
        mov     x0, #0x08                 // INST_RETIRED
        msr     pmevtyper1_el0, x0
        mov     x0, #0x3
        msr     pmcntenset_el0, x0
        mov     x1, #10
        mov     x0, #0x1                  // PMCR_EL0.E: a trapped MSR counts under the
        msr     pmcr_el0, x0              //   state it sets: this one counts (1)
loop:
        subs    x1, x1, #1                // 10 x (subs, b.ne): 20 instructions (21),
        b.ne    loop                      //   10 branches
        msr     pmcr_el0, xzr             // stop: this one does not count
        mrs     x2, pmevcntr0_el0
        str     x2, [x9]
        mrs     x3, pmevcntr1_el0
        str     x3, [x9]
        str     xzr, [x9, #8]             // end of run
        b       .
