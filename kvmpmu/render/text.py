"""Human output: rich tables for `run` and `show-pmceid`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kvmpmu.arch.sysregs import CYCLE_IDX
from kvmpmu.render.jsonout import hex64
from kvmpmu.render.layout import Cell, Group, Renderable, Table, Text
from kvmpmu.render.plain import columns
from kvmpmu.vmm import mailbox

if TYPE_CHECKING:
    from kvmpmu.vmm.results import CallRecord, HostPmuInfo, PmceidView, RunResult, VcpuResult

MAX_ROWS = 40
MAILBOX_SLOTS = {mailbox.END: "mailbox END", mailbox.EXIT: "mailbox EXIT"}


def _args(args: dict[str, Any]) -> str:
    parts = []
    for key, value in args.items():
        if key == "action" and value in (0, 1):
            value = ("ALLOW", "DENY")[value]
        if isinstance(value, int) and not isinstance(value, bool) and key != "irq":
            value = f"0x{value:x}" if key in ("base_event", "value") else value
        if isinstance(value, list):
            value = "|".join(map(str, value))
        parts.append(f"{key}={value}")
    return " ".join(parts)


def _names(names: dict[str, str | None]) -> str:
    """' (CPU_CYCLES)' for one event, ' (L1D_CACHE..L1D_TLB)' for a range."""
    first, last = names.get("base_event"), names.get("last_event")
    if not first and not last:
        return ""
    if first == last:
        return f" ({first})"
    return f" ({first or '?'}..{last or '?'})"


def _host_line(kernel: str, info: HostPmuInfo | None, release: str | None = None) -> Text:
    text = f"kernel profile: {kernel}"
    if release is not None:  # the kvm backend: the kernel that answered, and its profile
        text = f"kernel {release} (/dev/kvm; profile {kernel})"
    if info is not None:
        text += (f"; host PMU {info.name} (type {info.pmu_type}, {info.cpu}, "
                 f"{info.counters} counters)")
    return Text(text)


def _exit(call: CallRecord) -> str:
    """' -> MMIO (mailbox END)' for a KVM_RUN record."""
    exit_ = call.exit
    if exit_ is None:
        return ""
    slot = exit_.mailbox_slot()
    name = MAILBOX_SLOTS.get(slot) if slot is not None else None
    return f" -> {exit_.reason}" + (f" ({name})" if name else "")


def _result(call: CallRecord) -> Text:
    if call.exit is not None and call.exit.reason == "FAIL_ENTRY":
        return Text("KVM_EXIT_FAIL_ENTRY", style="bold red")
    if call.errno is None:
        return Text("0" + _exit(call), style="green")
    expected = call.expecting and call.expected_errno == call.errno
    return Text(call.errno + _exit(call) + (" (expected)" if expected else ""),
                style="yellow" if expected or call.exit is not None else "bold red")


def calls_table(calls: list[CallRecord], max_rows: int = MAX_ROWS) -> Renderable:
    table = Table(title="VMM calls", title_justify="left")
    for col in ("#", "vCPU", "ioctl", "attribute", "arguments", "result"):
        table.add_column(col)
    shown = calls if len(calls) <= max_rows else calls[: max_rows // 2] + calls[-max_rows // 2:]
    for i, call in enumerate(shown):
        if len(calls) > max_rows and i == max_rows // 2:
            table.add_row("…", "", f"{len(calls) - max_rows} more calls (see --json)", "", "", "")
        index = i if i < max_rows // 2 or len(calls) <= max_rows else len(calls) - len(shown) + i
        table.add_row(str(index), "" if call.vcpu is None else str(call.vcpu), call.ioctl,
                      (call.attr or "").replace("KVM_ARM_VCPU_PMU_V3_", ""),
                      _args(call.args) + _names(call.names), _result(call))
    return table


def _yes(flag: bool | None) -> Text:
    if flag is None:
        return Text("?")  # not observable on this backend
    return Text("yes", style="green") if flag else Text("no", style="red")


def counters_table(v: VcpuResult) -> Renderable:
    table = Table(title=f"vCPU {v.vcpu} counters (PMCR_EL0 {hex64(v.pmcr)})",
                  title_justify="left")
    for col in ("counter", "event", "name", "allowed", "enabled", "value", "overflow"):
        table.add_column(col, justify="right" if col == "value" else "left")
    for c in v.counters:
        table.add_row("cycle" if c.counter == CYCLE_IDX else str(c.counter), f"0x{c.event:04x}",
                      c.name or "-", _yes(c.allowed), _yes(c.enabled), f"{c.value:,}",
                      Text("yes", style="yellow") if c.overflow else Text("no"))
    return table


def reads_table(v: VcpuResult, max_rows: int = MAX_ROWS) -> Renderable:
    table = Table(title=f"vCPU {v.vcpu} values read (MRS)", title_justify="left")
    for col in ("register", "value", "hex"):
        table.add_column(col, justify="right" if col != "register" else "left")
    reads = v.reads[-max_rows:]
    if len(v.reads) > max_rows:
        table.add_row("…", f"{len(v.reads) - max_rows} earlier reads", "")
    for reg, value, count in reads:
        name = reg if count == 1 else f"{reg} (x{count:,})"
        if value is None:
            table.add_row(name, Text("UNDEF", style="bold red"), "")
        else:
            table.add_row(name, f"{value:,}", hex64(value))
    return table


def pmceid_pair_table(host: tuple[int, int], guests: list[tuple[str, int, int]]) -> Table:
    """One row per register: the host value, then each guest's."""
    table = Table(title="PMCEID: host versus guest", title_justify="left")
    table.add_column("register")
    table.add_column("host")
    for label, _, _ in guests:
        table.add_column(label)
    for reg in (0, 1):
        table.add_row(f"PMCEID{reg}_EL0", hex64(host[reg]),
                      *[hex64(g[1] if reg == 0 else g[2]) for g in guests])
    return table


