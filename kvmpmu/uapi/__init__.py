"""Kernel uAPI vocabulary for the arm64 vPMU: constants, struct layouts, ioctl numbers.

Transcribed from Linux v6.16's include/uapi/linux/kvm.h and arch/arm64/include/uapi/asm/kvm.h
(the headers these definitions follow; as described in kvm-pmu-semantics.md §1). Data only: no
behaviour lives here.
"""
