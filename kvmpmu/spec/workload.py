"""The scripted guest workload (`--workload FILE`): per-vCPU steps and expectations."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Union

from kvmpmu.arch import events as ev
from kvmpmu.arch import sysregs as sr
from kvmpmu.arch.catalog import Catalog, common_catalog
from kvmpmu.errors import SourceLoc
from kvmpmu.records import Record
from kvmpmu.spec import schema_defs as defs
from kvmpmu.spec import yamlio
from kvmpmu.spec.filterspec import (
    FilterCall,
    parse_entry,
    parse_errno_name,
    parse_event,
)
from kvmpmu.spec.guestspec import GuestSpec, parse_guest
from kvmpmu.spec.schema import Errors, Node, root

if TYPE_CHECKING:  # a scenario's parser loads only for a workload with `vmm:`
    from kvmpmu.spec.scenario import ScenarioCall

MAX_WORKLOAD_STEPS = 100_000_000
MAX_EXECUTE_COUNT = defs.U64_MAX
COMPARISONS = defs.COMPARISONS
REGISTERS = defs.REGISTER.choices


class Access(Record):
    """MSR (value given) or MRS (value None) of PMU registers, in order."""

    __slots__ = ("ops", "loc", "kind")

    def __init__(self, ops: tuple[tuple[str, int | None], ...], loc: SourceLoc,
                 kind: str) -> None:
        self.ops, self.loc = ops, loc
        self.kind = kind  # the step keyword that produced it, for messages


class Execute(Record):
    __slots__ = ("el", "events", "loc")

    def __init__(self, el: int, events: tuple[tuple[int, int], ...], loc: SourceLoc) -> None:
        self.el, self.events, self.loc = el, events, loc


class SetEl(Record):
    __slots__ = ("el", "loc")

    def __init__(self, el: int, loc: SourceLoc) -> None:
        self.el, self.loc = el, loc


class VmmCall(Record):
    __slots__ = ("calls", "expect_errno", "expecting", "loc")

    def __init__(self, calls: tuple[FilterCall, ...], expect_errno: str | None,
                 expecting: bool, loc: SourceLoc) -> None:
        self.calls, self.expect_errno = calls, expect_errno
        self.expecting = expecting  # expect_errno was given (null: the call must succeed)
        self.loc = loc


class Exit(Record):
    """The guest exits to the VMM (as at an MMIO store); the vCPU's next KVM_RUN goes on."""

    __slots__ = ("loc",)

    def __init__(self, loc: SourceLoc) -> None:
        self.loc = loc


class Repeat(Record):
    __slots__ = ("times", "steps", "loc")

    def __init__(self, times: int, steps: tuple[Step, ...], loc: SourceLoc) -> None:
        self.times, self.steps, self.loc = times, steps, loc


Step = Union[Access, Execute, SetEl, VmmCall, Exit, Repeat]  # noqa: UP007 - a runtime alias on 3.10


class CounterExpect(Record):
    __slots__ = ("vcpu", "counter", "op", "value", "raw", "loc")

    def __init__(self, vcpu: int, counter: int, op: str, value: int, raw: dict[str, object],
                 loc: SourceLoc) -> None:
        self.vcpu, self.counter, self.op, self.value, self.raw, self.loc = \
            vcpu, counter, op, value, raw, loc


class PmceidExpect(Record):
    __slots__ = ("vcpu", "visible", "hidden", "raw", "loc")

    def __init__(self, vcpu: int, visible: tuple[int, ...], hidden: tuple[int, ...],
                 raw: dict[str, object], loc: SourceLoc) -> None:
        self.vcpu, self.visible, self.hidden, self.raw, self.loc = vcpu, visible, hidden, raw, loc


