"""Compare one run on a real kernel with the same run on the model: every difference, each
with where it is and both sides' values. The rules for registers are in rules.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from kvmpmu.arch import events as ev
from kvmpmu.conform import rules
from kvmpmu.conform.rules import CounterView
from kvmpmu.vmm.results import CallRecord, RunResult, VcpuResult

DifferenceKind = Literal["call", "read", "undef", "state", "counter", "error"]


@dataclass(frozen=True)
class Where:
    """A call (its index in the log, ioctl, attr, vCPU) or a vCPU's register."""

    call: int | None = None
    ioctl: str | None = None
    attr: str | None = None
    vcpu: int | None = None
    register: str | None = None

    def __str__(self) -> str:
        vcpu = f"vcpu{self.vcpu}" if self.vcpu is not None else ""
        if self.call is not None:
            attr = f"({self.attr})" if self.attr else ""
            call = f"{self.ioctl}{attr}" if self.ioctl else ""
            return " ".join(p for p in (f"call {self.call}", call, vcpu) if p)
        return " ".join(p for p in (vcpu, self.register or "") if p)


@dataclass(frozen=True)
class Difference:
    what: DifferenceKind
    where: Where
    real: Any
    emulated: Any
    message: str


def compare(real: RunResult, emulated: RunResult) -> list[Difference]:
    """Calls in order, then per vCPU its reads, UNDEFs and end state, then the error."""
    out = _calls(real.ioctls, emulated.ioctls)
    real_vcpus = {v.vcpu: v for v in real.vcpus}
    emulated_vcpus = {v.vcpu: v for v in emulated.vcpus}
    for index in sorted(real_vcpus.keys() | emulated_vcpus.keys()):
        r, e = real_vcpus.get(index), emulated_vcpus.get(index)
        if r is None or e is None:
            out.append(Difference("state", Where(vcpu=index), r is not None, e is not None,
                                  f"vCPU {index} exists on one side only"))
            continue
        out += _vcpu(real, emulated, r, e)
    return out + _error(real, emulated)


def _identity(call: CallRecord) -> tuple[str, str | None, int | None]:
    return call.ioctl, call.attr, call.vcpu


def _where(index: int, call: CallRecord) -> Where:
    return Where(call=index, ioctl=call.ioctl, attr=call.attr, vcpu=call.vcpu)


def _describe(call: CallRecord | None) -> str | None:
    if call is None:
        return None
    vcpu = f" vcpu{call.vcpu}" if call.vcpu is not None else ""
    return f"{call.ioctl}({call.attr or ''}){vcpu}"


def _calls(real: list[CallRecord], emulated: list[CallRecord]) -> list[Difference]:
    out: list[Difference] = []
    for index, (r, e) in enumerate(zip(real, emulated, strict=False)):
        if _identity(r) != _identity(e):
            out.append(Difference("call", _where(index, r), _describe(r), _describe(e),
                                  "the call sequences diverge here"))
            return out
        out += _call_fields(index, r, e)
    if len(real) != len(emulated):
        index = min(len(real), len(emulated))
        extra_r = real[index] if index < len(real) else None
        extra_e = emulated[index] if index < len(emulated) else None
        where = _where(index, extra_r or extra_e)  # type: ignore[arg-type]
        out.append(Difference("call", where, _describe(extra_r), _describe(extra_e),
                              f"{len(real)} calls on the real kernel, {len(emulated)} on the "
                              "model"))
    return out


def _slot(call: CallRecord) -> int | None:
    return call.exit.mailbox_slot() if call.exit is not None else None


def _call_fields(index: int, r: CallRecord, e: CallRecord) -> list[Difference]:
    where = _where(index, r)
    fields: tuple[tuple[str, Any, Any], ...] = (
        ("args", r.args, e.args),
        ("errno", r.errno, e.errno),
        ("value", r.value, e.value),
        ("exit reason", r.exit.reason if r.exit else None, e.exit.reason if e.exit else None),
        ("mailbox slot", _slot(r), _slot(e)),
    )
    return [Difference("call", where, a, b, f"{name}: {_show(a)} on the real kernel, "
                       f"{_show(b)} on the model")
            for name, a, b in fields if a != b]


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"0x{value:x}"
    return str(value)


def _view(result: RunResult, vcpu: VcpuResult) -> CounterView:
    """On the model, the counters that cannot have counted anything the host did: SW_INCR
    ones, and those whose event the filter denies or the host lacks (the model knows). Else
    the ones the end state shows could not count."""
    if result.backend != "emulated":
        return CounterView(rules.exact_counters(vcpu.state or {}))
    return CounterView(frozenset(
        c.counter for c in vcpu.counters
        if c.event == ev.SW_INCR and c.counter != rules.CYCLE_COUNTER
        or c.allowed is False or c.implemented is False), model=True)


