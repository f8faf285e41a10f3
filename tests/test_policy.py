"""Policy tools: lint codes, explain, diff, compile (property-tested), exports, presets."""

import re
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvmpmu.errors import SpecError
from kvmpmu.policy.compile import compile_spec, minimal_calls
from kvmpmu.policy.diff import diff
from kvmpmu.policy.evaluate import Evaluation
from kvmpmu.policy.explain import explain
from kvmpmu.policy.export import render, spec_from_kvmtool
from kvmpmu.policy.lint import CODES, lint
from kvmpmu.spec.filterspec import FilterCall, FilterSpec, spec_from_node
from kvmpmu.spec.kvmtool import parse_kvmtool
from kvmpmu.spec.schema import root
from kvmpmu.spec.yamlio import load
from tests.kvmhelpers import ALLOW, DENY, make_vm, set_filter


def spec(text: str) -> FilterSpec:
    return spec_from_node(root(load(text, "p.yaml"), "p.yaml"), "p.yaml")


def codes(text: str) -> list[str]:
    return [f.code for f in lint(spec(text))]


# --- lint: each code with a spec that triggers it and one that does not -----------------------

LINT_CASES = {
    "KP001": ("filters: [{deny: [L3D_CACHE]}]", "vm: {vcpus: 1}"),
    "KP002": ("filters: [{allow: [BR_RETIRED]}, {deny: [BR_RETIRED]}]",
              "filters: [{allow: [BR_RETIRED]}, {deny: [INST_RETIRED]}]"),
    "KP003": ("filters: [{deny: [SW_INCR, L3D_CACHE]}]", "filters: [{deny: 0x0-0x1f}]"),
    "KP004": ("filters: [{deny: [CHAIN]}]", "filters: [{deny: [CPU_CYCLES]}]"),
    "KP005": ("filters: [{deny: [L3D_CACHE]}, {deny: [L1D_CACHE]}, {allow: 0x0-0x10}]",
              "filters: [{deny: [L3D_CACHE]}, {deny: [L1D_CACHE]}, {allow: 0x5-0x10}]"),
    "KP006": ("host: {cpu: cortex-a53}\nfilters: [{deny: [L3D_CACHE]}]",
              "host: {cpu: cortex-a53}\nfilters: [{deny: [L2D_CACHE]}]"),
    "KP007": ("host: {cpu: cortex-a53}\nfilters: [{deny: 0x4000}]",
              "host: {cpu: neoverse-n1}\nfilters: [{deny: 0x4000}]"),
    "KP008": ("filters: [{deny: [CPU_CYCLES]}]", "filters: [{allow: [CPU_CYCLES, INST_RETIRED]}]"),
    "KP009": ("purpose: isolation\nfilters: [{deny: [L3D_CACHE]}]",
              "purpose: isolation\nfilters: [{deny: {preset: shared-resources}}]"),
    "KP010": ("filters: [{action: 2, base_event: 0x11, nevents: 1}]",
              "filters: [{action: 1, base_event: 0x11, nevents: 1}]"),
}


def test_every_code_has_a_case():
    assert set(LINT_CASES) == set(CODES)


@pytest.mark.parametrize("code", sorted(LINT_CASES))
def test_lint_code_fires_and_stays_quiet(code):
    triggers, quiet = LINT_CASES[code]
    assert code in codes(triggers)
    assert code not in codes(quiet)


def test_lint_findings_point_at_the_entry_and_say_how():
    findings = lint(spec("filters:\n  - allow: [BR_RETIRED]\n  - deny: [BR_RETIRED]\n"))
    kp002 = next(f for f in findings if f.code == "KP002")
    assert (kp002.loc.line, kp002.loc.col) == (3, 5)
    assert "entry 1" in kp002.message and "remains denied" in kp002.message
    assert kp002.severity == "warning" and kp002.fix


def test_isolation_needs_every_implemented_shared_event_denied():
    # on a Cortex-A53 the preset reaches EXT_MEM_REQ (0xC0) by name, and not 0x4000+ events
    quiet = ("purpose: isolation\nhost: {cpu: cortex-a53}\n"
             "filters: [{deny: {preset: shared-resources}}]")
    assert "KP009" not in codes(quiet)
    assert "KP007" not in codes(quiet)
    leaky = "purpose: isolation\nhost: {cpu: cortex-a53}\nfilters: [{deny: [BUS_ACCESS]}]"
    kp009 = next(f for f in lint(spec(leaky)) if f.code == "KP009")
    assert "EXT_MEM_REQ" in kp009.message


# --- presets ------------------------------------------------------------------------------

