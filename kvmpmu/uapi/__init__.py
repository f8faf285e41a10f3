"""Kernel uAPI vocabulary for the arm64 vPMU: constants, struct layouts, ioctl numbers.

Transcribed from the kernel headers named below (as described in kvm-pmu-semantics.md §1). Data
only: no behaviour lives here.
"""

# The headers these definitions follow: include/uapi/linux/kvm.h and
# arch/arm64/include/uapi/asm/kvm.h of this release.
HEADERS_VERSION = "v6.16"
