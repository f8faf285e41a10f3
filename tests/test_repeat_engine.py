"""A repeated body runs as its steps would one after the other (the engine runs repeated
bodies through handlers it looks up once): values, UNDEF records and the exception level."""

from kvmpmu.arch import sysregs as sr
from kvmpmu.errors import SourceLoc
from kvmpmu.spec.filterspec import FilterSpec
from kvmpmu.spec.workload import Access, Execute, Repeat, SetEl
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


def test_every_pass_runs_once_however_many_passes_there_are():
    # each PMSWINC_EL0 write adds one to an enabled SW_INCR counter (§3.3): after PMCR_EL0.P
    # zeroes it, 1, 37 or 100 writes read 1, 37 or 100
    setup = Access((("PMEVTYPER0_EL0", 0), ("PMCNTENSET_EL0", 1),
                    ("PMCR_EL0", sr.PMCR_E | sr.PMCR_P)), LOC, "write")
    for times in (1, 37, 100):
        out = run((setup, Repeat(times, (Access((("PMSWINC_EL0", 1),), LOC, "write"),), LOC),
                   Access((("PMEVCNTR0_EL0", None),), LOC, "read")))
        assert out.reads == [["PMEVCNTR0_EL0", times, 1]]


def test_many_passes_of_a_body_keep_its_order():
    # as in the first test, the write is read back at EL1 and the read at EL0 is UNDEFINED
    body = (Access((("PMCCNTR_EL0", 5),), LOC, "write"),
            Access((("PMCCNTR_EL0", None),), LOC, "read"),
            SetEl(0, LOC), Access((("PMCCNTR_EL0", None),), LOC, "read"), SetEl(1, LOC))
    out = run((Repeat(37, body, LOC),))
    assert out.reads == [["PMCCNTR_EL0", 5, 1], ["PMCCNTR_EL0", None, 1]] * 37
    assert out.undefined == [["PMCCNTR_EL0", "read", 37]]  # consecutive: one record


def test_a_counter_written_again_in_a_loop_counts_as_its_type_says_now():
    # each PMCCNTR_EL0 write recreates the cycle counter's perf event from PMCCFILTR_EL0 as it
    # is then (§3.1): with P set it stops counting at EL1 (§3.4), cleared it counts again
    enable = Access((("PMCNTENSET_EL0", 1 << 31), ("PMCR_EL0", sr.PMCR_E)), LOC, "write")
    cycles = Execute(1, ((0x11, 10),), LOC)
    body = (Access((("PMCCFILTR_EL0", 0), ("PMCCNTR_EL0", 0)), LOC, "write"), cycles,
            Access((("PMCCNTR_EL0", None),), LOC, "read"),
            Access((("PMCCFILTR_EL0", sr.EVTYPE_P), ("PMCCNTR_EL0", 0)), LOC, "write"), cycles,
            Access((("PMCCNTR_EL0", None),), LOC, "read"))
    out = run((enable, Repeat(3, body, LOC)))
    assert out.reads == [["PMCCNTR_EL0", 10, 1], ["PMCCNTR_EL0", 0, 1]] * 3
