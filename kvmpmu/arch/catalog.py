"""Event catalogs: the names a CPU's events go by, resolved case-insensitively."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from kvmpmu.arch.events import EventInfo, common_events


@dataclass(frozen=True)
class Catalog:
    """Event number <-> name for one CPU: the common events plus its own IMPDEF ones."""

    name: str
    events: dict[int, EventInfo]
    _by_name: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({info.name.upper(): code for code, info in self.events.items()})

    def lookup(self, name: str) -> int | None:
        return self._by_name.get(name.upper())

    def suggest(self, name: str) -> list[str]:
        names = [self.events[c].name for c in self._by_name.values()]
        return difflib.get_close_matches(name.upper(), names, n=3, cutoff=0.6)

    def name_of(self, code: int) -> str | None:
        info = self.events.get(code)
        return info.name if info else None


def common_catalog() -> Catalog:
    return Catalog("common", dict(common_events()))
