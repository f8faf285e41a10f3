"""Where downloads and staged trees are kept between runs: a folder outside the checkout."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CACHE_ENV = "KVMPMU_REALKVM_CACHE"


def cache_root() -> Path:
    """`$KVMPMU_REALKVM_CACHE`, else `~/.cache/kvmpmu-realkvm`."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    return Path.home() / ".cache" / "kvmpmu-realkvm"


@contextmanager
def cache_lock(root: Path) -> Iterator[None]:
    """Serialise fetching between concurrent runs sharing one cache."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_record(path: Path) -> dict[str, Any] | None:
    """A JSON record written by `write_record`, or None if there is none (or a torn one)."""
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Write atomically, so an interrupted run never leaves a half record behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    partial.replace(path)