def _vcpu(real: RunResult, emulated: RunResult, r: VcpuResult, e: VcpuResult
          ) -> list[Difference]:
    views = (_view(real, r), _view(emulated, e))
    return (_records("read", r.vcpu, r.reads, e.reads, views)
            + _records("undef", r.vcpu, r.undefined, e.undefined, None)
            + _state(r, e, views))


def _records(what: DifferenceKind, vcpu: int, real: list[list[Any]], emulated: list[list[Any]],
             views: tuple[CounterView, CounterView] | None) -> list[Difference]:
    """[register, value|access, count] records: the sequence exactly; a read's value by the
    register's rule (UNDEF, None, exactly). The first divergence ends the comparison."""
    for i in range(max(len(real), len(emulated))):
        r = real[i] if i < len(real) else None
        e = emulated[i] if i < len(emulated) else None
        register = (r or e or ["?"])[0]
        where = Where(vcpu=vcpu, register=register)
        if r is None or e is None or r[0] != e[0] or r[2] != e[2]:
            return [Difference(what, where, r, e, f"{what} {i}: {_record(r)} on the real "
                               f"kernel, {_record(e)} on the model")]
        if views is None:
            if r[1] != e[1]:
                return [Difference(what, where, r[1], e[1], f"{what} {i}: {r[1]} on the real "
                                   f"kernel, {e[1]} on the model")]
            continue
        if (r[1] is None) != (e[1] is None):
            return [Difference(what, where, r[1], e[1], f"read {i}: {_value(r[1])} on the "
                               f"real kernel, {_value(e[1])} on the model")]
        rule = rules.rule_for(register, rules.READ_RULES)
        same, how = rules.judge(rule, r[1], e[1], rules.counter_index(register), *views)
        if not same:
            kind: DifferenceKind = "counter" if rule != rules.EXACT else what
            return [Difference(kind, where, r[1], e[1],
                               f"read {i}: {_value(r[1])} on the real kernel, "
                               f"{_value(e[1])} on the model ({how})")]
    return []


def _record(record: list[Any] | None) -> str:
    if record is None:
        return "nothing"
    times = f" x{record[2]}" if record[2] != 1 else ""
    return f"{record[0]}={_value(record[1])}{times}"


def _value(value: Any) -> str:
    if value is None:
        return "UNDEF"
    return _show(value)


def _state(r: VcpuResult, e: VcpuResult, views: tuple[CounterView, CounterView]
           ) -> list[Difference]:
    if r.state is None and e.state is None:
        return []
    if r.state is None or e.state is None:
        return [Difference("state", Where(vcpu=r.vcpu), r.state is not None,
                           e.state is not None, "the end state was read on one side only")]
    out = []
    for register in list(dict.fromkeys([*r.state, *e.state])):
        a, b = r.state.get(register), e.state.get(register)
        rule = rules.rule_for(register, rules.STATE_RULES)
        same, how = rules.judge(rule, a, b, rules.counter_index(register), *views)
        if not same:
            what: DifferenceKind = "state" if rule == rules.EXACT else "counter"
            out.append(Difference(what, Where(vcpu=r.vcpu, register=register), a, b,
                                  f"{_value(a)} on the real kernel, {_value(b)} on the model "
                                  f"({how})"))
    return out


def _stopped(result: RunResult) -> tuple[str, int | None, str | None] | None:
    """The error's kind and, for a failed call, the call that stopped the VMM."""
    if result.error is None:
        return None
    kind = result.error.kind
    if kind != "kvm" or not result.ioctls:
        return kind, None, None
    return kind, len(result.ioctls) - 1, _describe(result.ioctls[-1])


def _error(real: RunResult, emulated: RunResult) -> list[Difference]:
    a, b = _stopped(real), _stopped(emulated)
    if a == b:
        return []
    call = a[1] if a is not None else b[1] if b is not None else None
    return [Difference("error", Where(call=call), real.error, emulated.error,
                       f"stopped: {_stopped_text(a)} on the real kernel, {_stopped_text(b)} "
                       "on the model")]


def _stopped_text(stop: tuple[str, int | None, str | None] | None) -> str:
    if stop is None:
        return "no error"
    kind, index, call = stop
    return f"{kind} error" + (f" at call {index} {call}" if index is not None else "")
