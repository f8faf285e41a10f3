"""Kernel rules written from kvm-pmu-semantics.md that no other test pins on their own."""
