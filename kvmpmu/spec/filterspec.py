"""The filter spec (`--filter FILE`): host, VM and the ordered FILTER calls."""

from __future__ import annotations

import re
from typing import Any, Literal

from kvmpmu.arch import sysregs as sr
from kvmpmu.arch.catalog import Catalog
from kvmpmu.arch.cpus import impdef_owners
from kvmpmu.arch.presets import PRESETS, resolve_preset
from kvmpmu.errors import SourceLoc, SpecError
from kvmpmu.gcpause import paused_gc
from kvmpmu.kvm.profiles import DEFAULT_PROFILE
from kvmpmu.records import Record
from kvmpmu.spec import schema_defs as defs
from kvmpmu.spec import yamlio
from kvmpmu.spec.hostspec import HostSpec, parse_cpu_list, parse_host
from kvmpmu.spec.schema import Errors, Node, root
from kvmpmu.spec.schema_defs import U16_MAX as U16_MAX
from kvmpmu.spec.schema_types import Enum
from kvmpmu.uapi.kvm import KVM_PMU_EVENT_ALLOW, KVM_PMU_EVENT_DENY

MAX_FILTER_ENTRIES = 1_000_000
ACTIONS = dict(zip(defs.ACTION_NAMES, (KVM_PMU_EVENT_ALLOW, KVM_PMU_EVENT_DENY), strict=True))
# compiled by `re` on first use: specs of names or of {action, base_event, nevents} need neither
_NUMBER = r"(0[xX][0-9a-fA-F]+|[0-9]+)"
_RANGE = r"\s*([^\s.-][^-]*?)\s*(?:-|\.\.)\s*([^-]+?)\s*"  # A-B or A..B


NO_PAD = b"\0\0\0"
Irqchip = Literal["kernel", "userspace"]  # an in-kernel vGIC, or none (the VMM's own)
IRQCHIPS: tuple[Irqchip, ...] = ("kernel", "userspace")  # as schema_defs.VM["irqchip"] lists


class FilterCall(Record):
    """One KVM_ARM_VCPU_PMU_V3_FILTER call and the spec entry it came from; with
    `expecting`, its errno is an expectation (`expect_errno`, None: success); the VMM goes on."""

    __slots__ = ("base_event", "nevents", "action", "loc", "entry", "pad", "expect_errno",
                 "expecting")

    def __init__(self, base_event: int, nevents: int, action: int,
                 loc: SourceLoc | None = None, entry: int = 0, pad: bytes = NO_PAD,
                 expect_errno: str | None = None, expecting: bool = False) -> None:
        self.base_event, self.nevents, self.action = base_event, nevents, action
        self.loc, self.entry, self.pad = loc, entry, pad
        self.expect_errno, self.expecting = expect_errno, expecting


class Term(Record):
    """One event, range or preset range of an allow/deny entry, where the spec wrote it."""

    __slots__ = ("entry", "first", "last", "action", "loc", "preset")

    def __init__(self, entry: int, first: int, last: int, action: int, loc: SourceLoc,
                 preset: str | None = None) -> None:
        self.entry, self.first, self.last, self.action = entry, first, last, action
        self.loc, self.preset = loc, preset


class VmSpec(Record):
    __slots__ = ("vcpus", "pmu_irq", "counters", "counters_loc", "pmu_version",
                 "pmu_version_loc", "irqchip", "pmu", "pmu_loc", "cpus", "cpus_loc")

    def __init__(self, vcpus: int = defs.DEFAULT_VCPUS, pmu_irq: int = defs.DEFAULT_PMU_IRQ,
                 counters: int | None = None, counters_loc: SourceLoc | None = None,
                 pmu_version: int | None = None, pmu_version_loc: SourceLoc | None = None,
                 irqchip: Irqchip = "kernel", pmu: str | None = None,
                 pmu_loc: SourceLoc | None = None, cpus: frozenset[int] | None = None,
                 cpus_loc: SourceLoc | None = None) -> None:
        self.vcpus, self.pmu_irq = vcpus, pmu_irq
        self.counters, self.counters_loc = counters, counters_loc
        self.pmu_version = pmu_version  # lower the guest's ID_AA64DFR0_EL1.PMUVer (v6.2+)
        self.pmu_version_loc = pmu_version_loc
        self.irqchip = irqchip
        self.pmu, self.pmu_loc = pmu, pmu_loc  # KVM_ARM_VCPU_PMU_V3_SET_PMU to this host PMU
        self.cpus, self.cpus_loc = cpus, cpus_loc  # physical CPUs the vCPU threads run on


