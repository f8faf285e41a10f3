"""The `[tool.kvmpmu]` table of a `pyproject.toml`, or a `.kvmpmu.toml`: a policy
repository's defaults. Found by walking up from a folder; every value is checked against
`schema_defs.CONFIG`, and an error names the file, the line and the key."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from kvmpmu.errors import SourceLoc, SpecError
from kvmpmu.records import Record
from kvmpmu.spec.schema import Errors, Node
from kvmpmu.spec.yamlio import YMap, YSeq

OWN_FILE = ".kvmpmu.toml"
PYPROJECT = "pyproject.toml"
_TOML_AT = r"\(at line (\d+), column (\d+)\)"  # compiled by `re` on first use


class Config(Record):
    __slots__ = ("path", "values", "lines")

    def __init__(self, path: str | None = None, values: dict[str, Any] | None = None,
                 lines: dict[str, int] | None = None) -> None:
        self.path = path  # None: no configuration file
        self.values = values if values is not None else {}  # checked, by key
        self.lines = lines if lines is not None else {}  # where each key is set

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def loc(self, key: str) -> SourceLoc | None:
        """Where `key` is set, for errors found in its value later."""
        return SourceLoc(self.path, self.lines.get(key, 1), 1) if self.path else None

    @property
    def folder(self) -> Path:
        return Path(self.path).parent if self.path else Path.cwd()


def _text(path: Path) -> str:
    where = SourceLoc(str(path), 1, 1)
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror or exc}", loc=where) from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"not UTF-8 text (byte {exc.start})", loc=where) from None


def _table(path: Path) -> tuple[dict[str, Any], tuple[str, ...]] | None:
    """The file's kvmpmu table and its header path, or None when it has none."""
    if sys.version_info >= (3, 11):  # read only where a configuration is found
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    text = _text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        at = re.search(_TOML_AT, str(exc))
        loc = SourceLoc(str(path), int(at.group(1)), int(at.group(2))) if at else \
            SourceLoc(str(path), 1, 1)
        raise SpecError(f"TOML syntax: {re.sub(_TOML_AT, '', str(exc)).strip()}", loc=loc) from None
    if path.name == OWN_FILE:
        return data, ()
    table = data.get("tool", {}).get("kvmpmu")
    return (table, ("tool", "kvmpmu")) if table is not None else None


def find_config(start: Path) -> Path | None:
    """The first `.kvmpmu.toml`, or `pyproject.toml` with `[tool.kvmpmu]`, from `start` up."""
    for folder in (start, *start.parents):
        own = folder / OWN_FILE
        if own.is_file():
            return own
        project = folder / PYPROJECT
        if project.is_file() and _has_table(project):
            return project
    return None


def _has_table(project: Path) -> bool:
    try:
        text = project.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return True  # load_config says why it cannot be read
    return re.search(r"^\s*\[tool\.kvmpmu[\].]", text, re.MULTILINE) is not None


def _key_line(lines: list[str], header: tuple[str, ...], key: str) -> int:
    """The line that sets `key` in the table `header` (1 when it cannot be told)."""
    current: tuple[str, ...] = ()
    wanted = re.compile(rf"""^\s*(["']?){re.escape(key)}\1\s*=""")
    for number, line in enumerate(lines, 1):
        head = re.match(r"^\s*\[+\s*([^\]]+?)\s*\]+", line)
        if head:
            current = tuple(p.strip().strip("\"'") for p in head.group(1).split("."))
            if current == header + (key,):
                return number  # [tool.kvmpmu.per-file-ignores]
            continue
        if current == header and wanted.match(line):
            return number
    return 1


def _located(value: Any, loc: SourceLoc) -> Any:
    """TOML values as the YAML reader's located values (every part at `loc`)."""
    if isinstance(value, dict):
        out = YMap({k: _located(v, loc) for k, v in value.items()})
        out.loc, out.key_loc, out.value_loc = loc, {k: loc for k in value}, \
            {k: loc for k in value}
        return out
    if isinstance(value, list):
        seq = YSeq(_located(v, loc) for v in value)
        seq.loc, seq.item_loc, seq.compact = loc, [loc] * len(value), False
        return seq
    return value


def load_config(path: Path) -> Config:
    found = _table(path)
    if found is None:
        return Config()
    table, header = found
    lines = _text(path).splitlines()
    located = YMap()
    located.loc = SourceLoc(str(path), 1, 1)
    located.key_loc, located.value_loc = {}, {}
    for key, value in table.items():
        loc = SourceLoc(str(path), _key_line(lines, header, key), 1)
        located[key] = _located(value, loc)
        located.key_loc[key] = located.value_loc[key] = loc
    return Config(str(path), _check(Node(located, located.loc, ".".join(header))),
                  {k: loc.line for k, loc in located.key_loc.items()})


def _check(doc: Node) -> dict[str, Any]:
    from kvmpmu.spec import schema_defs as defs  # only where a configuration is found

    errors = Errors()
    errors.check(lambda: defs.CONFIG.check(doc), None)
    values: dict[str, Any] = {}
    for key, node in doc.entries():
        if key in defs.CONFIG.keys:
            values[key] = errors.check(_reader(node, defs.CONFIG[key]), None)
    errors.raise_any()
    return values


def _reader(node: Node, kind: Any) -> Any:
    return lambda: _value(node, kind)


def _value(node: Node, kind: Any) -> Any:
    """A checked value: strings, booleans, enums, lists of strings, or a table of them."""
    if hasattr(kind, "read"):
        return kind.read(node)
    if hasattr(kind, "item"):
        return tuple(_value(i, kind.item) for i in node.items())
    return {str(k): _value(v, kind.value) for k, v in node.entries()}


def discover(start: Path | None = None) -> Config:
    """The configuration that applies in `start` (default: the current folder)."""
    path = find_config(start or Path.cwd())
    return load_config(path) if path is not None else Config()
