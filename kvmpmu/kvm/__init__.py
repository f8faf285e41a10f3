"""The emulated KVM arm64 vPMU: system, VM and vCPU file descriptors, filter and counters."""