class FilterSpec(Record):
    __slots__ = ("file", "kernel", "host", "vm", "filters", "named_events", "terms", "purpose",
                 "sections")

    def __init__(self, file: str, kernel: str = DEFAULT_PROFILE, host: HostSpec | None = None,
                 vm: VmSpec | None = None, filters: tuple[FilterCall, ...] = (),
                 named_events: tuple[int, ...] = (), terms: tuple[Term, ...] = (),
                 purpose: str | None = None, sections: dict[str, Any] | None = None) -> None:
        self.file, self.kernel = file, kernel
        self.host = host if host is not None else HostSpec()
        self.vm = vm if vm is not None else VmSpec()
        self.filters = filters
        self.named_events = named_events  # events the entries name, in order (default workload)
        self.terms = terms
        self.purpose = purpose  # "isolation" or "profiling": what lint holds the policy to
        self.sections = sections if sections is not None else {}  # host and vm as written


def action_word(action: int) -> str:
    """The spec's word for an accepted action: `allow` or `deny`."""
    return "allow" if action == KVM_PMU_EVENT_ALLOW else "deny"


def unknown_event_hint(name: str, catalog: Catalog) -> str | None:
    """Close names, or the CPUs whose IMPLEMENTATION DEFINED event this is."""
    owners = impdef_owners(name)
    if owners:
        where = ", ".join(f"{model} (0x{code:04x})" for model, code in owners)
        return f"an IMPLEMENTATION DEFINED event of {where}; this host's catalog is " \
               f"{catalog.name}: set host.cpu, or give the number"
    close = catalog.suggest(name)
    return f"did you mean {', '.join(close)}?" if close else None


def parse_event(node: Node, catalog: Catalog) -> int:
    """An event by name (case-insensitive) or number."""
    v = node.value
    if isinstance(v, int) and not isinstance(v, bool):
        return node.integer(0, U16_MAX, "an event number")
    if isinstance(v, str):
        if re.fullmatch(_NUMBER, v.strip()):
            return Node(int(v.strip(), 0), node.loc, node.path).integer(0, U16_MAX)
        code = catalog.lookup(v.strip())
        if code is None:
            raise node.error(f"unknown event {v!r}", unknown_event_hint(v.strip(), catalog))
        return code
    return node.integer(0, U16_MAX, "an event name or number")


def parse_event_arg(text: str, catalog: Catalog, index: int = 0) -> int:
    """An event named on the command line."""
    return parse_event(Node(text, SourceLoc("<command line>", 1, 1), f"EVENT[{index}]"), catalog)


def _parse_term(node: Node, catalog: Catalog, max_event: int) -> list[tuple[int, int]]:
    """An event, an inclusive range 'A-B' (or 'A..B') or {preset: NAME}, as ranges."""
    if isinstance(node.value, yamlio.YMap):
        node.mapping(("preset",))
        preset = node.require("preset")
        events = resolve_preset(PRESETS[preset.choice(tuple(PRESETS))], catalog, max_event)
        return merge_ranges([(e, e) for e in events])
    if isinstance(node.value, str):
        match = re.fullmatch(_RANGE, node.value)
        if match:
            first = parse_event(Node(match.group(1), node.loc, node.path), catalog)
            last = parse_event(Node(match.group(2), node.loc, node.path), catalog)
            if last < first:
                raise node.error(f"range {node.value!r} ends before it starts")
            return [(first, last)]
    event = parse_event(node, catalog)
    return [(event, event)]