def denied_events(text: str) -> set[int]:
    e = Evaluation(spec(text))
    return {x for x in range(e.nr_events) if not e.allowed(x)}


def test_presets_resolve_against_the_cpu():
    generic = denied_events("filters: [{deny: {preset: shared-resources}}]")
    assert {0x19, 0x2A, 0x37, 0x4005, 0x8121, 0x815B} <= generic and 0xC0 not in generic
    a53 = denied_events("host: {cpu: cortex-a53}\nfilters: [{deny: {preset: shared-resources}}]")
    assert {0x19, 0xC0, 0xC1, 0xC8} <= a53 and max(a53) < 0x400 and 0xC2 not in a53
    cluster = denied_events("host: {cpu: cortex-a53}\n"
                            "filters: [{deny: [{preset: shared-resources-cluster}]}]")
    assert {0x16, 0x17, 0x18, 0xC2} <= cluster


def test_basic_profiling_preset_is_an_allow_list():
    e = Evaluation(spec("filters: [{allow: {preset: basic-profiling}}]"))
    allowed = {x for x in range(0x40) if e.allowed(x)}
    assert allowed == {0x01, 0x02, 0x03, 0x04, 0x05, 0x08, 0x10, 0x11, 0x12, 0x14, 0x1B, 0x21,
                       0x22, 0x25, 0x26}


def test_unknown_preset_is_refused_with_the_closest():
    with pytest.raises(SpecError) as info:
        spec("filters: [{deny: {preset: shared-resource}}]")
    assert "shared-resources" in (info.value.hint or "")


# --- explain ------------------------------------------------------------------------------

OVERLAP = """filters:
  - allow: 0x10-0x20
  - deny: 0x11-0x12
  - allow: 0x12
"""


@pytest.mark.parametrize("event,allowed,decided_by,entry", [
    (0x12, True, "entry", 2), (0x11, False, "entry", 1), (0x15, True, "entry", 0),
    (0x30, False, "default", 0), (0x00, True, "unfilterable", None)])
def test_explain_overlapping_entries_and_the_default(event, allowed, decided_by, entry):
    x = explain(Evaluation(spec(OVERLAP)), event)
    assert (x.allowed, x.decided_by, x.entry) == (allowed, decided_by, entry)


def test_explain_says_what_pmceid_shows_and_whether_it_counts():
    e = Evaluation(spec("host: {cpu: cortex-a53}\nfilters: [{deny: [L2D_CACHE]}]"))
    l2 = explain(e, 0x16)
    assert (l2.pmceid, l2.implemented, l2.counts) == ("hidden", True, False)
    l3 = explain(e, 0x2B)  # not implemented on Cortex-A53, allowed by default
    assert (l3.allowed, l3.pmceid, l3.implemented, l3.counts) == (True, "hidden", False, False)
    ext = explain(e, 0xC0)
    assert (ext.pmceid, ext.counts) == ("no-bit", True)
    assert explain(e, 0x4000).decided_by == "outside-event-space"


# --- diff ---------------------------------------------------------------------------------

def test_diff_groups_ranges_and_is_symmetric():
    a = Evaluation(spec("filters: [{deny: 0x10-0x1f}]"))
    b = Evaluation(spec("filters: [{deny: 0x14-0x17}, {deny: 0x30}]"))
    ab, ba = diff(a, b), diff(b, a)
    assert [(c.first, c.last, c.allowed_in_a) for c in ab.changes] == [
        (0x10, 0x13, False), (0x18, 0x1F, False), (0x30, 0x30, True)]
    assert [(c.first, c.last, not c.allowed_in_a) for c in ba.changes] == [
        (c.first, c.last, c.allowed_in_a) for c in ab.changes]
    # the forced CHAIN bit (0x1E) is masked by the filter like any other (§4.2 steps 2 and 5)
    assert {p.event for p in ab.pmceid} == {0x10, 0x11, 0x12, 0x13, 0x18, 0x19, 0x1A, 0x1B,
                                             0x1C, 0x1D, 0x1E, 0x1F, 0x30}
    assert diff(a, a).same


# --- compile ------------------------------------------------------------------------------

def bitmap_after(calls: list[tuple[int, int, int]], profile: str = "latest") -> int | None:
    """The kernel's bitmap after these FILTER calls, through the ioctl interface."""
    vm, (vcpu,) = make_vm(profile)
    for base, n, action in calls:
        set_filter(vcpu, base, n, action)
    return vm.filter_bitmap()


call_strategy = st.tuples(st.integers(0, 0x60), st.integers(0, 0x30),
                          st.sampled_from([ALLOW, DENY]))


