"""Run a scenario (`vmm:`): exactly the calls it lists, in order, each judged against its
expectations; a call that fails without `expect_errno` stops the VMM."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TypedDict

from kvmpmu.errors import SourceLoc
from kvmpmu.spec.scenario import ScenarioCall
from kvmpmu.uapi import kvm as uapi
from kvmpmu.vmm.results import CallRecord, ExpectResult
from kvmpmu.vmm.vmm import Vmm

Handler = Callable[[Vmm, ScenarioCall, dict[str, int]], list[CallRecord]]


class CallOptions(TypedDict):
    loc: SourceLoc | None
    expecting: bool
    expected: str | None


def _kw(item: ScenarioCall) -> CallOptions:
    return {"loc": item.loc, "expecting": item.expect.expecting, "expected": item.expect.errno}


def _vcpu(item: ScenarioCall) -> int:
    assert item.vcpu is not None  # the parser gives every per-vCPU call its vCPU
    return item.vcpu


def _until_failure(make: Callable[[int], CallRecord], count: int) -> list[CallRecord]:
    """An item that makes several calls stops at the first that fails: that is its result."""
    records: list[CallRecord] = []
    for i in range(count):
        records.append(make(i))
        if records[-1].errno is not None:
            break
    return records


def _create_vcpus(vmm: Vmm, item: ScenarioCall, _: dict[str, int]) -> list[CallRecord]:
    return _until_failure(lambda i: vmm.create_vcpu(i, **_kw(item)), item.count)


def _vcpu_init(vmm: Vmm, item: ScenarioCall, _: dict[str, int]) -> list[CallRecord]:
    return [vmm.vcpu_init(_vcpu(item), item.pmu, **_kw(item))]


def _vgic(vmm: Vmm, item: ScenarioCall, _: dict[str, int]) -> list[CallRecord]:
    make = vmm.create_vgic if item.vgic == "create" else vmm.init_vgic
    return [make(**_kw(item))]


def _has(vmm: Vmm, item: ScenarioCall, _: dict[str, int]) -> list[CallRecord]:
    return [vmm.has_attr(_vcpu(item), item.attr, **_kw(item))]


def _get(vmm: Vmm, item: ScenarioCall, _: dict[str, int]) -> list[CallRecord]:
    return [vmm.get_attr(_vcpu(item), item.attr, **_kw(item))]


def _set_irq(vmm: Vmm, item: ScenarioCall, _: dict[str, int]) -> list[CallRecord]:
    return [vmm.set_attr(_vcpu(item), uapi.KVM_ARM_VCPU_PMU_V3_IRQ, {"irq": item.value},
                         struct.pack("<i", item.value), **_kw(item))]


def _filter(vmm: Vmm, item: ScenarioCall, _: dict[str, int]) -> list[CallRecord]:
    return _until_failure(lambda i: vmm.filter(_vcpu(item), item.filters[i], **_kw(item)),
                          len(item.filters))


def _set_pmu(vmm: Vmm, item: ScenarioCall, pmu_types: dict[str, int]) -> list[CallRecord]:
    pmu_type = item.value if item.pmu_name is None else pmu_types[item.pmu_name]
    args: dict[str, object] = {"pmu_id": pmu_type}
    if item.pmu_name is not None:
        args["pmu"] = item.pmu_name
    return [vmm.set_attr(_vcpu(item), uapi.KVM_ARM_VCPU_PMU_V3_SET_PMU, args,
                         struct.pack("<i", pmu_type), **_kw(item))]


def _set_nr_counters(vmm: Vmm, item: ScenarioCall, _: dict[str, int]) -> list[CallRecord]:
    return [vmm.set_attr(_vcpu(item), uapi.KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS,
                         {"nr_counters": item.value}, struct.pack("<I", item.value),
                         **_kw(item))]


def _set_one_reg(vmm: Vmm, item: ScenarioCall, _: dict[str, int]) -> list[CallRecord]:
    """With `mask`, the register is read first and only those bits change (two calls)."""
    vcpu, value, mask = _vcpu(item), item.value, item.mask
    records = []
    args: dict[str, object] | None = None
    if mask is not None:
        records.append(vmm.get_one_reg(vcpu, item.reg_id, item.reg_name, **_kw(item)))
        if records[-1].errno is not None:
            return records
        value = (records[-1].value or 0) & ~mask | value & mask
        args = {"value": value, "mask": mask}
    records.append(vmm.set_one_reg(vcpu, item.reg_id, item.reg_name, value, args, **_kw(item)))
    return records


def _get_one_reg(vmm: Vmm, item: ScenarioCall, _: dict[str, int]) -> list[CallRecord]:
    return [vmm.get_one_reg(_vcpu(item), item.reg_id, item.reg_name,
                            **_kw(item))]


def _pmu_init(vmm: Vmm, item: ScenarioCall, _: dict[str, int]) -> list[CallRecord]:
    return [vmm.set_attr(_vcpu(item), uapi.KVM_ARM_VCPU_PMU_V3_INIT, {},
                         **_kw(item))]


def _run(vmm: Vmm, item: ScenarioCall, _: dict[str, int]) -> list[CallRecord]:
    return [vmm.run(_vcpu(item), **_kw(item))]


HANDLERS: dict[str, Handler] = {
    "create_vcpus": _create_vcpus, "vcpu_init": _vcpu_init, "vgic": _vgic, "has": _has,
    "get": _get, "set_irq": _set_irq, "filter": _filter, "set_pmu": _set_pmu,
    "set_nr_counters": _set_nr_counters, "set_one_reg": _set_one_reg,
    "get_one_reg": _get_one_reg, "pmu_init": _pmu_init, "run": _run,
}


def run_scenario(vmm: Vmm, calls: tuple[ScenarioCall, ...], pmu_types: dict[str, int],
                 judged: list[ExpectResult]) -> None:
    """Make every call in order; `judged` fills as the items run (a stop keeps what ran)."""
    for item in calls:
        records = HANDLERS[item.call](vmm, item, pmu_types)
        judged.extend(judge(item, records[-1] if records else None))


def judge(item: ScenarioCall, record: CallRecord | None) -> list[ExpectResult]:
    expect = item.expect
    errno = record.errno if record else None
    out = []
    if expect.expecting:
        out.append(ExpectResult(item.raw, errno == expect.errno, errno, item.loc))
    if expect.value is not None:
        value = record.value if record and errno is None else None
        got = None if value is None else value & expect.mask
        out.append(ExpectResult(item.raw, got == expect.value & expect.mask,
                                None if got is None else f"0x{got:x}", item.loc))
    if expect.exit is not None:
        reason = record.exit.reason if record and record.exit else None
        out.append(ExpectResult(item.raw, reason == expect.exit, reason, item.loc))
    return out