def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, merged inclusive ranges (overlapping or adjacent ones join)."""
    merged: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def calls_for_ranges(ranges: list[tuple[int, int]], action: int, loc: SourceLoc | None,
                     entry: int) -> list[FilterCall]:
    """One call per merged range, split where `nevents` would not fit in 16 bits."""
    calls = []
    for first, last in merge_ranges(ranges):
        start = first
        while start <= last:
            n = min(last - start + 1, U16_MAX)
            calls.append(FilterCall(start, n, action, loc, entry))
            start += n
    return calls


Parsed = tuple[list[FilterCall], list[int], list[Term]]
ENTRY_KEYS = defs.ENTRY.keys
_RAW_KEYS = defs.RAW_ENTRY_KEYS


def parse_errno_name(node: Node) -> str | None:
    """`expect_errno`: an errno name (EINVAL, ...) or null for success."""
    if node.value is None:
        return None
    name = node.string().upper()
    if name not in defs.ERRNO_NAMES:
        raise node.error(f"unknown errno name {node.value!r}", "an errno name such as EINVAL, "
                         "EBUSY or ENXIO, or null for success")
    return name


def _pad(node: Node | None) -> bytes:
    if node is None:
        return NO_PAD
    items = node.items()
    pad = defs.ENTRY["pad"]
    if len(items) != pad.min_items:
        raise node.error(f"pad is three bytes, got {len(items)}")
    return bytes(pad.item.read(i) for i in items)


def parse_entry(node: Node, index: int, catalog: Catalog, max_event: int = U16_MAX,
                extra_keys: tuple[str, ...] = ()) -> Parsed:
    """One filter entry: {allow|deny: events} or {action, base_event, nevents[, pad]}, either
    with an optional `expect_errno`; `extra_keys` are the caller's own (a scenario's `vcpu`)."""
    m = node.mapping(ENTRY_KEYS + extra_keys)
    calls, named, terms = _parse_entry_body(node, m, index, catalog, max_event)
    expect = node.get("expect_errno")
    if expect is not None:
        name = parse_errno_name(expect)
        calls = [c.replace(expect_errno=name, expecting=True) for c in calls]
    return calls, named, terms


def _parse_entry_body(node: Node, m: Any, index: int, catalog: Catalog,
                      max_event: int) -> Parsed:
    short = [k for k in ("allow", "deny") if k in m]
    if len(short) == 2:
        second = max(short, key=lambda k: (m.key_loc[k].line, m.key_loc[k].col))
        raise SpecError(f"this entry has both allow and deny: one entry takes one (is a '- ' "
                        f"missing before {second!r}?)", loc=m.key_loc[second],
                        path=node.path or None)
    if short and any(k in m for k in _RAW_KEYS):
        raise node.error("an entry is either {allow|deny: events} or "
                         "{action, base_event, nevents}, not both")
    if short:
        key = short[0]
        body = node.require(key)
        items = body.items() if isinstance(body.value, yamlio.YSeq) else [body]
        if not items:
            raise body.error("empty list of events")
        terms = []
        for item in items:
            preset = item.value.get("preset") if isinstance(item.value, yamlio.YMap) else None
            for first, last in _parse_term(item, catalog, max_event):
                terms.append(Term(index, first, last, ACTIONS[key], item.loc,
                                  preset if isinstance(preset, str) else None))
        ranges = [(t.first, t.last) for t in terms]
        return (calls_for_ranges(ranges, ACTIONS[key], node.loc, index),
                [t.first for t in terms if t.preset is None], terms)
    action_node = node.require("action")
    if isinstance(action_node.value, str):  # any case: the call log prints ALLOW and DENY
        action = ACTIONS[defs.ACTION_NAME.read(action_node)]
    else:
        action = defs.ACTION_NUMBER.read(action_node)
    base = defs.ENTRY["base_event"].read(node.require("base_event"))
    nevents = defs.ENTRY["nevents"].read(node.require("nevents"))
    call = FilterCall(base, nevents, action, node.loc, index, _pad(node.get("pad")))
    return [call], [base], _raw_terms(call, node.loc)


def _raw_terms(call: FilterCall, loc: SourceLoc) -> list[Term]:
    """The one term of a `{action, base_event, nevents}` entry (none for an empty range)."""
    if not call.nevents:
        return []
    return [Term(call.entry, call.base_event, call.base_event + call.nevents - 1, call.action,
                 loc)]


def _raw_call(value: Any, loc: SourceLoc, index: int) -> FilterCall | None:
    """{action, base_event, nevents} with plain valid values, else None (the general path
    then parses it, and reports whatever is wrong)."""
    if type(value) is not yamlio.YMap or len(value) != 3:
        return None
    base, n, action = value.get("base_event"), value.get("nevents"), value.get("action")
    if type(base) is not int or type(n) is not int or not (0 <= base <= U16_MAX and
                                                            0 <= n <= U16_MAX):
        return None
    code = ACTIONS.get(action.lower()) if type(action) is str else (
        action if type(action) is int and 0 <= action <= 0xFF else None)
    return None if code is None else FilterCall(base, n, code, loc, index)


def parse_filters(node: Node, catalog: Catalog, max_event: int = U16_MAX,
                  errors: Errors | None = None) -> Parsed:
    """Every entry's calls; with `errors`, a bad entry's error is kept there and the other
    entries are still checked. From a compact read (yamlio), no terms: they are lint's."""
    seq = node.seq()
    if len(seq) > MAX_FILTER_ENTRIES:
        raise node.error(f"{len(seq)} filter entries exceed the limit of {MAX_FILTER_ENTRIES}")
    calls: list[FilterCall] = []
    named: list[int] = []
    terms: list[Term] = []
    keep_terms = not seq.compact  # a compact read is for commands that never lint
    for i, value in enumerate(seq):
        loc = seq.item_loc[i]
        if seq.compact:  # read once: the entry goes as it becomes calls
            seq[i] = None
        raw = _raw_call(value, loc, i)
        if raw is not None:  # the generators' form, checked inline: same result, 10x faster
            calls.append(raw)
            named.append(raw.base_event)
            if keep_terms:
                terms.extend(_raw_terms(raw, loc))
            continue
        item = Node(value, loc, f"{node.path}[{i}]")
        if errors is None:
            entry_calls, entry_events, entry_terms = parse_entry(item, i, catalog, max_event)
        else:
            entry_calls, entry_events, entry_terms = errors.check(
                lambda: parse_entry(item, i, catalog, max_event), ([], [], []))  # noqa: B023
        calls.extend(entry_calls)
        named.extend(entry_events)
        if keep_terms:
            terms.extend(entry_terms)
    return calls, named, terms


