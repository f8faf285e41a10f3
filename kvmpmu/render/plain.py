"""Human output off a terminal, byte for byte what rich prints there (no colours, nothing
wrapped: one line per row), made without importing rich; and long tables as plain columns.

rich reads a str cell or title as markup with emoji codes: when that could change a text
(a `[`, or an emoji name between colons) the caller renders with rich instead, as it does for
characters whose width is not one cell.
"""

from __future__ import annotations

import re

from kvmpmu.render.layout import Cell, Group, Renderable, Table, Text

_EMOJI_CODE = r"(:(\S*?)(?:(?:\-)(emoji|text))?:)"  # rich's own pattern, compiled when used
ELLIPSIS = "…"  # one cell wide, like every printable ASCII character


# rich's HEAVY_HEAD box: the rules above the header, under it, and under the last row.
TOP, HEAD_RULE, BOTTOM = ("┏", "━", "┳", "┓"), ("┡", "━", "╇", "┩"), ("└", "─", "┴", "┘")


def box_rule(widths: list[int], left: str, fill: str, cross: str, end: str) -> str:
    """A rule across cells of these widths (their padding included)."""
    return left + cross.join(fill * w for w in widths) + end


class NotPlain(Exception):
    """Rich would print this output differently from its plain text."""


def columns(title: str, headers: list[str], rows: list[list[Cell]]) -> Text:
    """A title line, a header line, then one line per row; cells padded to the widest (like
    `ps` or `kubectl get`: rich's Table measures every cell, which long tables cannot afford)."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths[i], len(cell.plain if isinstance(cell, Text) else cell))
    out = Text(title + "\n", style="italic")
    out.append("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
               style="bold")
    for row in rows:
        line = Text()
        last = len(row) - 1
        for i, cell in enumerate(row):
            if isinstance(cell, Text):
                line.append_text(cell)
                size = len(cell.plain)
            else:  # as rich appends an unstyled Text
                line.append(cell)
                size = len(cell)
            if i < last:
                line.append(" " * (widths[i] - size + 2))
        line.rstrip()
        out.append("\n")
        out.append_text(line)
    return out


def plain_text(renderable: Renderable) -> str:
    """What rich prints for `renderable` off a terminal; NotPlain where it could differ."""
    if isinstance(renderable, Group):
        return "".join(plain_text(part) for part in renderable.parts)
    if isinstance(renderable, Table):
        return _table(renderable)
    text = renderable.plain
    check_cells(text, lines=True)
    return text + "\n"


def check_cells(text: str, lines: bool = False) -> None:
    """Every character one cell wide (newlines only where `lines`)."""
    if lines:
        text = text.replace("\n", "")
    if not text.replace(ELLIPSIS, "").isascii() or not text.isprintable():
        raise NotPlain(text)


def literal(text: str) -> str:
    """A str as rich's markup reader leaves it: itself, or NotPlain."""
    check_cells(text)
    if "[" in text:
        raise NotPlain(text)
    if ":" in text and re.search(_EMOJI_CODE, text):
        from rich._emoji_codes import EMOJI  # the names only: a dict, not rich's console

        if any(m.group(2).lower() in EMOJI for m in re.finditer(_EMOJI_CODE, text)):
            raise NotPlain(text)
    return text


def _cell(cell: Cell) -> str:
    if isinstance(cell, Text):
        text = cell.plain
        check_cells(text)
        return text
    return literal(cell)


def _table(table: Table) -> str:
    """rich's default box (HEAVY_HEAD), cells padded by one space, widths from the content."""
    if not table.columns or table.title == "" or (
            table.title is not None and table.title_justify != "left"):
        raise NotPlain("a table rich lays out otherwise")
    headers = [literal(c.header) for c in table.columns]
    if any(len(row) > len(headers) for row in table.rows):
        raise NotPlain("a row with more cells than columns")
    rows = [[_cell(c) for c in row] + [""] * (len(headers) - len(row)) for row in table.rows]
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]
    right = [c.justify == "right" for c in table.columns]

    def line(cells: list[str], bar: str) -> str:  # rich strips what it justifies right
        return bar + "".join(f" {c.rstrip().rjust(w) if r else c.ljust(w)} {bar}"
                             for c, w, r in zip(cells, widths, right, strict=True))

    out = [literal(table.title)] if table.title is not None else []
    padded = [w + 2 for w in widths]
    out += [box_rule(padded, *TOP), line(headers, "┃"), box_rule(padded, *HEAD_RULE)]
    out += [line(row, "│") for row in rows]
    out.append(box_rule(padded, *BOTTOM))
    return "\n".join(out) + "\n"
