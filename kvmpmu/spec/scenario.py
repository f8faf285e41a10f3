"""A scenario: the `vmm:` section of a workload, the exact sequence of KVM calls a VMM makes.

Each item is one call (or one `run`) written as a mapping with one call key; `expect_errno`,
`expect_value` and `expect_exit` may stand inside the call's argument or beside the call key.
"""

from __future__ import annotations

from typing import Any, Literal

from kvmpmu.arch.catalog import Catalog
from kvmpmu.errors import SourceLoc
from kvmpmu.records import Record
from kvmpmu.spec import schema_defs as defs
from kvmpmu.spec import yamlio
from kvmpmu.spec.filterspec import U16_MAX, FilterCall, parse_entry, parse_errno_name
from kvmpmu.spec.schema import Node
from kvmpmu.spec.schema_types import Obj

Call = Literal["create_vcpus", "vcpu_init", "vgic", "has", "get", "set_irq", "filter",
               "set_pmu", "set_nr_counters", "set_one_reg", "get_one_reg", "pmu_init", "run"]
CALLS: tuple[str, ...] = defs.CALL.keys
EXPECT_KEYS = defs.EXPECT_KEYS
EXIT_REASONS = defs.EXIT_REASONS
MAX_VCPUS = defs.MAX_VCPUS
ATTRS = defs.ATTRS
ONE_REG_IDS = defs.ONE_REG_IDS


class Expectation(Record):
    __slots__ = ("errno", "expecting", "value", "mask", "exit")

    def __init__(self, errno: str | None = None, expecting: bool = False,
                 value: int | None = None, mask: int = 2**64 - 1,
                 exit: str | None = None) -> None:
        self.errno = errno
        self.expecting = expecting  # expect_errno was given (null: the call must succeed)
        self.value = value  # expect_value: what a read must return
        self.mask = mask  # expect_mask: the bits of the read that expect_value judges
        self.exit = exit  # expect_exit: the exit reason a `run` must end with


class ScenarioCall(Record):
    """One item. Which fields matter depends on `call` (`get_irq` is `get` of IRQ)."""

    __slots__ = ("call", "loc", "raw", "expect", "vcpu", "count", "pmu", "vgic", "attr",
                 "value", "pmu_name", "reg_id", "reg_name", "mask", "filters")

    def __init__(self, call: Call, loc: SourceLoc, raw: dict[str, Any], expect: Expectation,
                 vcpu: int | None = None, count: int = 0, pmu: bool = True,
                 vgic: Literal["create", "init"] = "create", attr: int = 0, value: int = 0,
                 pmu_name: str | None = None, reg_id: int = 0, reg_name: str | None = None,
                 mask: int | None = None, filters: tuple[FilterCall, ...] = ()) -> None:
        self.call, self.loc, self.raw, self.expect, self.vcpu = call, loc, raw, expect, vcpu
        self.count = count  # create_vcpus
        self.pmu = pmu  # vcpu_init: with KVM_ARM_VCPU_PMU_V3
        self.vgic = vgic
        self.attr = attr  # has, get
        self.value = value  # set_irq, set_nr_counters, set_pmu (perf type), set_one_reg
        self.pmu_name = pmu_name  # set_pmu by name
        self.reg_id, self.reg_name = reg_id, reg_name  # one_reg
        self.mask = mask  # set_one_reg of these bits only: GET, then SET
        self.filters = filters


def attr_number(node: Node) -> int:
    """IRQ, INIT, FILTER, SET_PMU, SET_NR_COUNTERS (or KVM_ARM_VCPU_PMU_V3_<name>) or a number."""
    if isinstance(node.value, str):
        name = node.value.upper().removeprefix(defs.ATTR_PREFIX)
        if name not in ATTRS:
            node.choice(tuple(ATTRS))  # raises with the closest name
        return ATTRS[name]
    return defs.ATTR_NUMBER.read(node)


