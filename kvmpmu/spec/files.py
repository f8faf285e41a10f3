"""Tell a filter spec from a workload and load either: what `kvmpmu validate` checks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kvmpmu.spec import yamlio
from kvmpmu.spec.filterspec import FilterSpec, spec_from_node
from kvmpmu.spec.schema import root

if TYPE_CHECKING:
    from collections.abc import Callable

    from kvmpmu.arch.catalog import Catalog
    from kvmpmu.spec.workload import Workload

WORKLOAD_KEYS = ("vcpus", "expect", "guest", "vmm")


def kind_of(doc: object) -> str:
    """A workload has `vcpus`, `guest`, `expect` or (a scenario) `vmm` at the top; anything
    else is a filter spec."""
    return "workload" if isinstance(doc, dict) and any(k in doc for k in WORKLOAD_KEYS) \
        else "spec"


def load_any(path: str, max_bytes: int, events_db: str | None = None,
             catalog: Catalog | Callable[[], Catalog] | None = None,
             cpu: str | None = None) -> FilterSpec | Workload:
    """Load `path` as whichever it is; workload event names resolve against `catalog` (a
    function: called for a workload only, so that a spec is not read again to find it)."""
    doc = yamlio.load_file(path, max_bytes)
    name = yamlio.source_name(path)
    if kind_of(doc) == "workload":
        from kvmpmu.spec.workload import workload_from_node  # specs alone do not need it

        names = catalog() if callable(catalog) else catalog
        return workload_from_node(root(doc, name), name, names)
    return spec_from_node(root(doc, name), name, events_db, max_bytes, cpu=cpu)
