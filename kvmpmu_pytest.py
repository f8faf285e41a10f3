"""The pytest plugin (entry point `kvmpmu`): in a repository whose `[tool.kvmpmu]` (in the
rootdir's pyproject.toml or .kvmpmu.toml) sets `test-paths`, pytest collects every workload
with `expect:` and every scenario under those paths as one test item per file, run as
`kvmpmu test` runs it; a failure shows its expectation table. Elsewhere it does nothing.

A module of its own, outside the `kvmpmu` package: pytest rewrites the assertions of the
package an entry-point plugin lives in, and kvmpmu's own modules should stay as they are (and
import no slower) in every test run, this repository's included. kvmpmu is imported only
where a configuration asks for the plugin."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

_PATHS = pytest.StashKey[list[Path]]()
_CONFIG = pytest.StashKey[Any]()
_SUFFIXES = (".yaml", ".yml", ".json")


def _rootdir_config(rootdir: Path) -> Any:
    """The rootdir's own kvmpmu configuration, or None (never a parent folder's)."""
    from kvmpmu.spec.config import find_config, load_config

    found = find_config(rootdir)
    if found is None or found.parent != rootdir:
        return None
    return load_config(found)


def _may_configure(rootdir: Path) -> bool:
    """Whether the rootdir has a kvmpmu configuration at all (read as text: cheap)."""
    if (rootdir / ".kvmpmu.toml").is_file():
        return True
    try:
        text = (rootdir / "pyproject.toml").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return re.search(r"^\s*\[tool\.kvmpmu[\].]", text, re.MULTILINE) is not None


def pytest_configure(config: pytest.Config) -> None:
    rootdir = config.rootpath
    if not _may_configure(rootdir):
        return
    from kvmpmu.errors import KvmpmuError

    try:
        found = _rootdir_config(rootdir)
    except KvmpmuError as err:
        raise pytest.UsageError(f"kvmpmu: {err.render()}") from None
    if found is None or not found.get("test-paths"):
        return
    config.stash[_PATHS] = [(found.folder / p).resolve() for p in found.get("test-paths")]
    config.stash[_CONFIG] = found


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.File | None:
    paths = parent.config.stash.get(_PATHS, None)
    if not paths or file_path.suffix not in _SUFFIXES or file_path.name.startswith("."):
        return None
    resolved = file_path.resolve()
    if not any(resolved.is_relative_to(p) for p in paths):
        return None
    from kvmpmu.errors import KvmpmuError
    from kvmpmu.spec.discover import is_test, load_document
    from kvmpmu.spec.yamlio import DEFAULT_MAX_BYTES

    try:
        wanted = is_test(load_document(str(file_path), DEFAULT_MAX_BYTES))
    except KvmpmuError:
        wanted = True  # the item reports why it cannot be read
    return WorkloadFile.from_parent(parent, path=file_path) if wanted else None


class WorkloadFile(pytest.File):
    def collect(self) -> list[pytest.Item]:
        return [WorkloadItem.from_parent(self, name=self.path.name)]


class ExpectationsFailed(Exception):
    def __init__(self, runs: list[Any]) -> None:
        super().__init__(f"{len(runs)} failed")
        self.runs = runs


class WorkloadItem(pytest.Item):
    def runtest(self) -> None:
        from kvmpmu.spec.sources import HostChoice
        from kvmpmu.vmm.workload_files import run_file

        config = self.config.stash[_CONFIG]
        events_db = config.get("events-db")
        host = HostChoice(config.get("cpu"),
                          str(config.folder / events_db) if events_db else None)
        runs = run_file(os.path.relpath(self.path), None, host, config.get("kernel"),
                        all_kernels=True)
        ran = [r for r in runs if not r.skipped]
        if not ran:
            pytest.skip(runs[0].skipped or "not run on any kernel")
        failed = [r for r in ran if not r.passed]
        if failed:
            raise ExpectationsFailed(failed)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if not isinstance(excinfo.value, ExpectationsFailed):
            return str(super().repr_failure(excinfo))
        import io

        from rich.console import Console

        from kvmpmu.render.terminal import to_rich
        from kvmpmu.render.text import expectations_table

        out = io.StringIO()
        console = Console(file=out, width=200, no_color=True, highlight=False)
        for run in excinfo.value.runs:
            console.print(f"{run.file} (policy {run.policy}, kernel {run.kernel or 'default'})",
                          markup=False)
            if run.result is not None and run.result.expectations:
                console.print(to_rich(expectations_table(run.result)))  # as `run` shows it
            if run.error is not None:
                console.print(run.error.render(), markup=False)
        return out.getvalue().rstrip()

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"kvmpmu: {self.name}"