@settings(max_examples=150, deadline=None)
@given(st.lists(call_strategy, max_size=12))
def test_compiled_sequence_gives_the_same_bitmap_and_is_never_longer(raw):
    calls = [FilterCall(b, n, a, None, i) for i, (b, n, a) in enumerate(raw)]
    e = Evaluation(FilterSpec(file="generated", filters=tuple(calls)))
    compiled = compile_spec(e)
    assert len(compiled) <= len(calls)
    assert bitmap_after([(c.base_event, c.nevents, c.action) for c in compiled]) == \
        bitmap_after(raw)


def test_minimal_calls_on_known_bitmaps():
    # allowed runs 1, denied runs 2 -> one ALLOW
    assert [(c.base_event, c.nevents, c.action) for c in minimal_calls(0b0110, 8)] == [(1, 2, 0)]
    # denied 0x11 only -> one DENY
    full = (1 << 1024) - 1
    assert [(c.base_event, c.nevents, c.action) for c in minimal_calls(full & ~(1 << 0x11), 1024)
            ] == [(0x11, 1, 1)]
    assert [(c.nevents, c.action) for c in minimal_calls(0, 1024)] == [(0, ALLOW)]
    assert [(c.nevents, c.action) for c in minimal_calls(full, 1024)] == [(0, DENY)]
    assert minimal_calls(None, 1024) == []


def test_compile_refuses_a_spec_the_kernel_rejects():
    from kvmpmu.errors import RejectedError

    with pytest.raises(RejectedError):
        compile_spec(Evaluation(spec("host: {cpu: cortex-a53}\nfilters: [{deny: 0x4000}]")))


# --- exports, each decoded independently ------------------------------------------------------

POLICY = "filters:\n  - allow: [CPU_CYCLES, INST_RETIRED]\n  - allow: 0x30-0x3f\n  - deny: 0x38\n"


def compiled(fmt: str) -> tuple[list[FilterCall], bytes]:
    e = Evaluation(spec(POLICY))
    calls = compile_spec(e)
    return calls, render(fmt, calls, e.catalog, "latest", {}, "test")  # type: ignore[arg-type]


def expected_calls() -> list[tuple[int, int, int]]:
    # allowed: 0x08, 0x11, 0x30-0x37, 0x39-0x3f (4 runs) vs many denied runs -> ALLOW each
    return [(0x08, 1, ALLOW), (0x11, 1, ALLOW), (0x30, 8, ALLOW), (0x39, 7, ALLOW)]


def test_bin_records_decode_with_struct():
    _, data = compiled("bin")
    records = [struct.unpack("<HHB3x", data[i:i + 8]) for i in range(0, len(data), 8)]
    assert records == expected_calls()


def test_kvmtool_string_parses_back():
    _, data = compiled("kvmtool")
    parsed = []
    for part in data.decode().strip().split(","):
        kind, first, last = re.fullmatch(r"([AD]):0x([0-9a-f]+)-0x([0-9a-f]+)", part).groups()
        parsed.append((int(first, 16), int(last, 16) - int(first, 16) + 1,
                       ALLOW if kind == "A" else DENY))
    assert parsed == expected_calls()


def test_c_array_parses_back():
    _, data = compiled("c")
    rows = re.findall(r"\.base_event = 0x([0-9a-f]+), \.nevents = (\d+), "
                      r"\.action = KVM_PMU_EVENT_(ALLOW|DENY)", data.decode())
    assert [(int(b, 16), int(n), ALLOW if a == "ALLOW" else DENY) for b, n, a in rows] == \
        expected_calls()
    assert "struct kvm_pmu_event_filter pmu_event_filters[]" in data.decode()


def test_yaml_and_json_round_trip():
    import json

    _, data = compiled("yaml")
    again = spec(data.decode())
    assert [(c.base_event, c.nevents, c.action) for c in again.filters] == expected_calls()
    assert Evaluation(again).bits == Evaluation(spec(POLICY)).bits
    doc = json.loads(compiled("json")[1])
    assert [(f["base_event"], f["nevents"], f["action"]) for f in doc["filters"]] == \
        expected_calls()


def test_import_kvmtool_gives_a_spec_with_the_same_calls():
    text = "A:0x11-0x11,D:0x30-0x3f,A:8-8"
    ours = parse_kvmtool(text)
    imported = spec(spec_from_kvmtool(list(ours.filters), ours.host.catalog(), text))
    assert [(c.base_event, c.nevents, c.action) for c in imported.filters] == [
        (0x11, 1, ALLOW), (0x30, 16, DENY), (0x08, 1, ALLOW)]