def _pmu_version(node: Node) -> int:
    return sr.PMU_VERSIONS[defs.PMU_VERSION.read(node)]



def _parse_vm(node: Node | None, host: HostSpec) -> VmSpec:
    if node is None:
        return VmSpec()
    vm = defs.VM
    vm.check(node)
    pmu = node.get("pmu")
    if pmu is not None and host.pmu_named(pmu.string()) is None:
        names = tuple(p.name for p in host.pmus)
        pmu.choice(names)  # raises with the closest name
    cpus = node.get("cpus")
    vcpus = node.get("vcpus")
    irq = node.get("pmu_irq")
    counters = node.get("counters")
    version = node.get("pmu_version")
    irqchip = node.get("irqchip")
    return VmSpec(
        vcpus=vm["vcpus"].read(vcpus) if vcpus else vm["vcpus"].default,
        pmu_irq=vm["pmu_irq"].read(irq) if irq else vm["pmu_irq"].default,
        counters=vm["counters"].read(counters) if counters else None,
        counters_loc=counters.loc if counters else None,
        pmu_version=_pmu_version(version) if version else None,
        pmu_version_loc=version.loc if version else None,
        irqchip=irqchip.choice(IRQCHIPS) if irqchip else "kernel",
        pmu=pmu.string() if pmu else None,
        pmu_loc=pmu.loc if pmu else None,
        cpus=parse_cpu_list(cpus) if cpus else None,
        cpus_loc=cpus.loc if cpus else None,
    )


