"""Fuzzing the loaders and the CLI with generated and mutated specs, workloads and strings.

Every outcome must be in the exit-code table, never a traceback or an internal error; a
refused file is named with its line and column; a failed `compile -o` leaves no file behind.
The default run is short; `make fuzz` sets KVMPMU_FUZZ_EXAMPLES for a long one.
"""

import os
import re

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.clihelpers import ROOT, run_cli

EXAMPLES = int(os.environ.get("KVMPMU_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="KVMPMU_FUZZ_EXAMPLES" not in
                os.environ, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                   HealthCheck.too_slow])
ALLOWED_EXITS = {0, 1, 3, 4, 5}
SEEDS = [p.read_text() for p in sorted((ROOT / "configs").glob("*.yaml"))]
TOKENS = ["- ", ": ", "{", "}", "[", "]", ",", "&a ", "*a", "!!python/object:os.system ", "!!str ",
          "0x", "-1", "yes", "on", "0o17", "1_000", "1:30", "~", "null", "\t", "\x00", "\u00e9",
          "L3D_CACHE", "{preset: shared-resources}", "preset", "deny", "allow", "action",
          "base_event", "nevents", "vcpus", "host", "pmus", "cpu", "midr", "catalog", "kernel",
          "99999999999999999999", "0xffff", "65536", "'", '"', "#", "\n", "  ", "---\n",
          "cortex-a53", "repeat", "times", "execute", "expect", "counter", "el"]
KEYS = ["kernel", "host", "vm", "filters", "purpose", "cpu", "pmus", "vcpus", "deny", "allow",
        "action", "base_event", "nevents", "pmu", "cpus", "counters", "pmu_version", "expect",
        "execute", "events", "repeat", "steps", "program", "write", "read", "all", "name", "x"]
SCALARS = st.one_of(st.integers(-2, 2**70), st.sampled_from(
    ["L3D_CACHE", "0x11", "0x30-0x3f", "latest", "5.10", "deny", "allow", "neoverse-n1",
     "0-3", "cortex-a53", "isolation", "PMCR_EL0", "yes", ""]), st.booleans(), st.none())


@st.composite
def mutated_text(draw):
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 8))):
        pos = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "delete", "swap-line", "token"]))
        if op == "insert":
            text = text[:pos] + draw(st.text(max_size=4)) + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 12)):]
        elif op == "token":
            text = text[:pos] + draw(st.sampled_from(TOKENS)) + text[pos:]
        else:
            lines = text.splitlines(keepends=True)
            if len(lines) > 1:
                i = draw(st.integers(0, len(lines) - 2))
                lines[i], lines[i + 1] = lines[i + 1], lines[i]
                text = "".join(lines)
    return text


documents = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
    max_leaves=20)


@st.composite
def generated_text(draw):
    return yaml.safe_dump(draw(documents), default_flow_style=draw(st.booleans()))


inputs = st.one_of(mutated_text(), generated_text())


def check(result, path=None):
    assert result.exit_code in ALLOWED_EXITS, (result.exit_code, result.output)
    assert "Traceback" not in result.output and "internal error" not in result.output
    if result.exit_code == 3 and path is not None:
        # the input itself, or a file it names (a catalog), with line and column
        assert re.search(r"^\S+:\d+:\d+: error: ", result.stderr, re.M), result.stderr


@FUZZ
@given(text=inputs)
def test_fuzz_files(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "input.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass") if "\ud800" not in text \
        else path.write_bytes(text.encode("utf-8", "replace"))
    check(run_cli("validate", str(path)), path)
    check(run_cli("lint", str(path), "--json"), path)
    check(run_cli("show-pmceid", "--filter", str(path)), path)
    out = folder / "out.c"
    check(run_cli("compile", str(path), "--format", "c", "-o", str(out)), path)
    leftovers = {p.name for p in folder.iterdir()} - {"input.yaml", "out.c"}
    assert not leftovers


@FUZZ
@given(text=st.text(alphabet="ADad:-,0x123456789abcdefXZ \n", max_size=40) | st.text(max_size=20))
def test_fuzz_pmu_filter_strings(text):
    result = run_cli("run", "--pmu-filter", text, "--json")
    check(result)
    if result.exit_code == 3:
        assert result.stderr.startswith("--pmu-filter:1:")
