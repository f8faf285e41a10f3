"""What human output is made of: styled text, tables with a title, and groups of them.

The same few calls as rich's Text, Table and Group, recorded rather than rendered: off a
terminal `plain.py` prints them without importing rich (whose console and table modules cost
more than kvmpmu's whole start-up), and `terminal.py` replays them on rich for a terminal.
"""

from __future__ import annotations

from typing import Literal, Union

Justify = Literal["left", "center", "right"]


class Text:
    """rich.text.Text's calls kvmpmu makes: a base style, appended pieces, a final rstrip."""

    __slots__ = ("style", "ops", "_pieces")

    def __init__(self, text: str = "", style: str = "") -> None:
        self.style = style
        self.ops: list[tuple[str, str | Text, str | None]] = [("append", text, None)] \
            if text else []
        self._pieces = [text]  # the plain text, joined when read

    def append(self, text: str, style: str | None = None) -> Text:
        self.ops.append(("append", text, style))
        self._pieces.append(text)
        return self

    def append_text(self, text: Text) -> Text:
        """As rich: `text` as it is now (a later change to it does not show here)."""
        copy = Text(style=text.style)
        copy.ops, copy._pieces = text.ops[:], [text.plain]
        self.ops.append(("append_text", copy, None))
        self._pieces.append(copy.plain)
        return self

    def rstrip(self) -> None:
        self.ops.append(("rstrip", "", None))
        self._pieces = [self.plain.rstrip()]

    @property
    def plain(self) -> str:
        if len(self._pieces) != 1:
            self._pieces = ["".join(self._pieces)]
        return self._pieces[0]


Cell = Union[str, Text]  # noqa: UP007 - a runtime alias on 3.10


class Column:
    __slots__ = ("header", "justify", "no_wrap")

    def __init__(self, header: str, justify: Justify, no_wrap: bool) -> None:
        self.header, self.justify, self.no_wrap = header, justify, no_wrap


class Table:
    """A titled table drawn with rich's default box; str cells are read as rich reads them."""

    __slots__ = ("title", "title_justify", "columns", "rows")

    def __init__(self, title: str | None = None, title_justify: Justify = "center") -> None:
        self.title, self.title_justify = title, title_justify
        self.columns: list[Column] = []
        self.rows: list[tuple[Cell, ...]] = []

    def add_column(self, header: str, justify: Justify = "left", no_wrap: bool = False) -> None:
        self.columns.append(Column(header, justify, no_wrap))

    def add_row(self, *cells: Cell) -> None:
        self.rows.append(cells)


class Group:
    """Renderables one below the other."""

    __slots__ = ("parts",)

    def __init__(self, *parts: Renderable) -> None:
        self.parts = parts


Renderable = Union[Text, Table, Group]  # noqa: UP007
