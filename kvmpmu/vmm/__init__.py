"""The VMM: builds the emulated VM from a spec, drives the PMU attributes, runs the guest."""
