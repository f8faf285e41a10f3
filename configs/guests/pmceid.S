// Read PMCEID0_EL0 and PMCEID1_EL0 and report them: they must equal what
// `kvmpmu show-pmceid` says the guest sees. Reports: [0] PMCEID0_EL0, [1] PMCEID1_EL0.
        movz    x9, #0x0900, lsl #16      // mailbox at 0x09000000
        mrs     x0, pmceid0_el0
        str     x0, [x9]
        mrs     x1, pmceid1_el0
        str     x1, [x9]
        str     xzr, [x9, #8]             // end of run
        b       .