class ReportExpect(Record):
    """A value the emulated guest reported through its mailbox (`report: N`, 0-based)."""

    __slots__ = ("vcpu", "index", "op", "value", "raw", "loc")

    def __init__(self, vcpu: int, index: int, op: str, value: int, raw: dict[str, object],
                 loc: SourceLoc) -> None:
        self.vcpu, self.index, self.op, self.value, self.raw, self.loc = \
            vcpu, index, op, value, raw, loc


class ReadExpect(Record):
    """The last value the guest read from a register (`read: NAME`), masked by `mask`."""

    __slots__ = ("vcpu", "register", "op", "value", "mask", "raw", "loc")

    def __init__(self, vcpu: int, register: str, op: str, value: int, mask: int,
                 raw: dict[str, object], loc: SourceLoc) -> None:
        self.vcpu, self.register, self.op, self.value, self.mask = vcpu, register, op, value, mask
        self.raw, self.loc = raw, loc


class UndefExpect(Record):
    """An access to `register` was UNDEFINED (`undef: NAME`), or with `undef: false`, none."""

    __slots__ = ("vcpu", "register", "undefined", "raw", "loc")

    def __init__(self, vcpu: int, register: str, undefined: bool, raw: dict[str, object],
                 loc: SourceLoc) -> None:
        self.vcpu, self.register, self.undefined, self.raw, self.loc = \
            vcpu, register, undefined, raw, loc


Expect = Union[CounterExpect, PmceidExpect, ReportExpect, ReadExpect, UndefExpect]  # noqa: UP007


class Workload(Record):
    __slots__ = ("file", "all_steps", "per_vcpu", "vcpu_locs", "expect", "guest", "scenario",
                 "kernels", "policy")

    def __init__(self, file: str, all_steps: tuple[Step, ...] | None = None,
                 per_vcpu: dict[int, tuple[Step, ...]] | None = None,
                 vcpu_locs: dict[int, SourceLoc] | None = None, expect: tuple[Expect, ...] = (),
                 guest: GuestSpec | None = None,
                 scenario: tuple[ScenarioCall, ...] | None = None,
                 kernels: tuple[str, ...] | None = None, policy: str | None = None) -> None:
        self.file, self.all_steps = file, all_steps
        self.per_vcpu = per_vcpu if per_vcpu is not None else {}
        self.vcpu_locs = vcpu_locs if vcpu_locs is not None else {}
        self.expect = expect
        self.guest = guest  # a real AArch64 program instead of steps
        self.scenario = scenario  # `vmm:`: the VMM's calls, in order
        self.kernels = kernels  # the profiles its expectations hold on
        self.policy = policy  # `policy:`, the spec to run with, relative to the workload

    def steps_for(self, vcpu: int) -> tuple[Step, ...]:
        return self.per_vcpu.get(vcpu, self.all_steps or ())


def vmm_steps(steps: tuple[Step, ...]) -> tuple[VmmCall, ...]:
    """The `vmm:` steps in program order (a repeated one once): the index a guest program
    passes to the VMM through the mailbox's VMM_CALL slot."""
    out: list[VmmCall] = []
    for step in steps:
        if isinstance(step, VmmCall):
            out.append(step)
        elif isinstance(step, Repeat):
            out.extend(vmm_steps(step.steps))
    return tuple(out)


def step_count(steps: tuple[Step, ...]) -> int:
    """Steps after `repeat` expansion, computed without expanding."""
    return sum(s.times * step_count(s.steps) if isinstance(s, Repeat) else 1 for s in steps)


def parse_counter(node: Node) -> int:
    if node.value in defs.CYCLE_COUNTER.choices:
        return sr.CYCLE_IDX
    return defs.COUNTER_INDEX.read(node)


def _counter_mask(node: Node) -> int:
    items = node.items() if isinstance(node.value, yamlio.YSeq) else [node]
    mask = 0
    for item in items:
        mask |= 1 << parse_counter(item)
    return mask


