"""A CPU-emulated AArch64 guest (unicorn): its PMU register accesses trap into the same vPMU
model the scripted guest uses, and its events are counted from what it really executes."""
