"""Where a command's policy comes from: a spec file (`-`: standard input), kvmtool's
`--pmu-filter` string, or both (the file's host, VM and kernel with the string's filters);
and the host the command line chooses for it (`--cpu`, `--events-db`)."""

from __future__ import annotations

from pathlib import Path

from kvmpmu.errors import SpecError
from kvmpmu.records import Record
from kvmpmu.spec import yamlio
from kvmpmu.spec.filterspec import FilterSpec, load_filter_spec
from kvmpmu.spec.hostspec import HostSpec, parse_host

NO_FILTER = "<no filter>"
PMU_FILTER = "--pmu-filter"


class HostChoice(Record):
    """The command line's host: a built-in CPU model or an events file (not both). With
    `fallback` (a configuration's), only for specs that do not name a host model."""

    __slots__ = ("cpu", "events_db", "max_bytes", "fallback")

    def __init__(self, cpu: str | None = None, events_db: str | None = None,
                 max_bytes: int = yamlio.DEFAULT_MAX_BYTES, fallback: bool = False) -> None:
        self.cpu, self.events_db, self.max_bytes, self.fallback = \
            cpu, events_db, max_bytes, fallback

    def for_file(self, path: str) -> HostChoice:
        """The choice as it applies to the spec in `path`."""
        if not self.fallback or (self.cpu is None and self.events_db is None):
            return self
        return HostChoice(max_bytes=self.max_bytes) if names_host(path, self.max_bytes) \
            else self


HOST_MODEL_KEYS = ("cpu", "midr", "catalog", "pmus")


def names_host(path: str, max_bytes: int) -> bool:
    """Whether the spec's `host:` names a model (or PMUs) of its own."""
    try:
        doc = yamlio.load_file(path, max_bytes)
    except SpecError:
        return False  # its loader reports it
    host = doc.get("host") if isinstance(doc, dict) else None
    return isinstance(host, dict) and any(k in host for k in HOST_MODEL_KEYS)


class PolicySource(Record):
    __slots__ = ("path", "pmu_filter")

    def __init__(self, path: str | None = None, pmu_filter: str | None = None) -> None:
        self.path = path  # a spec file; "-" for standard input
        self.pmu_filter = pmu_filter  # kvmtool's syntax

    @property
    def name(self) -> str:
        """How outputs name the policy."""
        if self.path is not None and self.pmu_filter is not None:
            return f"{yamlio.source_name(self.path)} with {PMU_FILTER}"
        if self.pmu_filter is not None:
            return PMU_FILTER
        return yamlio.source_name(self.path) if self.path is not None else NO_FILTER


SPEC_HOST = HostChoice()  # each spec's own host


def _kvmtool(pmu_filter: str, host: HostSpec) -> FilterSpec:
    from kvmpmu.spec.kvmtool import parse_kvmtool  # --pmu-filter only

    return parse_kvmtool(pmu_filter, host=host)


def load_policy(source: PolicySource, host: HostChoice = SPEC_HOST,
                fast_json: bool = False, compact: bool = False) -> FilterSpec:
    """The spec the source describes, on the host the command line chose (`fast_json`,
    `compact`: as load_filter_spec reads it)."""
    if source.path is None:
        host_spec = parse_host(None, host.events_db, host.max_bytes, host.cpu)
        if source.pmu_filter is None:
            return FilterSpec(file=NO_FILTER, host=host_spec)
        return _kvmtool(source.pmu_filter, host=host_spec)
    host = host.for_file(source.path)
    spec = load_filter_spec(source.path, host.max_bytes, host.events_db, fast_json,
                            cpu=host.cpu, compact=compact)
    if source.pmu_filter is None:
        return spec
    if spec.filters:
        raise SpecError(f"{PMU_FILTER} gives the filters, and this file has its own: give a "
                        "file with only host, vm and kernel, or drop --pmu-filter",
                        loc=spec.filters[0].loc, path="filters")
    strings = _kvmtool(source.pmu_filter, host=spec.host)
    return spec.replace(filters=strings.filters, named_events=strings.named_events,
                        terms=strings.terms)


def declared_policy(path: str, max_bytes: int = yamlio.DEFAULT_MAX_BYTES) -> str | None:
    """The spec a workload names with `policy:` (relative to its folder), read before the
    workload itself (whose event names resolve against that spec's host). None without one,
    or when it is not a string (the workload's loader then says what is wrong)."""
    doc = yamlio.load_file(path, max_bytes)
    value = doc.get("policy") if isinstance(doc, dict) else None
    if not isinstance(value, str):
        return None
    folder = Path(yamlio.source_name(path)).parent if path != yamlio.STDIN else Path()
    return str(Path(value) if Path(value).is_absolute() else folder / value)
