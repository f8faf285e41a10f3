"""kvmpmu: an emulated KVM arm64 vPMU and PMU event filter."""

__version__ = "0.1.0"
