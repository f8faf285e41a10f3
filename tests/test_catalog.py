"""Event names, built-in CPU models, catalog import and the host PMCEID each model gives."""

import json

import pytest

from kvmpmu.arch.catalog import Catalog
from kvmpmu.arch.cpus import CPU_MODELS
from kvmpmu.errors import SpecError
from kvmpmu.spec.filterspec import spec_from_node
from kvmpmu.spec.schema import root
from kvmpmu.spec.yamlio import load
from kvmpmu.vmm.listing import list_events
from tests.armdata import ARM_DATA, needs_arm_data

# Models of Arm CPUs (not the generic CPU, not QEMU's emulated PMU: Arm publishes no data)
BUILT_IN = [name for name in CPU_MODELS if name != "generic" and not name.startswith("qemu-")]


def spec(text: str, events_db: str | None = None):
    return spec_from_node(root(load(text, "t.yaml"), "t.yaml"), "t.yaml", events_db)


def spec_error(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        spec(text)
    return info.value


# --- name resolution ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["CPU_CYCLES", "cpu_cycles", "Cpu_Cycles", " cpu_cycles "])
def test_names_resolve_whatever_their_case(name):
    s = spec(f"filters: [{{deny: ['{name}']}}]")
    assert [(c.base_event, c.nevents) for c in s.filters] == [(0x11, 1)]


def test_an_unknown_name_is_refused_with_the_closest_names():
    err = spec_error("filters:\n  - deny: [L1D_CACHE_REFIL]\n")
    assert "unknown event 'L1D_CACHE_REFIL'" in err.message
    assert err.loc is not None and (err.loc.line, err.loc.col) == (2, 12)
    assert err.hint and "L1D_CACHE_REFILL" in err.hint.split("?")[0]


def test_impdef_names_resolve_only_on_their_cpu():
    a53 = spec("host: {cpu: cortex-a53}\nfilters: [{deny: [EXT_MEM_REQ, ld_dep_stall]}]")
    assert [c.base_event for c in a53.filters] == [0xC0, 0xE7]
    err = spec_error("host: {cpu: neoverse-n1}\nfilters: [{deny: [EXT_MEM_REQ]}]")
    assert "unknown event" in err.message and "cortex-a53 (0x00c0)" in (err.hint or "")
    err = spec_error("filters: [{deny: [EXT_MEM_REQ]}]")  # the generic host has no IMPDEF names
    assert "unknown event" in err.message


def test_impdef_names_of_both_clusters_resolve_on_a_big_little_host():
    s = spec("host:\n  pmus:\n    - {cpu: cortex-a72, cpus: '0-1'}\n"
             "    - {cpu: cortex-a53, cpus: '2-5'}\nfilters: [{deny: [EXT_SNOOP]}]")
    assert s.filters[0].base_event == 0xC8


def test_unknown_cpu_and_midr_are_refused_with_suggestions():
    err = spec_error("host: {cpu: neoverse-n3}")
    assert "unknown CPU model 'neoverse-n3'" in err.message and "neoverse-n2" in (err.hint or "")
    assert err.loc is not None and err.loc.line == 1
    err = spec_error("host: {midr: 0x410fd0d0}")  # Cortex-A77: real, but not built in
    assert "part 0xd0d" in err.message


@pytest.mark.parametrize("midr,model", [(0x410FD0C0, "neoverse-n1"), (0x413FD0C1, "neoverse-n1"),
                                        (0x410FD030, "cortex-a53"), (0x410FD4F0, "neoverse-v2")])
def test_host_by_midr_ignores_variant_and_revision(midr, model):
    assert spec(f"host: {{midr: {midr:#x}}}").host.pmus[0].model.name == model


# --- the built-in models against Arm's published tables ----------------------------------------

def _arm_table(name: str) -> dict[int, str | None]:
    doc = json.loads((ARM_DATA / f"{name}.json").read_text())
    return {e["code"]: e.get("name") for e in doc["events"]}


# Documented PMCEID reset values win over Arm's TRM-based table (Xilinx UG1087, Cortex-A53).
RESET_VALUE_DEVIATIONS = {"cortex-a53": ({0x20}, {0x1A})}  # (added, removed)


@needs_arm_data
@pytest.mark.parametrize("name", BUILT_IN)
def test_every_built_in_model_matches_arms_published_data(name):
    model = CPU_MODELS[name]
    arm = _arm_table(name)
    added, removed = RESET_VALUE_DEVIATIONS.get(name, (set(), set()))
    assert model.events == (set(arm) | added) - removed
    doc = json.loads((ARM_DATA / f"{name}.json").read_text())
    assert f"0x{model.implementer:02x}{model.part:03x}" == doc["cpuid"]
    assert model.counters == doc.get("counters", 6)
    names = {r.event: r.name for r in list_events(model)}
    for code, arm_name in arm.items():
        if arm_name is not None:
            assert names[code] == arm_name, hex(code)


@needs_arm_data
def test_common_catalog_names_match_arms_common_table():
    arm = _arm_table("common_armv9")
    catalog = Catalog("common")
    assert {c: catalog.name_of(c) for c in arm} == arm


# --- host PMCEID per model, worked out by hand ---------------------------------------------

def _pmceid(model: str) -> tuple[int, int]:
    from kvmpmu.vmm.listing import list_cpus

    row = next(r for r in list_cpus() if r.model.name == model)
    return row.pmceid0, row.pmceid1


def test_neoverse_n1_host_pmceid():
    # PMCEID0 low: 0x00-0x05, 0x08-0x0B, 0x10-0x1E -> 0x7FFF0F3F; high: 0x4000-0x4003 -> 0xF.
    # PMCEID1 low: 0x20-0x26 (0x7F), 0x29-0x2B (0xE00), 0x2D (0x2000), 0x2F (0x8000),
    #   0x31 (0x20000), 0x34-0x37 (0xF00000) -> 0x00F2AE7F; nothing of 0x4020-0x403F.
    assert _pmceid("neoverse-n1") == (0x0000000F_7FFF0F3F, 0x00000000_00F2AE7F)


def test_cortex_a53_host_pmceid_follows_the_reset_values():
    # PMUv3 (8.0), so the high halves are RES0. 0x00-0x19 (bits 0-25), 0x1D and CHAIN 0x1E
    # (bits 29, 30); not 0x1A-0x1C: 0x63FFFFFF. PMCEID1: L2D_CACHE_ALLOCATE 0x20 only.
    assert _pmceid("cortex-a53") == (0x63FFFFFF, 0x00000001)


def test_neoverse_v1_host_pmceid():
    # As N1, plus PMCEID1 0x39-0x3F (0xFE000000) and 0x4004-0x4006, 0x4009, 0x400B (0xA7F high).
    assert _pmceid("neoverse-v1") == (0x00000A7F_7FFF0F3F, 0x00000000_FEF2AE7F)


def test_cpus_listing_gives_every_model_once():
    from kvmpmu.vmm.listing import list_cpus

    assert [r.model.name for r in list_cpus()] == list(CPU_MODELS)
