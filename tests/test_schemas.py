"""JSON Schemas: shipped as generated, valid draft 2020-12, accepting every shipped input and
every command's JSON output, and rejecting what the loaders reject."""

import json
import os

import jsonschema
import pytest

from kvmpmu.errors import SpecError
from kvmpmu.render.schemas import NAMES, schema, schema_text, shipped_path
from kvmpmu.spec import yamlio
from kvmpmu.spec.discover import classify, load_document, walk
from kvmpmu.spec.files import load_any
from tests.clihelpers import GOLDEN, ROOT, run_cli


def validator(name):
    return jsonschema.Draft202012Validator(schema(name))


def as_json_data(value):
    """What a YAML document is to a JSON Schema tool: mapping keys are strings."""
    if isinstance(value, dict):
        return {str(k): as_json_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_json_data(v) for v in value]
    return value


def document(path):
    return as_json_data(yamlio.plain(yamlio.load_file(str(path))))


@pytest.mark.parametrize("name", NAMES)
def test_shipped_schema_is_the_generated_one_and_valid_2020_12(name):
    path = shipped_path(name)
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(schema_text(name))
    assert path.read_text() == schema_text(name), f"{path}: UPDATE_GOLDEN=1 to regenerate"
    jsonschema.Draft202012Validator.check_schema(schema(name))


def test_the_schema_command_prints_the_shipped_file():
    result = run_cli("schema", "spec")
    assert result.exit_code == 0 and result.stdout == shipped_path("spec").read_text()
    assert run_cli("schema", "--path", "output-lint").stdout.strip() == \
        str(shipped_path("output-lint"))
    assert run_cli("schema", "nonsense").exit_code == 2


def shipped_inputs():
    files = []
    for path in walk(str(ROOT / "configs")):
        doc = load_document(path, 1 << 24)
        kind = classify(doc)
        if kind == "workload":
            kind = "scenario" if "vmm" in doc else "workload"
        if kind in ("spec", "workload", "scenario"):
            files.append((os.path.relpath(path, ROOT), kind))
    return files


def test_the_shipped_inputs_are_found():
    kinds = [kind for _, kind in shipped_inputs()]
    assert kinds.count("spec") >= 11 and kinds.count("scenario") >= 17 \
        and kinds.count("workload") >= 11


@pytest.mark.parametrize("path,kind", shipped_inputs())
def test_every_shipped_input_validates(path, kind):
    errors = list(validator(kind).iter_errors(document(ROOT / path)))
    assert not errors, [e.message for e in errors]
    if kind == "scenario":  # a scenario is a workload too
        assert validator("workload").is_valid(document(ROOT / path))


def test_config_schema_takes_the_example_repository_config():
    import tomllib

    data = tomllib.loads((ROOT / "configs/policy-repo/pyproject.toml").read_text())
    assert validator("config").is_valid(data["tool"]["kvmpmu"])
    assert not validator("config").is_valid({"selct": ["KP001"]})
    assert not validator("config").is_valid({"format": "xml"})


@pytest.mark.parametrize("golden", sorted(p.name for p in GOLDEN.glob("*.json")))
def test_every_golden_json_output_validates(golden):
    command = "show-pmceid" if golden.startswith("pmceid-") else "run"
    doc = json.loads((GOLDEN / golden).read_text())
    errors = list(validator(f"output-{command}").iter_errors(doc))
    assert not errors, [e.message for e in errors][:3]


