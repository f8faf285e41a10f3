"""Event catalogs: the names a CPU's events go by, resolved case-insensitively."""

from __future__ import annotations

import functools

from kvmpmu.arch.events import EventInfo, common_events


@functools.cache
def _common_names() -> dict[str, int]:
    return {info.name.upper(): code for code, info in common_events().items()}


class Catalog:
    """Event number <-> name: the common events plus the IMPDEF (or imported) ones of some CPUs."""

    def __init__(self, name: str, extra: dict[int, EventInfo] | None = None) -> None:
        self.name = name
        self.events: dict[int, EventInfo] = dict(common_events())
        self._by_name = dict(_common_names())
        for code, info in (extra or {}).items():
            if code not in self.events or not self.events[code].name:
                self.events[code] = info
            self._by_name.setdefault(info.name.upper(), code)

    def lookup(self, name: str) -> int | None:
        return self._by_name.get(name.upper())

    def suggest(self, name: str) -> list[str]:
        import difflib

        return difflib.get_close_matches(name.upper(), list(self._by_name), n=3, cutoff=0.6)

    def name_of(self, code: int) -> str | None:
        info = self.events.get(code)
        return info.name if info else None

    def range_names(self, base_event: int, nevents: int) -> dict[str, str | None]:
        """Names of a FILTER range's first and last events (none for an empty range)."""
        if not nevents:
            return {}
        last = min(base_event + nevents - 1, 0xFFFF)
        return {"base_event": self.name_of(base_event), "last_event": self.name_of(last)}

    def label(self, code: int) -> str:
        """`0x0011 CPU_CYCLES`, or the number alone for an event without a name."""
        name = self.name_of(code)
        return f"0x{code:04x} {name}" if name else f"0x{code:04x}"

    def describe(self, code: int) -> str | None:
        info = self.events.get(code)
        return info.description if info else None


def common_catalog() -> Catalog:
    return Catalog("common")
