"""Files under a directory argument: what each one is (a spec, a workload or scenario, a
catalog of CPU events, or none of these), so that a command takes only its own kind."""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Any

from kvmpmu.errors import SpecError
from kvmpmu.spec import yamlio
from kvmpmu.spec.files import kind_of

SUFFIXES = (".yaml", ".yml", ".json")
SPEC_KEYS = ("kernel", "purpose", "host", "vm", "filters")


def classify(doc: Any) -> str:
    """"spec", "workload" (scenarios too), "catalog" (Arm's or perf's JSON) or "other"."""
    if isinstance(doc, list):
        return "catalog"  # perf's pmu-events format: an array of events
    if not isinstance(doc, dict):
        return "other"
    if kind_of(doc) == "workload":
        return "workload"
    if "events" in doc:
        return "catalog"
    return "spec" if any(k in doc for k in SPEC_KEYS) else "other"


def excluded(path: Path, patterns: tuple[str, ...]) -> bool:
    """Whether a glob of `exclude` matches the path (as given, or absolute: for globs anchored
    at a folder) or any of its parts (as ruff's do)."""
    texts = (path.as_posix(), Path(os.path.abspath(path)).as_posix())
    return any(fnmatch.fnmatch(text, p) for text in texts for p in patterns) or any(
        fnmatch.fnmatch(part, p) for part in path.parts for p in patterns)


def walk(folder: str, exclude: tuple[str, ...] = ()) -> list[str]:
    """The YAML and JSON files under `folder`, sorted; hidden and excluded names skipped."""
    found = []
    seen: set[str] = set()
    for top, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:  # a link back up the tree
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and not excluded(Path(top, d), exclude))
        for name in sorted(files):
            path = Path(top, name)
            if name.endswith(SUFFIXES) and not name.startswith(".") and \
                    not excluded(path, exclude):
                found.append(str(path))
    return found


def load_document(path: str, max_bytes: int) -> Any:
    """The file's data: JSON files through `json` (not every JSON text is YAML 1.1)."""
    if path.endswith(".json"):
        import json

        try:
            return json.loads(yamlio.read_text(path, max_bytes))
        except ValueError:
            pass  # the YAML reader says where it is wrong
    return yamlio.load_file(path, max_bytes)


def kind_of_file(path: str, max_bytes: int) -> str:
    """What the file is; a file that cannot be read or parsed is "unreadable" (the command
    then reports it as it would a file named on its command line)."""
    try:
        return classify(load_document(path, max_bytes))
    except SpecError:
        return "unreadable"


def expand(paths: tuple[str, ...], want: str, max_bytes: int,
           exclude: tuple[str, ...] = (), also: str | None = None,
           skip_unrelated: bool = False) -> list[str]:
    """Each path as given; a directory becomes its files of kind `want` (and `also`), and
    those no command could tell the kind of. With `skip_unrelated`, files named outright
    are sorted the same way (as pre-commit names every changed file)."""
    kinds = (want, also, "unreadable")
    out: list[str] = []
    for path in paths:
        if path == yamlio.STDIN or not Path(path).is_dir():
            if not skip_unrelated or path == yamlio.STDIN or (
                    not excluded(Path(path), exclude) and kind_of_file(path, max_bytes) in kinds):
                out.append(path)
            continue
        out.extend(f for f in walk(path, exclude) if kind_of_file(f, max_bytes) in kinds)
    return out


def is_test(doc: Any) -> bool:
    """A workload with expectations (`expect:`), or a scenario (`vmm:`, whose calls carry
    theirs): what `kvmpmu test` and the pytest plugin run."""
    return classify(doc) == "workload" and ("expect" in doc or "vmm" in doc)


def test_files(paths: tuple[str, ...], max_bytes: int,
               exclude: tuple[str, ...] = ()) -> list[str]:
    """The test files among `paths`: a folder's are found by their content; a file named
    outright is taken as it is."""
    out: list[str] = []
    for path in paths:
        if path == yamlio.STDIN or not Path(path).is_dir():
            out.append(path)
            continue
        for found in walk(path, exclude):
            try:
                if is_test(load_document(found, max_bytes)):
                    out.append(found)
            except SpecError:
                out.append(found)  # reported when it is run
    return out
