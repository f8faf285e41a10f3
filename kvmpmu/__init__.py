"""kvmpmu: an emulated KVM arm64 vPMU and PMU event filter."""

__version__ = "0.1.0"
SCHEMA = 1  # the "schema" of every JSON document kvmpmu writes