COMMANDS = [
    ("run", ["run", "--filter", "configs/deny-shared-cache.yaml", "--workload",
             "configs/workload-basic.yaml"]),
    ("run", ["run", "--workload", "configs/guests/branches.yaml"]),
    ("run", ["run", "--filter", "configs/deny-shared-cache.yaml", "--workload",
             "configs/workload-basic.yaml", "--workload", "configs/workload-cancel.yaml"]),
    ("run", ["run", "--scenario", "configs/scenarios/irq-ppi.yaml"]),
    ("run", ["run", "--filter", "configs/big-little.yaml", "--kernel", "5.15"]),
    ("run", ["run", "--backend", "both", "--filter", "configs/cancel.yaml"]),
    ("run", ["run", "--bogus"]),
    ("show-pmceid", ["show-pmceid", "--pmu-filter", "D:0x30-0x3f", "--cpu", "neoverse-n1"]),
    ("validate", ["validate", "configs", "configs/nope.yaml"]),
    ("lint", ["lint", "configs", "--select", "KP0"]),
    ("lint", ["lint", "configs/multi-tenant.yaml", "--ignore", "KP9"]),
    ("explain", ["explain", "configs/cancel.yaml", "BR_RETIRED", "0x11", "0x4000"]),
    ("explain", ["explain", "--pmu-filter", "A:0x11-0x11", "CPU_CYCLES"]),
    ("diff", ["diff", "configs/multi-tenant.yaml", "--kernel-a", "5.10", "--cpu-b",
              "cortex-a53"]),
    ("diff", ["diff", "configs/first-allow.yaml", "configs/cancel.yaml"]),
    ("compile", ["compile", "configs/multi-tenant.yaml", "--format", "kvmtool"]),
    ("import", ["import", "--kvmtool", "A:0x11-0x11,D:0x30-0x3f"]),
    ("presets", ["presets", "--cpu", "cortex-a53"]),
    ("events", ["events", "--cpu", "neoverse-n1", "--search", "l3"]),
    ("cpus", ["cpus"]),
    ("conform", ["conform", "--corpus"]),
    ("test", ["test", "configs/policy-repo/tests"]),
]


@pytest.mark.parametrize("command,args", COMMANDS, ids=[" ".join(a) for _, a in COMMANDS])
def test_every_commands_json_output_validates(command, args):
    result = run_cli(*args, "--json")
    doc = json.loads(result.stdout)
    errors = list(validator(f"output-{command}").iter_errors(doc))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors][:3]


def test_an_output_schema_rejects_another_commands_document():
    doc = json.loads(run_cli("cpus", "--json").stdout)
    assert validator("output-cpus").is_valid(doc)
    assert not validator("output-events").is_valid(doc)
    doc["cpus"][0]["midr"] = 0x410FD030  # a number where the document has a string
    assert not validator("output-cpus").is_valid(doc)


BAD_SPECS = [
    "kernel: 4.19\n",
    "purpose: security\n",
    "filters:\n  - {allow: CPU_CYCLES, deny: 0x30}\n",
    "filters:\n  - {alow: CPU_CYCLES}\n",
    "filters:\n  - {action: deny, base_event: 0x10000, nevents: 1}\n",
    "filters:\n  - {action: 256, base_event: 0, nevents: 1}\n",
    "filters:\n  - {action: deny, base_event: 0}\n",
    "filters:\n  - {allow: CPU_CYCLES, base_event: 3}\n",
    "filters:\n  - {action: deny, base_event: 0, nevents: 1, pad: [0, 0]}\n",
    "filters:\n  - {deny: {preset: everything}}\n",
    "filters:\n  - {deny: []}\n",
    "filters:\n  - {deny: 0x11, expect_errno: EWHATEVER}\n",
    "vm: {vcpus: 0}\n",
    "vm: {vcpus: 513}\n",
    "vm: {irqchip: user}\n",
    "vm: {counters: 32}\n",
    "vm: {pmu_version: '9.9'}\n",
    "vm: {cpus: 'a-b'}\n",
    "vm: {vcpu: 2}\n",
    "vm: null\n",
    "host: {cpu: cortex-a99}\n",
    "host: {cpu: cortex-a53, midr: 0x410fd030}\n",
    "host: {counters: true}\n",
    "host: {pmus: []}\n",
    "host: {pmus: [{cpu: cortex-a53}]}\n",
    "host: {pmus: [{cpus: '0-1', cpu: cortex-a53}], cpu: cortex-a53}\n",
    "hosts: {}\n",
]
BAD_WORKLOADS = [
    "vcpus: {all: [{write: {PMCR_EL1: 1}}]}\n",
    "vcpus: {all: [{read: [PMCR_EL0], write: {PMCR_EL0: 1}}]}\n",
    "vcpus: {all: [{program: {event: CPU_CYCLES}}]}\n",
    "vcpus: {all: [{program: {counter: 32, event: CPU_CYCLES}}]}\n",
    "vcpus: {all: [{program: {counter: 0, event: 0x11, exclude: [el2]}}]}\n",
    "vcpus: {all: [{el: 2}]}\n",
    "vcpus: {all: [{execute: {el: 1}}]}\n",
    "vcpus: {all: [{repeat: {times: -1, steps: []}}]}\n",
    "vcpus: {all: [{vmm: {expect_errno: EBUSY}}]}\n",
    "vcpus: {all: [{exit: {now: true}}]}\n",
    "vcpus: {all: [{jump: 1}]}\n",
    "vcpus: {first: []}\n",
    "expect:\n  - {counter: cycle, eq: -1}\n",
    "expect:\n  - {vcpu: 512, counter: 0, eq: 1}\n",
    "expect:\n  - {counter: 0, equals: 1}\n",
    "expect:\n  - {vcpu: 0}\n",
    "guest: {binary: a.bin, elf: a.elf}\n",
    "guest: {load: 0x40080000}\n",
    "guest: {binary: a.bin, timeout: 0}\n",
    "guest: {binary: a.bin, regs: {x31: 1}}\n",
    "kernels: ['4.19']\n",
    "vmm: []\n",
    "vmm:\n  - {create_vcpus: 0}\n",
    "vmm:\n  - {create_vcpus: 1}\n  - {vcpu_init: {pmu: true}}\n",
    "vmm:\n  - {create_vcpus: 1}\n  - {vgic: destroy}\n",
    "vmm:\n  - {create_vcpus: 1}\n  - {has: {vcpu: 0, attr: TIMER}}\n",
    "vmm:\n  - {create_vcpus: 1}\n  - {set_irq: {vcpu: 0}}\n",
    "vmm:\n  - {create_vcpus: 1}\n  - {run: {vcpu: 0}, expect_exit: KVM_EXIT_NOPE}\n",
    "vmm:\n  - {create_vcpus: 1}\n  - {set_pmu: {vcpu: 0, pmu: big, type: 8}}\n",
    "vmm:\n  - {create_vcpus: 1}\n  - {get_one_reg: {vcpu: 0, reg: NOT_A_REG}}\n",
    "vmm:\n  - {create_vcpus: 1, run: {vcpu: 0}}\n",
    "vmm:\n  - {create_vcpus: 1}\n  - {filter: {vcpu: 0, deny: 0x11, expect_mask: 1}}\n",
    "policy: 3\nexpect: []\n",
]


