"""Every JSON Schema kvmpmu ships (`kvmpmu schema NAME`, and `kvmpmu/data/schemas/`): the
input formats from `spec/schema_defs.py`, the `--json` documents from `output_schemas.py`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kvmpmu.render.output_schemas import OUTPUT_DEFS, OUTPUTS, output_type
from kvmpmu.spec import schema_defs as defs
from kvmpmu.spec.schema_types import Obj, Type, document

SHIPPED = Path(__file__).resolve().parent.parent / "data" / "schemas"

SCENARIO = Obj(defs.WORKLOAD.fields, required=("vmm",), at_most_one=defs.WORKLOAD.at_most_one)
_INPUTS: dict[str, tuple[str, Type, dict[str, Type], str]] = {
    "spec": ("kvmpmu filter spec", defs.SPEC, {"entry": defs.entry_type()},
             "A policy: the host, the VM and the KVM_ARM_VCPU_PMU_V3_FILTER calls"),
    "workload": ("kvmpmu workload", defs.WORKLOAD, defs.WORKLOAD_DEFS,
                 "A guest workload (scripted steps or a program), its expectations, and "
                 "optionally a scenario (vmm:)"),
    "scenario": ("kvmpmu scenario", SCENARIO, defs.WORKLOAD_DEFS,
                 "A workload whose vmm: section lists exactly the KVM calls to make"),
    "config": ("kvmpmu configuration", defs.CONFIG, {},
               "[tool.kvmpmu] in pyproject.toml, or the whole of .kvmpmu.toml"),
}
NAMES = (*_INPUTS, *(f"output-{command}" for command in OUTPUTS))


def schema(name: str) -> dict[str, Any]:
    if name in _INPUTS:
        title, root, named, doc = _INPUTS[name]
        return document(title, root, named, doc)
    command = name.removeprefix("output-")
    return document(f"kvmpmu {command} --json", output_type(command), OUTPUT_DEFS,
                    f"The one JSON document `kvmpmu {command} --json` prints")


def schema_text(name: str) -> str:
    return json.dumps(schema(name), indent=2) + "\n"


def shipped_path(name: str) -> Path:
    return SHIPPED / f"{name}.schema.json"
