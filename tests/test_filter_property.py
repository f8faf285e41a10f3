"""Random FILTER call sequences against a small reference model written here (semantics §2, §4).

The oracle is deliberately naive: a dict of event -> allowed, folded over the calls in order,
and PMCEID computed bit by bit.
"""

import errno as E

from hypothesis import given, settings
from hypothesis import strategies as st

from kvmpmu.arch import sysregs as sr
from kvmpmu.kvm.host import generic_host
from kvmpmu.kvm.profiles import PROFILES
from tests.kvmhelpers import errno_of, make_vm, ready, set_filter

VERSIONS = [sr.PMUVER_IMP, sr.PMUVER_V3P1, sr.PMUVER_V3P4, sr.PMUVER_V3P5, sr.PMUVER_V3P7,
            sr.PMUVER_V3P8]


def oracle_nr_events(profile, pmuver):
    v = PROFILES[profile].version
    if v >= (6, 6):
        pmuver = min(pmuver, sr.PMUVER_V3P5)
    if pmuver == sr.PMUVER_IMP:
        return 1024
    if pmuver in (sr.PMUVER_V3P1, sr.PMUVER_V3P4, sr.PMUVER_V3P5):
        return 65536
    if pmuver == sr.PMUVER_V3P7 and v >= (5, 16):
        return 65536
    return 1


def oracle_pmceid(profile, pmuver, allowed, reg):
    """allowed: None (no filter) or a dict event -> bool."""
    v = PROFILES[profile].version
    host = generic_host(pmuver).pmus[0]
    guest_ver = min(pmuver, sr.PMUVER_V3P5 if v >= (6, 2) else sr.PMUVER_V3P4
                    if v >= (5, 12) else sr.PMUVER_V3P1)
    nr_guest = oracle_nr_events(profile, guest_ver if v >= (6, 6) else pmuver)
    out = 0
    for bit in range(64):
        event = 32 * reg + bit if bit < 32 else 0x4000 + 32 * reg + bit - 32
        present = event in host.events and (bit < 32 or pmuver != sr.PMUVER_IMP)
        if event == 0x1E and v >= (6, 2):
            present = True
        if event == 0 and v >= (6, 15):
            present = True
        if event in (0x3D, 0x3E, 0x3F) and v >= (6, 6):
            present = False
        if event == 0x3F and (5, 12) <= v < (6, 6) and pmuver >= sr.PMUVER_V3P4:
            present = False
        if allowed is not None:
            if bit >= 32 and nr_guest < 0x4000 + 32 * reg + 32:
                present = False
            elif not allowed.get(event, False):
                present = False
        out |= int(present) << bit
    return out


call = st.tuples(
    st.one_of(st.integers(0, 0x60), st.integers(0x3C0, 0x420), st.integers(0x3FF0, 0x4050),
              st.integers(0xFFC0, 0xFFFF)),
    st.one_of(st.integers(0, 0x48), st.integers(0, 0xFFFF)),
    st.sampled_from([0, 1, 0, 1, 2, 255]),
)


@settings(max_examples=300, deadline=None)
@given(profile=st.sampled_from(list(PROFILES)), pmuver=st.sampled_from(VERSIONS),
       calls=st.lists(call, max_size=12), run_at=st.integers(0, 12))
def test_filter_calls_match_the_reference_model(profile, pmuver, calls, run_at):
    vm, (v0, v1) = make_vm(profile, host=generic_host(pmuver), vcpus=2)
    nr = oracle_nr_events(profile, pmuver)
    busy_after_run = PROFILES[profile].version >= (5, 18)
    allowed = None
    ran = False
    for i, (base, nevents, action) in enumerate(calls):
        if i == run_at:
            ready(v0)
            v0.run()
            ran = True
        got = errno_of(set_filter, v1, base, nevents, action)
        if base + nevents > nr or action not in (0, 1):
            expected = E.EINVAL
        elif ran and busy_after_run:
            expected = E.EBUSY
        else:
            expected = None
            if allowed is None:
                allowed = {e: action == 1 for e in range(nr)}
            for e in range(base, base + nevents):
                allowed[e] = action == 0
        assert got == expected, (i, base, nevents, action)
    if allowed is None:
        assert vm.filter_bitmap() is None
    else:
        assert vm.filter_bitmap() == sum(1 << e for e, ok in allowed.items() if ok)
    if not ran:
        ready(v0)
    for reg in (0, 1):
        assert vm.guest_pmceid(v0, reg) == oracle_pmceid(profile, pmuver, allowed, reg), reg
