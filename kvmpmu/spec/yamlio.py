"""Read YAML into plain values that remember where they came from.

Built from PyYAML's event stream (no recursion, no object construction), so that it can reject
duplicate keys, object-constructing tags, alias bombs and deep nesting, and keep every node's
file:line:col. Scalars are typed deliberately (see README "YAML dialect"): only decimal and 0x
integers and true/false are typed; everything else stays a string for the schema to judge.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

from kvmpmu.errors import SourceLoc, SpecError

try:
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _Loader = yaml.SafeLoader

DEFAULT_MAX_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64
MAX_EXPANDED_NODES = 5_000_000

_INT_DEC = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_INT_HEX = re.compile(r"0[xX][0-9a-fA-F]+")
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False,
          "FALSE": False}
_NULLS = {"", "~", "null", "Null", "NULL"}
_STD = "tag:yaml.org,2002:"
_ALLOWED_TAGS = {_STD + t for t in ("str", "int", "bool", "null", "map", "seq", "float")}


class YMap(dict):  # type: ignore[type-arg]
    """A mapping with the location of itself, of each key and of each value."""

    __slots__ = ("loc", "key_loc", "value_loc")
    loc: SourceLoc
    key_loc: dict[Any, SourceLoc]
    value_loc: dict[Any, SourceLoc]


class YSeq(list):  # type: ignore[type-arg]
    """A sequence with the location of itself and of each item. `compact`: from a fast reader
    (`load(compact=True)`, `load_json_fast`), read once: its reader may release each item."""

    __slots__ = ("loc", "item_loc", "compact")
    loc: SourceLoc
    item_loc: list[SourceLoc]
    compact: bool


def plain(value: Any) -> Any:
    """YMap/YSeq back to plain dicts and lists (for dumping)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def _loc(file: str, mark: Any) -> SourceLoc:
    return SourceLoc(file, mark.line + 1, mark.column + 1)


def scalar_value(text: str, plain: bool) -> Any:
    """Type a scalar: quoted ones are strings; plain ones may be int, bool or null."""
    if not plain:
        return text
    if text in _NULLS:
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    if _INT_DEC.fullmatch(text):
        return int(text)
    if _INT_HEX.fullmatch(text):
        return int(text, 16)
    return text


STDIN = "-"
STDIN_NAME = "<stdin>"
_stdin_data: list[bytes] = []  # read once; every later `-` of the command sees the same bytes


def source_name(path: str) -> str:
    """How locations name an input: `<stdin>` for `-`, else the path as given."""
    return STDIN_NAME if path == STDIN else path


def _too_big(size: int, max_bytes: int, where: SourceLoc) -> SpecError:
    return SpecError(f"file is {size} bytes, over the {max_bytes}-byte limit "
                     "(raise it with --max-bytes)", loc=where)


def _read_stdin(max_bytes: int) -> bytes:
    if not _stdin_data:
        _stdin_data.append(sys.stdin.buffer.read(max_bytes + 1))
    data = _stdin_data[0]
    if len(data) > max_bytes:
        raise _too_big(len(data), max_bytes, SourceLoc(STDIN_NAME, 1, 1))
    return data


def forget_stdin() -> None:
    """For a new command in the same process (tests)."""
    _stdin_data.clear()


