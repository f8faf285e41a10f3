"""A repeated body runs as its steps would one after the other (the engine runs repeated
bodies through handlers it looks up once): values, UNDEF records and the exception level."""

from kvmpmu.errors import SourceLoc
from kvmpmu.spec.filterspec import FilterSpec
from kvmpmu.spec.workload import Access, Repeat, SetEl
from kvmpmu.vmm.guest import ScriptedGuest
from kvmpmu.vmm.session import entered_vcpu

LOC = SourceLoc("t.yaml", 1, 1)


def run(steps):
    guest = ScriptedGuest(entered_vcpu(FilterSpec(file="t")), steps, exit_on_irq_change=False)
    guest.resume()
    return guest.output


def test_a_repeated_body_reads_writes_and_traps_at_el0_as_written():
    # PMCR_EL0.E is clear after the VMM's set-up: PMCCNTR_EL0 holds what is written. At EL0
    # with PMUSERENR_EL0 = 0 every access to it is UNDEFINED (Arm ARM D13.3.x; §5.2).
    body = (Access((("PMCCNTR_EL0", 5),), LOC, "write"),
            Access((("PMCCNTR_EL0", None),), LOC, "read"),
            SetEl(0, LOC),
            Access((("PMCCNTR_EL0", None), ("PMCCNTR_EL0", 7)), LOC, "read"),
            SetEl(1, LOC))
    out = run((Repeat(3, body, LOC),))
    assert out.reads == [["PMCCNTR_EL0", 5, 1], ["PMCCNTR_EL0", None, 1]] * 3
    assert out.undefined == [["PMCCNTR_EL0", "read", 1], ["PMCCNTR_EL0", "write", 1]] * 3


def test_nested_repeats_multiply():
    inner = Repeat(4, (Access((("PMCCNTR_EL0", 9),), LOC, "write"),
                       Access((("PMSELR_EL0", None),), LOC, "read")), LOC)
    out = run((Access((("PMSELR_EL0", 3),), LOC, "write"),
               Repeat(5, (inner, Access((("PMCCNTR_EL0", None),), LOC, "read")), LOC)))
    # PMSELR_EL0 reads the 3 written before, four times a pass; PMCCNTR_EL0 9 after each.
    assert out.reads == [["PMSELR_EL0", 3, 4], ["PMCCNTR_EL0", 9, 1]] * 5
    assert out.undefined == []


def test_reads_of_two_registers_with_one_value_are_two_records():
    # consecutive reads are one record only when both the register and the value repeat
    body = (Access((("PMCCNTR_EL0", 3), ("PMSELR_EL0", 3)), LOC, "write"),
            Access((("PMSELR_EL0", None), ("PMCCNTR_EL0", None), ("PMCCNTR_EL0", None)), LOC,
                   "read"))
    out = run((Repeat(2, body, LOC),))
    assert out.reads == [["PMSELR_EL0", 3, 1], ["PMCCNTR_EL0", 3, 2]] * 2
