"""The fast paths give what the general ones give: JSON specs, and raw filter entries."""

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from kvmpmu.cli.exitcodes import ExitCode
from kvmpmu.errors import SourceLoc, SpecError
from kvmpmu.spec.filterspec import _raw_call, load_filter_spec, parse_entry, parse_filters
from kvmpmu.spec.hostspec import HostSpec
from kvmpmu.spec.schema import root
from kvmpmu.spec.yamlio import load
from tests.clihelpers import run_cli

ROOT = Path(__file__).resolve().parent.parent

SPEC = {"kernel": "6.6", "host": {"cpu": "neoverse-n1"}, "vm": {"vcpus": 2},
        "filters": [{"deny": ["L3D_CACHE", "0x30-0x3f"]},
                    {"action": "allow", "base_event": 17, "nevents": 1},
                    {"action": 1, "base_event": 0x4000, "nevents": 64}]}


def calls(spec):
    return [(c.base_event, c.nevents, c.action, c.entry) for c in spec.filters]


def test_json_fast_path_reads_the_same_spec_without_positions(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(SPEC))
    fast = load_filter_spec(str(path), fast_json=True)
    slow = load_filter_spec(str(path))
    assert calls(fast) == calls(slow) and fast.vm == slow.vm and fast.kernel == slow.kernel
    assert str(fast.filters[0].loc) == str(path)  # the file, no line
    assert slow.filters[0].loc.line == 1


def test_json_errors_still_have_line_and_column(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text('{\n  "filters": [\n    {"deny": "L3D_CACHE_REFIL"}\n  ]\n}\n')
    result = run_cli("show-pmceid", "--filter", str(path))
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert result.stderr.startswith(f"{path}:3:14: error: filters[0].deny: unknown event")
    path.write_text('{"vm": {"vcpus": 1}, "vm": {"vcpus": 2}}')
    assert run_cli("run", "--filter", str(path)).stderr == \
        f"{path}:1:22: error: duplicate key 'vm' (first at line 1)\n"


def test_compact_yaml_reads_the_same_spec_with_every_call_located(tmp_path):
    """Every shipped policy: compactly read, the same calls, VM and host, each call at the line
    and column of its entry (they are printed); no terms (lint's)."""
    for path in sorted(ROOT.glob("configs/*.yaml")):
        if "filters:" not in path.read_text():
            continue
        fast = load_filter_spec(str(path), compact=True)
        slow = load_filter_spec(str(path))
        assert fast.filters == slow.filters and fast.vm == slow.vm, path
        assert fast.host == slow.host and fast.named_events == slow.named_events, path
        assert fast.terms == () and slow.terms, path  # lint's, which never reads compactly


def test_compact_yaml_errors_still_have_line_and_column(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("filters:\n  - {action: allow, base_event: 0x11, nevents: 1}\n"
                    "  - {action: allow, base_event: 0x11, nevents: 0x10000}\n")
    result = run_cli("show-pmceid", "--filter", str(path))
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert result.stderr.startswith(f"{path}:3:48: error: filters[1].nevents: ")


def test_compact_yaml_is_released_as_it_is_read(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("filters:\n  - {action: deny, base_event: 0x11, nevents: 1}\n")
    doc = load(path.read_text(), str(path), compact=True)
    entry = doc["filters"][0]
    assert entry.loc == SourceLoc(str(path), 2, 5)  # the entry's own position
    assert entry.value_loc["nevents"] == SourceLoc(str(path), 0, 0)  # its values': the file
    full = load(path.read_text(), str(path))
    assert full["filters"][0].value_loc["nevents"] == SourceLoc(str(path), 2, 47)
    calls = parse_filters(root(doc, str(path)).require("filters"), HostSpec().catalog())[0]
    assert calls[0].loc == SourceLoc(str(path), 2, 5) and doc["filters"] == [None]


values = st.one_of(st.integers(-2, 0x10001), st.sampled_from(["allow", "deny", "ALLOW", "x"]),
                   st.booleans(), st.none(), st.floats(allow_nan=False))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["action", "base_event", "nevents", "deny"]), values,
                       max_size=4))
def test_raw_entries_parse_as_the_general_path_does(entry):
    node = root(load(json.dumps({"e": entry}), "t.yaml"), "t.yaml").require("e")
    catalog = HostSpec().catalog()
    try:
        general = parse_entry(node, 0, catalog)[0]
    except SpecError:
        general = None
    fast = _raw_call(node.value, SourceLoc("t.yaml", 1, 1), 0)
    if fast is not None:  # whatever the fast path accepts, the general path accepts alike
        assert general is not None and [(c.base_event, c.nevents, c.action) for c in general] \
            == [(fast.base_event, fast.nevents, fast.action)]
