"""`host: {catalog: FILE}` and `--events-db`: Arm's pmu/*.json and Linux perf's pmu-events JSON."""

import json
from pathlib import Path

import pytest

from kvmpmu.arch import sysregs as sr
from kvmpmu.errors import SpecError
from kvmpmu.spec.catalog_import import load_catalog
from kvmpmu.spec.filterspec import load_filter_spec
from tests.armdata import ARM_DATA, needs_arm_data

ARM_DOC = {
    "_type": "Events", "cpu": "Test Core", "cpuid": "0x41d0c", "architecture": "armv8.2-a",
    "counters": 4,
    "events": [
        {"code": 17, "name": "CPU_CYCLES", "description": "Cycle"},
        {"code": 0x4000, "name": "SAMPLE_POP", "description": "Sample population"},
        {"code": 0xC0, "name": "MY_BUS_SNOOP", "description": "Snoop from another cluster"},
        {"code": 0xC1, "description": "An unnamed IMPDEF event"},
    ],
}
PERF_DOC = [
    {"ArchStdEvent": "CPU_CYCLES"},
    {"ArchStdEvent": "l2d_cache", "PublicDescription": "Our own wording"},
    {"EventCode": "0xC0", "EventName": "EXT_MEM_REQ", "BriefDescription": "External request"},
    {"MetricName": "ipc", "MetricExpr": "INST_RETIRED / CPU_CYCLES"},
]


def write(tmp_path: Path, name: str, content: object) -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content, indent=2))
    return str(path)


def error_of(path: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        load_catalog(path)
    return info.value


def test_arm_format(tmp_path):
    model = load_catalog(write(tmp_path, "core.json", ARM_DOC))
    assert (model.implementer, model.part, model.counters) == (0x41, 0xD0C, 4)
    assert model.pmuver == sr.PMUVER_V3P1  # armv8.2-a
    assert model.events == {0x11, 0x4000, 0xC0, 0xC1}
    assert model.impdef[0xC0].name == "MY_BUS_SNOOP" and model.impdef[0xC1].name == "IMPDEF_0xC1"
    assert 0x11 not in model.impdef  # a common name is not IMPDEF


def test_perf_format_array_and_folder(tmp_path):
    model = load_catalog(write(tmp_path, "a53.json", PERF_DOC))
    assert model.events == {0x11, 0x16, 0xC0}
    assert model.impdef[0xC0].name == "EXT_MEM_REQ"
    folder = tmp_path / "cortex-x"
    folder.mkdir()
    write(folder, "cache.json", PERF_DOC[:2])
    write(folder, "bus.json", PERF_DOC[2:])
    assert load_catalog(str(folder)).events == {0x11, 0x16, 0xC0}


@needs_arm_data
def test_arms_own_cortex_a53_file_loads_as_published():
    model = load_catalog(str(ARM_DATA / "cortex-a53.json"))
    assert (model.part, model.pmuver, len(model.events)) == (0xD03, sr.PMUVER_IMP, 59)
    assert 0x1A in model.events and 0x20 not in model.events  # the table, not the reset value
    assert model.impdef[0xC0].name == "IMPDEF_0xC0"  # the file gives no name


def test_names_from_a_catalog_resolve_in_specs(tmp_path):
    write(tmp_path, "core.json", ARM_DOC)
    spec_path = write(tmp_path, "spec.yaml", "host: {catalog: core.json}\n"
                      "filters: [{deny: [my_bus_snoop, IMPDEF_0xC1]}]\n")
    spec = load_filter_spec(spec_path)  # the catalog path is relative to the spec's folder
    assert [c.base_event for c in spec.filters] == [0xC0]  # 0xC0-0xC1 merged into one call
    assert spec.filters[0].nevents == 2
    other = write(tmp_path, "plain.yaml", "filters: [{deny: [MY_BUS_SNOOP]}]\n")
    assert load_filter_spec(other, events_db=str(tmp_path / "core.json")).filters[0].base_event \
        == 0xC0


@pytest.mark.parametrize("content,message,line", [
    ('{"events": [\n  {"code": 17,}\n]}', "JSON syntax", 2),
    ('{"events": {"code": 1}}', "events", 1),
    ('{"events": [{"code": "seventeen", "name": "X"}]}', "not a number", 1),
    ('{"events": [{"code": 70000, "name": "X"}]}', "events[0].code", 1),
    ('{"cpuid": "arm", "events": []}', "cpuid", 1),
    ('[{"EventName": "X"}]', "EventCode", 1),
    ('[{"ArchStdEvent": "CPU_CYCLE"}]', "unknown ArchStdEvent 'CPU_CYCLE'", 1),
    ('"just a string"', "neither Arm's PMU format", 1),
    ('{"name": "no events key"}', "neither Arm's PMU format", 1),
])
def test_malformed_files_are_refused_with_file_and_line(tmp_path, content, message, line):
    path = write(tmp_path, "bad.json", content)
    err = error_of(path)
    assert message in err.render()
    assert err.loc is not None and err.loc.file == path and err.loc.line == line


def test_unknown_arch_std_event_suggests_the_close_name(tmp_path):
    err = error_of(write(tmp_path, "bad.json", '[{"ArchStdEvent": "CPU_CYCLE"}]'))
    assert "CPU_CYCLES" in (err.hint or "")


def test_missing_empty_and_binary_files(tmp_path):
    assert "no .json" in error_of(str(tmp_path)).message
    assert error_of(str(tmp_path / "absent.json")).loc is not None
    empty = write(tmp_path, "empty.json", "")
    assert error_of(empty).loc is not None
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert error_of(str(binary)).loc is not None