def one_reg(node: Node) -> tuple[int, str | None]:
    """A register by name (PMU and ID registers, X0-X30, SP, PC, PSTATE, ...) or 64-bit id."""
    if isinstance(node.value, str):
        name = node.value.upper()
        if name not in ONE_REG_IDS:
            node.choice(tuple(ONE_REG_IDS))
        return ONE_REG_IDS[name], name
    reg_id = defs.ONE_REG_NUMBER.read(node)
    names = {v: k for k, v in ONE_REG_IDS.items()}
    return reg_id, names.get(reg_id)


class _Parser:
    def __init__(self, catalog: Catalog, max_event: int) -> None:
        self.catalog = catalog
        self.max_event = max_event
        self.created = 0  # vCPUs 0..created-1 exist before the current item
        self.vgic = False

    def item(self, node: Node) -> ScenarioCall:
        m = node.mapping(CALLS + EXPECT_KEYS)  # a call and the expectations beside it
        keys = [k for k in m if k in CALLS]
        if len(keys) != 1:
            raise node.error("a scenario item has exactly one call: " + ", ".join(CALLS))
        key = keys[0]
        arg = node.require(key)
        expect = self._expectation(node, arg)
        base: dict[str, Any] = {"loc": node.loc, "raw": yamlio.plain(node.value),
                                "expect": expect}
        parsed: ScenarioCall = _ITEM_PARSERS[key](self, arg, base)
        return parsed

    def _expectation(self, node: Node, arg: Node) -> Expectation:
        found: dict[str, Node] = {}
        for holder in (node, arg):
            if not isinstance(holder.value, yamlio.YMap):
                continue
            for key in EXPECT_KEYS:
                sub = holder.get(key)
                if sub is not None:
                    if key in found:
                        raise sub.error(f"{key} given twice")
                    found[key] = sub
        errno = found.get("expect_errno")
        value = found.get("expect_value")
        mask = found.get("expect_mask")
        exit_ = found.get("expect_exit")
        if mask is not None and value is None:
            raise mask.error("expect_mask selects the bits expect_value judges: give both")
        kinds = defs.CALL_EXPECT
        return Expectation(
            errno=parse_errno_name(errno) if errno is not None else None,
            expecting=errno is not None,
            value=kinds["expect_value"].read(value) if value else None,
            mask=kinds["expect_mask"].read(mask) if mask else defs.U64_MAX,
            exit=kinds["expect_exit"].read(exit_).removeprefix(defs.EXIT_PREFIX) if exit_
            else None)

    def _vcpu(self, arg: Node, call: str) -> int:
        kind = defs.CALL[call]
        if isinstance(kind, Obj):
            kind.check(arg)
        node = arg.require("vcpu")
        index = defs.VCPU.read(node)
        if index >= self.created:
            raise node.error(f"vCPU {index} has not been created by an earlier create_vcpus "
                             f"({self.created} created so far)")
        return index

    def _create_vcpus(self, arg: Node, base: dict[str, Any]) -> ScenarioCall:
        count = defs.CALL["create_vcpus"].read(arg)
        self.created = max(self.created, count)
        return ScenarioCall("create_vcpus", count=count, **base)

    def _vcpu_init(self, arg: Node, base: dict[str, Any]) -> ScenarioCall:
        vcpu = self._vcpu(arg, "vcpu_init")
        pmu, kind = arg.get("pmu"), defs.CALL["vcpu_init"]["pmu"]
        return ScenarioCall("vcpu_init", vcpu=vcpu, pmu=kind.read(pmu) if pmu else kind.default,
                            **base)

    def _vgic(self, arg: Node, base: dict[str, Any]) -> ScenarioCall:
        action = defs.CALL["vgic"].read(arg)
        if action == "init" and not self.vgic:
            raise arg.error("vgic: init needs an earlier vgic: create (the device's fd)")
        self.vgic = True
        return ScenarioCall("vgic", vgic="create" if action == "create" else "init", **base)

    def _has(self, arg: Node, base: dict[str, Any]) -> ScenarioCall:
        vcpu = self._vcpu(arg, "has")
        return ScenarioCall("has", vcpu=vcpu, attr=attr_number(arg.require("attr")), **base)

    def _get(self, arg: Node, base: dict[str, Any]) -> ScenarioCall:
        vcpu = self._vcpu(arg, "get")
        return ScenarioCall("get", vcpu=vcpu, attr=attr_number(arg.require("attr")), **base)

    def _get_irq(self, arg: Node, base: dict[str, Any]) -> ScenarioCall:
        return ScenarioCall("get", vcpu=self._vcpu(arg, "get_irq"), attr=ATTRS["IRQ"], **base)

    def _set_irq(self, arg: Node, base: dict[str, Any]) -> ScenarioCall:
        vcpu = self._vcpu(arg, "set_irq")
        irq = defs.CALL["set_irq"]["irq"].read(arg.require("irq"))
        return ScenarioCall("set_irq", vcpu=vcpu, value=irq, **base)

    def _filter(self, arg: Node, base: dict[str, Any]) -> ScenarioCall:
        vcpu = self._vcpu(arg, "filter")
        calls, _, _ = parse_entry(arg, 0, self.catalog, self.max_event,
                                  extra_keys=tuple(defs.SCENARIO_FILTER_EXTRA))
        return ScenarioCall("filter", vcpu=vcpu, filters=tuple(calls), **base)

    def _set_pmu(self, arg: Node, base: dict[str, Any]) -> ScenarioCall:
        vcpu = self._vcpu(arg, "set_pmu")
        pmu, type_ = arg.get("pmu"), arg.get("type")
        if pmu is not None and isinstance(pmu.value, yamlio.YMap):
            defs.PMU_BY_TYPE.check(pmu)
            type_ = pmu.require("type")
            pmu = None
        if (pmu is None) == (type_ is None):
            raise arg.error("set_pmu takes pmu: NAME (a host PMU) or type: N (a perf type)")
        if type_ is not None:
            value = defs.PMU_BY_TYPE["type"].read(type_)
            return ScenarioCall("set_pmu", vcpu=vcpu, value=value, **base)
        assert pmu is not None
        return ScenarioCall("set_pmu", vcpu=vcpu, pmu_name=pmu.string(), **base)

    def _set_nr_counters(self, arg: Node, base: dict[str, Any]) -> ScenarioCall:
        vcpu = self._vcpu(arg, "set_nr_counters")
        n = defs.CALL["set_nr_counters"]["n"].read(arg.require("n"))
        return ScenarioCall("set_nr_counters", vcpu=vcpu, value=n, **base)

    def _set_one_reg(self, arg: Node, base: dict[str, Any]) -> ScenarioCall:
        vcpu = self._vcpu(arg, "set_one_reg")
        kind = defs.CALL["set_one_reg"]
        reg_id, name = one_reg(arg.require("reg"))
        value = kind["value"].read(arg.require("value"))
        mask = arg.get("mask")
        return ScenarioCall("set_one_reg", vcpu=vcpu, reg_id=reg_id, reg_name=name, value=value,
                            mask=kind["mask"].read(mask) if mask else None, **base)

    def _get_one_reg(self, arg: Node, base: dict[str, Any]) -> ScenarioCall:
        vcpu = self._vcpu(arg, "get_one_reg")
        reg_id, name = one_reg(arg.require("reg"))
        return ScenarioCall("get_one_reg", vcpu=vcpu, reg_id=reg_id, reg_name=name, **base)

    def _pmu_init(self, arg: Node, base: dict[str, Any]) -> ScenarioCall:
        return ScenarioCall("pmu_init", vcpu=self._vcpu(arg, "pmu_init"), **base)

    def _run(self, arg: Node, base: dict[str, Any]) -> ScenarioCall:
        return ScenarioCall("run", vcpu=self._vcpu(arg, "run"), **base)


_ITEM_PARSERS = {key: getattr(_Parser, "_" + key) for key in CALLS}


def parse_scenario(node: Node, catalog: Catalog,
                   max_event: int = U16_MAX) -> tuple[ScenarioCall, ...]:
    parser = _Parser(catalog, max_event)
    items = node.items()
    if not items:
        raise node.error("a vmm: section lists at least one call")
    return tuple(parser.item(item) for item in items)