def _register(node: Node) -> str:
    name = node.string().upper()
    if name not in sr.SYSREGS:
        import difflib

        close = difflib.get_close_matches(str(node.value).upper(), REGISTERS, n=2)
        raise node.error(f"unknown PMU register {node.value!r}",
                         f"did you mean {', '.join(close)}?" if close else None)
    return str(name)


class _Parser:
    def __init__(self, catalog: Catalog, errors: Errors | None = None) -> None:
        self.catalog = catalog
        self.errors = errors or Errors()  # each bad step's error; the others are still read

    def steps(self, node: Node) -> tuple[Step, ...]:
        out = []
        for item in node.items():
            step = self.errors.check(lambda: self.step(item), None)  # noqa: B023
            if step is not None:
                out.append(step)
        return tuple(out)

    def step(self, node: Node) -> Step:
        keys = defs.STEP.keys
        m = defs.STEP.check(node)
        if len(m) != 1:
            raise node.error(f"a step has exactly one of: {', '.join(keys)}")
        kind = next(iter(m))
        return STEP_PARSERS[kind](self, node.require(kind), node.loc)

    def _write(self, body: Node, loc: SourceLoc) -> Step:
        value = defs.STEP["write"].value
        ops = [(_register(Node(k, body.mapping().key_loc[k], body.path)), value.read(v))
               for k, v in body.entries()]
        return Access(tuple(ops), loc, "write")

    def _read(self, body: Node, loc: SourceLoc) -> Step:
        items = body.items() if isinstance(body.value, yamlio.YSeq) else [body]
        return Access(tuple((_register(i), None) for i in items), loc, "read")

    def _program(self, body: Node, loc: SourceLoc) -> Step:
        program = defs.STEP["program"]
        program.check(body)
        counter = parse_counter(body.require("counter"))
        value = 0
        exclude = body.get("exclude")
        if exclude is not None:
            for item in exclude.items():
                el = program["exclude"].item.read(item)
                value |= sr.EVTYPE_U if el == "el0" else sr.EVTYPE_P
        event = body.get("event")
        if counter == sr.CYCLE_IDX:
            if event is not None and parse_event(event, self.catalog) != ev.CPU_CYCLES:
                raise event.error("the cycle counter always counts CPU_CYCLES")
            return Access((("PMCCFILTR_EL0", value),), loc, "program")
        if event is None:
            raise body.error("missing required key 'event'")
        value |= parse_event(event, self.catalog)
        return Access(((f"PMEVTYPER{counter}_EL0", value),), loc, "program")

    def _enable(self, body: Node, loc: SourceLoc) -> Step:
        return Access((("PMCNTENSET_EL0", _counter_mask(body)),), loc, "enable")

    def _disable(self, body: Node, loc: SourceLoc) -> Step:
        return Access((("PMCNTENCLR_EL0", _counter_mask(body)),), loc, "disable")

    def _swinc(self, body: Node, loc: SourceLoc) -> Step:
        return Access((("PMSWINC_EL0", _counter_mask(body)),), loc, "swinc")

    def _el(self, body: Node, loc: SourceLoc) -> Step:
        return SetEl(defs.EL.read(body), loc)

    def _exit(self, body: Node, loc: SourceLoc) -> Step:
        if body.value is not None:
            body.mapping(())
        return Exit(loc)

    def _execute(self, body: Node, loc: SourceLoc) -> Step:
        execute = defs.STEP["execute"]
        execute.check(body)
        el_node = body.get("el")
        el = defs.EL.read(el_node) if el_node else 1
        counts: dict[int, int] = {}
        for key, value in body.require("events").entries():
            key_node = Node(key, body.require("events").mapping().key_loc[key], value.path)
            code = parse_event(key_node, self.catalog)
            if code in (ev.SW_INCR, ev.CHAIN):
                raise key_node.error(
                    "SW_INCR and CHAIN are not generated by the host: use swinc, or overflow "
                    "the even counter")
            counts[code] = counts.get(code, 0) + execute["events"].value.read(value)
        return Execute(el, tuple(counts.items()), loc)

    def _repeat(self, body: Node, loc: SourceLoc) -> Step:
        repeat = defs.STEP["repeat"]
        repeat.check(body)
        times = repeat["times"].read(body.require("times"))
        return Repeat(times, self.steps(body.require("steps")), loc)

    def _vmm(self, body: Node, loc: SourceLoc) -> Step:
        defs.STEP["vmm"].check(body)
        calls, _, _ = parse_entry(body.require("filter"), 0, self.catalog)
        expect = body.get("expect_errno")
        name = parse_errno_name(expect) if expect is not None else None
        return VmmCall(tuple(calls), name, expect is not None, loc)

    def expectation(self, node: Node) -> Expect:
        m = defs.EXPECT.check(node)
        vcpu_node = node.get("vcpu")
        vcpu = defs.EXPECT["vcpu"].read(vcpu_node) if vcpu_node else defs.EXPECT["vcpu"].default
        raw = _plain(m)
        if "read" in m:
            op, value = _comparison(node, "read")
            mask = node.get("mask")
            return ReadExpect(vcpu, _register(node.require("read")), op, value,
                              defs.EXPECT["mask"].read(mask) if mask else defs.U64_MAX,
                              raw, node.loc)
        if "undef" in m:
            undef = node.require("undef")
            if isinstance(undef.value, bool):  # {undef: false, register: NAME}
                return UndefExpect(vcpu, _register(node.require("register")), undef.value,
                                   raw, node.loc)
            return UndefExpect(vcpu, _register(undef), True, raw, node.loc)
        if "report" in m:
            op, value = _comparison(node, "report")
            return ReportExpect(vcpu, defs.EXPECT["report"].read(node.require("report")),
                                op, value, raw, node.loc)
        if "counter" in m:
            op, value = _comparison(node, "counter")
            return CounterExpect(vcpu, parse_counter(node.require("counter")), op, value, raw,
                                 node.loc)
        if "visible" not in m and "hidden" not in m:
            raise node.error("an expectation needs 'counter' and a comparison, or "
                             "'visible'/'hidden' events")
        lists = []
        for key in ("visible", "hidden"):
            sub = node.get(key)
            items = [] if sub is None else (
                sub.items() if isinstance(sub.value, yamlio.YSeq) else [sub])
            codes = []
            for item in items:
                code = parse_event(item, self.catalog)
                if not ev.has_pmceid_bit(code):
                    raise item.error(f"event 0x{code:x} has no PMCEID bit")
                codes.append(code)
            lists.append(tuple(codes))
        return PmceidExpect(vcpu, lists[0], lists[1], raw, node.loc)