def spec_from_node(doc: Node, file: str, events_db: str | None = None,
                   max_bytes: int = yamlio.DEFAULT_MAX_BYTES, *,
                   cpu: str | None = None) -> FilterSpec:
    """The spec, or SpecError(s) for every independent error: each top-level key, each filter
    entry (the vm section and the filters need a valid host, so they wait for one)."""
    doc.mapping()
    errors = Errors()
    errors.check(lambda: defs.SPEC.check(doc), None)
    kernel = errors.check(lambda: _optional(doc.get("kernel"), defs.SPEC["kernel"]), None)
    purpose = errors.check(lambda: _optional(doc.get("purpose"), defs.SPEC["purpose"]), None)
    host = errors.check(lambda: parse_host(doc.get("host"), events_db, max_bytes, cpu), None)
    vm = VmSpec()
    filters = doc.get("filters")
    calls: list[FilterCall] = []
    named: list[int] = []
    terms: list[Term] = []
    if host is not None:
        vm = errors.check(lambda: _parse_vm(doc.get("vm"), host), vm)
        if filters is not None and filters.value is not None:
            calls, named, terms = errors.check(
                lambda: parse_filters(filters, host.catalog(), host.max_event, errors),
                ([], [], []))
    errors.raise_any()
    assert host is not None
    return FilterSpec(
        file=file,
        kernel=kernel or DEFAULT_PROFILE,
        host=host,
        vm=vm,
        filters=tuple(calls),
        named_events=tuple(dict.fromkeys(named)),
        terms=tuple(terms),
        purpose=purpose,
        sections={k: yamlio.plain(doc.value[k]) for k in ("host", "vm")
                  if doc.value.get(k) is not None},
    )


def _optional(node: Node | None, kind: Enum) -> str | None:
    return kind.read(node) if node is not None else None


def load_filter_spec(path: str, max_bytes: int = yamlio.DEFAULT_MAX_BYTES,
                     events_db: str | None = None, fast_json: bool = False, *,
                     cpu: str | None = None, compact: bool = False) -> FilterSpec:
    """With `fast_json`, a `.json` spec is read by the C json module, without positions; with
    `compact`, a YAML spec's entries keep only their own positions (yamlio.load). Either way
    the spec has no terms (what lint reads, with their positions). If the spec is not valid
    so read, it is read again the slow way so the error has its line and column; an error
    found later names only the file (line 0), and the caller reads it again too.
    `cpu` (--cpu) replaces the host's CPU model."""
    text = yamlio.read_text(path, max_bytes)
    with paused_gc():
        return _load_text(text, yamlio.source_name(path), max_bytes, events_db,
                          fast_json, compact, cpu)


def _load_text(text: str, path: str, max_bytes: int, events_db: str | None,
               fast_json: bool, compact: bool, cpu: str | None) -> FilterSpec:
    json_file = path.endswith(".json")
    if fast_json and json_file or compact and not json_file:
        try:
            doc = yamlio.load_json_fast(text, path) if json_file else \
                yamlio.load(text, path, compact=True)
            return spec_from_node(root(doc, path), path, events_db, max_bytes, cpu=cpu)
        except (ValueError, SpecError):
            pass  # read again with every position, for the error's
    return spec_from_node(root(yamlio.load(text, path), path), path, events_db, max_bytes,
                          cpu=cpu)