def read_text(path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The file's text (`-`: standard input), refusing directories, unreadable, oversized,
    empty or non-UTF-8 files."""
    p = Path(path)
    where = SourceLoc(source_name(path), 1, 1)
    try:
        if path == STDIN:
            data = _read_stdin(max_bytes)
        elif p.is_dir():
            raise SpecError("is a directory, not a file", loc=where)
        else:
            size = p.stat().st_size
            if size > max_bytes:
                raise _too_big(size, max_bytes, where)
            data = p.read_bytes()
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror or exc}", loc=where) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError(f"not UTF-8 text (byte 0x{data[exc.start]:02x})",
                        loc=SourceLoc(where.file, line, col)) from None
    if not text.strip() or all(
        not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()
    ):
        raise SpecError("file is empty", loc=where)
    return text


def load(text: str, file: str, compact: bool = False) -> Any:
    """Parse one YAML document into YMap/YSeq/scalars. `compact`: a mapping of scalars that is
    an item of a list keeps its own position (the item's) but not its keys' and values' (they
    name only the file), so that a list of 100,000 such entries costs a fraction of the memory;
    whoever gets an error located so reads the file again without `compact`."""
    try:
        return _build(yaml.parse(text, Loader=_Loader), file, compact)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = _loc(file, mark) if mark else SourceLoc(file, 1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        if _tab_at(text, mark):
            raise SpecError("YAML syntax: a tab character here: YAML indents with spaces only",
                            loc=loc, hint="replace the tab with spaces") from None
        raise SpecError(f"YAML syntax: {problem}", loc=loc) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"YAML syntax: {exc}", loc=SourceLoc(file, 1, 1)) from None


def _tab_at(text: str, mark: Any) -> bool:
    """Whether the reader stopped at a tab (its "cannot start any token" hides that)."""
    return mark is not None and 0 <= mark.index < len(text) and text[mark.index] == "\t"


def load_file(path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    return load(read_text(path, max_bytes), source_name(path))


def _check_tag(event: Any, file: str) -> None:
    tag = event.tag
    if tag is None or tag == "!":
        return
    if tag not in _ALLOWED_TAGS:
        raise SpecError(f"tag {tag!r} is not allowed (only plain YAML data)",
                        loc=_loc(file, event.start_mark))


class _Frame:
    """A mapping or sequence being built: its nodes so far, the key waiting for its value."""

    __slots__ = ("container", "size", "key", "key_loc", "anchor", "loc", "nested")

    def __init__(self, container: Any, anchor: str | None, loc: SourceLoc) -> None:
        self.container = container
        self.size = 1  # nodes under it, itself included (aliases count what they expand to)
        self.key: Any = _NO_KEY
        self.key_loc: SourceLoc | None = None
        self.anchor = anchor
        self.loc = loc
        self.nested = False  # holds a mapping or a list


def _build(events: Any, file: str, compact: bool = False) -> Any:
    stack: list[_Frame] = []
    anchors: dict[str, tuple[Any, int]] = {}
    strings: dict[str, str] = {}  # one object per distinct string: keys repeat in every entry
    unplaced = _SameLoc(SourceLoc(file, 0, 0))
    root: Any = None
    total = 0
    documents = 0

    def attach(value: Any, size: int, loc: SourceLoc) -> None:
        nonlocal root, total
        total += size
        if total > MAX_EXPANDED_NODES:
            raise SpecError(f"document expands to over {MAX_EXPANDED_NODES} nodes (alias bomb?)",
                            loc=loc)
        if not stack:
            root = value
            return
        frame = stack[-1]
        container = frame.container
        frame.size += size
        if size > 1 or isinstance(value, (YMap, YSeq)):
            frame.nested = True
        if isinstance(container, YSeq):
            container.append(value)
            container.item_loc.append(loc)
        elif frame.key is _NO_KEY:
            if isinstance(value, (YMap, YSeq)) or isinstance(value, float):
                raise SpecError("mapping keys must be plain scalars", loc=loc)
            if value in container:
                first = container.key_loc[value].line
                raise SpecError(f"duplicate key {value!r} (first at line {first})", loc=loc)
            frame.key, frame.key_loc = value, loc
        else:
            key = frame.key
            container[key] = value
            container.key_loc[key] = frame.key_loc
            container.value_loc[key] = loc
            frame.key = _NO_KEY

    for event in events:
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise SpecError("more than one YAML document", loc=_loc(file, event.start_mark))
        elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            _check_tag(event, file)
            loc = _loc(file, event.start_mark)
            if len(stack) >= MAX_DEPTH:
                raise SpecError(f"nesting deeper than {MAX_DEPTH} levels", loc=loc)
            node: Any
            if isinstance(event, yaml.MappingStartEvent):
                node = YMap()
                node.key_loc, node.value_loc = {}, {}
            else:
                node = YSeq()
                node.item_loc = []
                node.compact = compact
            node.loc = loc
            stack.append(_Frame(node, event.anchor, loc))
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            done = stack.pop()
            total -= done.size - 1  # children were counted as they were attached
            if compact and not done.nested and stack and isinstance(done.container, YMap) \
                    and isinstance(stack[-1].container, YSeq):
                done.container.key_loc = done.container.value_loc = unplaced
            if done.anchor:
                anchors[done.anchor] = (done.container, done.size)
            attach(done.container, done.size, done.loc)
        elif isinstance(event, yaml.ScalarEvent):
            _check_tag(event, file)
            plain = event.implicit[0] and not event.style and event.tag in (None, "!")
            value = scalar_value(event.value, plain)
            if type(value) is str:
                value = strings.setdefault(value, value)
            if event.anchor:
                anchors[event.anchor] = (value, 1)
            attach(value, 1, _loc(file, event.start_mark))
        elif isinstance(event, yaml.AliasEvent):
            loc = _loc(file, event.start_mark)
            if event.anchor not in anchors:
                raise SpecError(f"unknown alias *{event.anchor}", loc=loc)
            value, size = anchors[event.anchor]
            attach(value, size, loc)
    return root


_NO_KEY = object()


class _SameLoc(dict):  # type: ignore[type-arg]
    """key_loc/value_loc/item_loc of the JSON fast path: one location for everything."""

    def __init__(self, loc: SourceLoc) -> None:
        super().__init__()
        self.loc = loc

    def __missing__(self, key: Any) -> SourceLoc:
        return self.loc


class _Duplicate(Exception):
    pass


def load_json_fast(text: str, file: str) -> Any:
    """JSON through the C `json` module, as YMap/YSeq whose locations name only the file.
    Raises ValueError for anything the YAML reader would judge differently (syntax errors,
    duplicate keys): the caller then reads the file the slow way, with positions."""
    import json  # not on the path of YAML specs

    same = _SameLoc(SourceLoc(file, 0, 0))

    def mapping(pairs: list[tuple[str, Any]]) -> YMap:
        out = YMap()
        for key, value in pairs:
            if key in out:
                raise _Duplicate(key)
            out[key] = _seq(value, same)
        out.loc, out.key_loc, out.value_loc = same.loc, same, same
        return out

    try:
        return _seq(json.loads(text, object_pairs_hook=mapping), same)
    except _Duplicate as dup:
        raise ValueError(f"duplicate key {dup}") from None


def _seq(value: Any, same: _SameLoc) -> Any:
    """JSON arrays as YSeq (objects were converted by the hook, innermost first)."""
    if type(value) is not list:
        return value
    out = YSeq(_seq(v, same) for v in value)
    out.loc, out.item_loc, out.compact = same.loc, same, True  # type: ignore[assignment]
    return out