# Each step keyword and its parser, in the order the error message lists them.
STEP_PARSERS: dict[str, Callable[[_Parser, Node, SourceLoc], Step]] = {
    "write": _Parser._write, "read": _Parser._read, "program": _Parser._program,
    "enable": _Parser._enable, "disable": _Parser._disable, "execute": _Parser._execute,
    "swinc": _Parser._swinc, "repeat": _Parser._repeat, "vmm": _Parser._vmm, "el": _Parser._el,
    "exit": _Parser._exit,
}


def _comparison(node: Node, kind: str) -> tuple[str, int]:
    """The one comparison (eq, ne, gt, ...) of a counter, report or read expectation."""
    ops = [op for op in COMPARISONS if op in node.mapping()]
    if len(ops) != 1:
        raise node.error(f"a {kind} expectation has exactly one of " + ", ".join(COMPARISONS))
    return ops[0], defs.EXPECT[ops[0]].read(node.require(ops[0]))


def _plain(value: object) -> dict[str, object]:
    def conv(v: object) -> object:
        if isinstance(v, dict):
            return {str(k): conv(x) for k, x in v.items()}
        if isinstance(v, list):
            return [conv(x) for x in v]
        return v

    out = conv(value)
    assert isinstance(out, dict)
    return out


def workload_from_node(doc: Node, file: str, catalog: Catalog | None = None,
                       max_event: int = 0xFFFF) -> Workload:
    """The workload, or SpecError(s) for every independent error: each step, each
    expectation, each top-level key, the scenario."""
    doc.mapping()
    errors = Errors()
    parser = _Parser(catalog or common_catalog(), errors)
    errors.check(lambda: defs.WORKLOAD.check(doc), None)
    vcpus = doc.get("vcpus")
    steps = errors.check(lambda: _vcpu_steps(vcpus, parser), None) if vcpus else None
    all_steps, per_vcpu, vcpu_locs = steps or (None, {}, {})
    expect = doc.get("expect")
    expects = errors.check(lambda: _expectations(expect, parser), ()) if expect else ()
    guest_node = doc.get("guest")
    guest = None
    if guest_node is not None and vcpus is not None:
        errors.add(guest_node.error("a workload is either scripted steps (vcpus) or a guest "
                                    "program"))
    elif guest_node is not None:
        guest = errors.check(lambda: parse_guest(guest_node), None)
    vmm, kernels = doc.get("vmm"), doc.get("kernels")
    scenario = None
    if vmm is not None:
        from kvmpmu.spec.scenario import parse_scenario

        scenario = errors.check(lambda: parse_scenario(vmm, parser.catalog, max_event), None)
    kernel = defs.WORKLOAD["kernels"].item
    names = errors.check(lambda: tuple(kernel.read(k) for k in kernels.items()),
                         None) if kernels is not None else None
    policy_node = doc.get("policy")
    policy = errors.check(lambda: str(policy_node.file_path()), None) \
        if policy_node is not None else None
    errors.raise_any()
    return Workload(file, all_steps, per_vcpu, vcpu_locs, expects, guest, scenario, names,
                    policy)


