// Count to overflow and take the interrupt: counter 0 counts INST_RETIRED from
// 0xFFFFFF00, so it overflows after 256 instructions; its PMINTENSET bit is set and IRQs
// are unmasked, so the guest takes the PMU interrupt right after the 256th instruction.
// The handler records where it was taken (ELR_EL1), clears PMOVS and returns.
// Reports: [0] interrupts taken (1); [1] counter 0's low 32 bits read in the handler (2:
// the handler's own two instructions before the read); [2] ELR_EL1 minus the loop's address
// (4: the IRQ comes right after the SUBS that is the 256th instruction counted, the enabling
// MSR being the first); [3] PMOVSSET_EL0 after the handler cleared it (0).
        movz    x9, #0x0900, lsl #16      // mailbox at 0x09000000
        adr     x0, vectors
        msr     vbar_el1, x0
        mov     x20, #0                   // interrupts taken
        mov     x0, #0x6
        msr     pmcr_el0, x0              // reset the counters
        mov     x0, #-1                   // PMOVS, PMINTEN and PMCNTEN reset UNKNOWN
        msr     pmovsclr_el0, x0
        msr     pmintenclr_el1, x0
        msr     pmcntenclr_el0, x0
        mov     x0, #0x08                 // INST_RETIRED
        msr     pmevtyper0_el0, x0
        mov     x0, #0xFFFFFF00
        msr     pmevcntr0_el0, x0
        mov     x0, #0x1
        msr     pmintenset_el1, x0
        msr     pmcntenset_el0, x0
        msr     daifclr, #2               // unmask IRQs
        adr     x23, loop
        mov     x1, #1000
        mov     x0, #0x1
        msr     pmcr_el0, x0              // start (counts itself: 1)
loop:
        subs    x1, x1, #1                // 2 instructions per iteration: the overflow
        b.ne    loop                      //   comes at the SUBS of iteration 128
        msr     pmcr_el0, xzr
        str     x20, [x9]
        str     x24, [x9]
        sub     x0, x22, x23
        str     x0, [x9]
        mrs     x0, pmovsset_el0
        str     x0, [x9]
        str     xzr, [x9, #8]             // end of run
        b       .

        .balign 0x800
vectors:
        .skip   0x280
irq_current_spx:                          // VBAR_EL1 + 0x280
        add     x20, x20, #1
        mrs     x22, elr_el1
        mrs     x24, pmevcntr0_el0        // past the overflow: instructions since then
        and     x24, x24, #0xffffffff
        mov     x0, #1
        msr     pmovsclr_el0, x0          // drop the line
        eret