def expectations_table(result: RunResult) -> Renderable:
    table = Table(title="Expectations", title_justify="left")
    for col in ("location", "expectation", "actual", "result"):
        table.add_column(col)
    for e in result.expectations:
        text = " ".join(f"{k}={v}" for k, v in e.expect.items())
        table.add_row(str(e.loc or ""), text, str(e.actual),
                      Text("pass", style="green") if e.passed else Text("FAIL", style="bold red"))
    return table


def run_text(result: RunResult) -> Renderable:
    parts: list[Renderable] = [_host_line(result.kernel, result.host_pmu, result.release),
                                   calls_table(result.ioctls)]
    for v in result.vcpus:
        parts.append(counters_table(v) if v.counters else
                     Text(f"vCPU {v.vcpu}: no PMU (not initialised, or without "
                          "KVM_ARM_VCPU_PMU_V3)"))
        if v.reads:
            parts.append(reads_table(v))
        if v.guest is not None:
            g = v.guest
            parts.append(Text(
                f"vCPU {v.vcpu} guest: {g['instructions']:,} instructions, {g['exceptions']} "
                f"exceptions, {g['interrupts']} interrupts; reports: "
                + (", ".join(f"{r} (0x{r:x})" for r in v.reports) or "none")))
        for line in v.console:
            parts.append(Text(f"vCPU {v.vcpu} console: {line}"))
        if v.undefined:
            undefs = ", ".join(f"{a} {r}" + (f" (x{n})" if n > 1 else "")
                               for r, a, n in v.undefined[:MAX_ROWS])
            parts.append(Text(f"vCPU {v.vcpu}: {len(v.undefined)} UNDEF accesses: {undefs}",
                              style="yellow"))
    parts.append(pmceid_pair_table(
        (result.host_pmceid0, result.host_pmceid1),
        [(f"guest vCPU {v.vcpu}", v.pmceid0, v.pmceid1) for v in result.vcpus]))
    if result.expectations:
        parts.append(expectations_table(result))
    return Group(*parts)  # errors and failed expectations go to stderr (the CLI)


def pmceid_text(view: PmceidView) -> Renderable:
    parts: list[Renderable] = [
        _host_line(view.kernel, view.host_pmu),
        pmceid_pair_table(view.host, [("guest", view.guest[0], view.guest[1])]),
    ]
    rows: list[list[Cell]] = []
    for e in view.events:
        if not (e.implemented or e.visible or e.name):
            continue
        rows.append([f"0x{e.event:04x}", e.name or "-", _yes(e.implemented),
                     Text("visible", style="green") if e.visible else Text("hidden", style="red"),
                     e.hidden_by or ""])
    table = columns("Events with a PMCEID bit (0x00-0x3F, 0x4000-0x403F)",
                    ["event", "name", "implemented", "guest sees", "hidden by"], rows)
    parts.append(table)
    return Group(*parts)