VcpuSteps = tuple[tuple[Step, ...] | None, dict[int, tuple[Step, ...]], dict[int, SourceLoc]]


def _vcpu_steps(vcpus: Node, parser: _Parser) -> VcpuSteps:
    """`vcpus:`: the steps for all, the steps per vCPU index, where each index was written."""
    all_steps = None
    per_vcpu: dict[int, tuple[Step, ...]] = {}
    vcpu_locs: dict[int, SourceLoc] = {}
    for key, steps_node in vcpus.entries():
        key_loc = vcpus.mapping().key_loc[key]
        steps = parser.steps(steps_node) if steps_node.value is not None else ()
        if step_count(steps) > MAX_WORKLOAD_STEPS:
            parser.errors.add(steps_node.error(f"{step_count(steps)} steps after repeat "
                                               f"expansion exceed the limit of "
                                               f"{MAX_WORKLOAD_STEPS}"))
        if key == "all":
            all_steps = steps
        elif isinstance(key, int) and not isinstance(key, bool) and 0 <= key < defs.MAX_VCPUS:
            per_vcpu[key] = steps
            vcpu_locs[key] = key_loc
        else:
            parser.errors.add(Node(key, key_loc, steps_node.path).error(
                f"vCPU key {key!r} is neither 'all' nor a vCPU index"))
    return all_steps, per_vcpu, vcpu_locs


def _expectations(expect: Node, parser: _Parser) -> tuple[Expect, ...]:
    out = []
    for item in expect.items():
        parsed = parser.errors.check(lambda: parser.expectation(item), None)  # noqa: B023
        if parsed is not None:
            out.append(parsed)
    return tuple(out)


def load_workload(path: str, max_bytes: int = yamlio.DEFAULT_MAX_BYTES,
                  catalog: Catalog | None = None, max_event: int = 0xFFFF) -> Workload:
    name = yamlio.source_name(path)
    return workload_from_node(root(yamlio.load_file(path, max_bytes), name), name, catalog,
                              max_event)