def _loader_rejects(tmp_path, text, name):
    path = tmp_path / name
    path.write_text(text)
    (tmp_path / "a.bin").write_bytes(b"\0" * 4)
    (tmp_path / "a.elf").write_bytes(b"\0" * 4)
    with pytest.raises(SpecError):
        load_any(str(path), 1 << 20)
    return as_json_data(yamlio.plain(yamlio.load(text, name)))


@pytest.mark.parametrize("text", BAD_SPECS)
def test_the_spec_schema_rejects_what_the_loader_rejects(tmp_path, text):
    assert not validator("spec").is_valid(_loader_rejects(tmp_path, text, "s.yaml"))


@pytest.mark.parametrize("text", BAD_WORKLOADS)
def test_the_workload_schema_rejects_what_the_loader_rejects(tmp_path, text):
    assert not validator("workload").is_valid(_loader_rejects(tmp_path, text, "w.yaml"))


def test_case_insensitive_names_are_accepted_by_both(tmp_path):
    text = ("vcpus: {all: [{write: {pmcr_el0: 1}}, {read: pmccntr_el0}]}\n"
            "expect:\n  - {undef: pmevcntr7_el0}\n")
    path = tmp_path / "w.yaml"
    path.write_text(text)
    load_any(str(path), 1 << 20)
    assert validator("workload").is_valid(document(path))
    spec = tmp_path / "s.yaml"
    spec.write_text("host: {cpu: Cortex-A53}\nfilters:\n  - {action: DENY, base_event: 0x11, "
                    "nevents: 1, expect_errno: einval}\n")
    load_any(str(spec), 1 << 20)
    assert validator("spec").is_valid(document(spec))


MODELINE = "# yaml-language-server: $schema="


def modeline_files():
    return sorted(os.path.relpath(p, ROOT) for p in (ROOT / "configs").rglob("*.yaml")
                  if p.read_text().startswith(MODELINE))


def test_the_example_repository_uses_the_modeline():
    assert len(modeline_files()) >= 6


@pytest.mark.parametrize("path", modeline_files())
def test_a_modeline_names_a_shipped_schema_the_file_satisfies(path):
    first = (ROOT / path).read_text().splitlines()[0]
    target = (ROOT / path).parent / first.removeprefix(MODELINE)
    assert target.resolve().parent == shipped_path("spec").parent
    data = document(ROOT / path)
    name = target.name.removesuffix(".schema.json")
    assert jsonschema.Draft202012Validator(json.loads(target.read_text())).is_valid(data)
    assert name == {"spec": "spec", "workload": "scenario" if "vmm" in data else "workload"}[
        classify(data)]
