// Check PMCR_EL0.N and that the counters at or above N are UNDEF: install a vector table
// whose synchronous handler counts the exceptions and skips the faulting instruction.
// Reports: [0] N, [1] PMEVCNTR<N-1>_EL0 read fine (1), [2] exceptions taken for the
// reads of PMEVCNTR<N>..PMEVCNTR<N+1> (2), [3] ESR_EL1.EC of the last one (0: unknown).
        movz    x9, #0x0900, lsl #16      // mailbox at 0x09000000
        adr     x0, vectors
        msr     vbar_el1, x0
        mov     x20, #0                   // exceptions taken
        mrs     x0, pmcr_el0
        ubfx    x0, x0, #11, #5           // PMCR_EL0.N
        str     x0, [x9]
        msr     pmselr_el0, xzr           // through PMSELR/PMXEVCNTR: counter N-1, then N, N+1
        sub     x1, x0, #1
        msr     pmselr_el0, x1
        mov     x2, x20
        mrs     x3, pmxevcntr_el0         // counter N-1: fine
        cmp     x20, x2
        cset    x4, eq
        str     x4, [x9]
        msr     pmselr_el0, x0
        mrs     x3, pmxevcntr_el0         // counter N: UNDEF
        add     x1, x0, #1
        msr     pmselr_el0, x1
        mrs     x3, pmxevcntr_el0         // counter N+1: UNDEF
        str     x20, [x9]
        ubfx    x5, x21, #26, #6
        str     x5, [x9]
        str     xzr, [x9, #8]             // end of run
        b       .

        .balign 0x800
vectors:
        .skip   0x200
sync_current_spx:                         // VBAR_EL1 + 0x200
        add     x20, x20, #1
        mrs     x21, esr_el1
        mrs     x22, elr_el1
        add     x22, x22, #4              // skip the faulting MRS
        msr     elr_el1, x22
        eret
