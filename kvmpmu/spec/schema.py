"""Typed access to YAML values with a breadcrumb path and a location, for exact error messages."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from kvmpmu.errors import SourceLoc, SpecError, SpecErrors
from kvmpmu.records import Record
from kvmpmu.spec.yamlio import YMap, YSeq

T = TypeVar("T")
D = TypeVar("D")

# compiled by `re` on first use: only a wrong value needs them
_YAML11_NUMBER = r"[-+]?(0[0-7]+|0o[0-7]+|0b[01]+|[0-9][0-9_]*(:[0-5]?[0-9])+|[0-9_]+)"
_FLOAT = r"[-+]?([0-9][0-9_]*)?\.[0-9_]*([eE][-+]?[0-9]+)?"
_YAML11_BOOL = {"yes", "no", "on", "off", "y", "n"}


_Choice = TypeVar("_Choice", bound=str)


class Node(Record):
    """A value together with its location and its path from the document root."""

    __slots__ = ("value", "loc", "path")

    def __init__(self, value: Any, loc: SourceLoc, path: str) -> None:
        self.value, self.loc, self.path = value, loc, path

    def error(self, message: str, hint: str | None = None) -> SpecError:
        return SpecError(message, loc=self.loc, path=self.path or None, hint=hint)

    def _describe(self) -> str:
        v = self.value
        if isinstance(v, YMap):
            return "a mapping"
        if isinstance(v, YSeq):
            return "a list"
        if v is None:
            return "nothing"
        if isinstance(v, bool):
            return f"boolean {str(v).lower()}"
        return repr(v)

    def mapping(self, allowed: tuple[str, ...] | None = None) -> YMap:
        if not isinstance(self.value, YMap):
            raise self.error(f"expected a mapping, got {self._describe()}")
        if allowed is not None:
            errors = Errors()
            for key in self.value:
                if key not in allowed:
                    import difflib

                    close = difflib.get_close_matches(str(key), allowed, n=1)
                    hint = f"did you mean {close[0]!r}?" if close else None
                    known = ", ".join(allowed)
                    errors.add(SpecError(f"unknown key {key!r} (known: {known})",
                                         loc=self.value.key_loc[key], path=self.path or None,
                                         hint=hint))
            errors.raise_any()
        return self.value

    def seq(self) -> YSeq:
        if not isinstance(self.value, YSeq):
            raise self.error(f"expected a list, got {self._describe()}")
        return self.value

    def items(self) -> list[Node]:
        seq = self.seq()
        return [Node(v, seq.item_loc[i], f"{self.path}[{i}]") for i, v in enumerate(seq)]

    def get(self, key: str) -> Node | None:
        m = self.mapping()
        if key not in m:
            return None
        return Node(m[key], m.value_loc[key], f"{self.path}.{key}" if self.path else str(key))

    def require(self, key: str) -> Node:
        node = self.get(key)
        if node is None:
            raise self.error(f"missing required key {key!r}")
        return node

    def entries(self) -> list[tuple[Any, Node]]:
        m = self.mapping()
        return [(k, Node(v, m.value_loc[k], f"{self.path}.{k}" if self.path else str(k)))
                for k, v in m.items()]

    def integer(self, lo: int, hi: int, what: str = "an integer") -> int:
        v = self.value
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.error(f"expected {what}, got {self._describe()}" + _number_hint(v))
        if not lo <= v <= hi:
            raise self.error(f"{v} (0x{v:x}) is out of range {lo}..{hi} (0x{hi:x})"
                             if v >= 0 else f"{v} is out of range {lo}..{hi}")
        return v

    def string(self) -> str:
        if not isinstance(self.value, str):
            raise self.error(f"expected a string, got {self._describe()}")
        return self.value

    def file_path(self) -> Path:
        """A path written in a file, relative to that file's folder unless absolute."""
        path = Path(self.string())
        return path if path.is_absolute() else Path(self.loc.file).parent / path

    def boolean(self) -> bool:
        if not isinstance(self.value, bool):
            hint = ("write true or false" if isinstance(self.value, str)
                    and self.value.lower() in _YAML11_BOOL else None)
            raise self.error(f"expected true or false, got {self._describe()}", hint)
        return self.value

    def choice(self, choices: tuple[_Choice, ...]) -> _Choice:
        """One of `choices` (a closed set: the result has its type)."""
        text = str(self.value) if isinstance(self.value, (str, int)) else None
        if text is None or isinstance(self.value, bool) or text not in choices:
            import difflib

            close = difflib.get_close_matches(str(self.value), choices, n=1)
            raise self.error(f"{self._describe()} is not one of {', '.join(choices)}",
                             f"did you mean {close[0]!r}?" if close else None)
        return choices[choices.index(text)]


def _number_hint(v: Any) -> str:
    if isinstance(v, str):
        if re.fullmatch(_YAML11_NUMBER, v) or re.fullmatch(_FLOAT, v):
            return " (only decimal and 0x-hex integers are numbers here)"
        if v.lower() in _YAML11_BOOL:
            return " (yes/no/on/off are not booleans or numbers here)"
    return ""


def root(value: Any, file: str) -> Node:
    loc = value.loc if isinstance(value, (YMap, YSeq)) else SourceLoc(file, 1, 1)
    return Node(value, loc, "")


class Errors:
    """The independent errors of one file (entries, sections, keys), gathered so that a file
    is reported whole: `check` runs one part and keeps its error; `raise_any` raises them."""

    def __init__(self) -> None:
        self.found: list[SpecError] = []

    def add(self, err: SpecError) -> None:
        self.found.append(err)

    def check(self, part: Callable[[], T], default: D) -> T | D:
        """`part()`, or `default` once its SpecError is kept."""
        try:
            return part()
        except SpecError as err:
            self.found.append(err)
            return default

    def raise_any(self) -> None:
        if len(self.found) == 1:
            raise self.found[0]
        if self.found:
            raise SpecErrors(self.found)
