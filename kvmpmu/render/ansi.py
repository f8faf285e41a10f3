"""Human output on a terminal, byte for byte what rich prints there (its width, wrapping and
colours, its default table), made without importing rich: rich's console and table modules
cost more to import than the rest of a command. `NotPlain` where rich could print otherwise
(see richtext.py and plain.py); the caller then renders with rich."""

from __future__ import annotations

import os
import sys

from kvmpmu.render.layout import Cell, Group, Renderable, Table, Text
from kvmpmu.render.plain import BOTTOM, HEAD_RULE, TOP, NotPlain, box_rule, check_cells, literal
from kvmpmu.render.richtext import (
    NULL,
    RichText,
    Segment,
    Style,
    combine,
    parse_style,
    segments,
    sgr,
    wrap,
)

HEADER, TITLE = parse_style("bold"), parse_style("italic")  # rich's table.header, table.title


def terminal_width() -> int:
    """The width rich's Console measures: the first standard stream that is a terminal,
    then $COLUMNS, else 80."""
    if sys.platform == "win32" or os.environ.get("TERM", "").strip().lower() in (
            "dumb", "unknown"):
        raise NotPlain("a terminal rich treats otherwise")
    width = 0
    for fd in (0, 1, 2):
        try:
            width = os.get_terminal_size(fd).columns
            break
        except (AttributeError, ValueError, OSError):
            pass
    columns = os.environ.get("COLUMNS")
    if columns is not None and columns.isdigit():
        width = int(columns)
    return width or 80


def terminal_text(renderable: Renderable, width: int, no_color: bool) -> str:
    colour = not no_color and os.environ.get("NO_COLOR", "") == ""
    lines = _lines(renderable, width)
    return "".join("".join(sgr(text, style, colour) for text, style in line) + "\n"
                   for line in lines)


def _lines(renderable: Renderable, width: int) -> list[list[Segment]]:
    if isinstance(renderable, Group):
        return [line for part in renderable.parts for line in _lines(part, width)]
    if isinstance(renderable, Table):
        return _table(renderable, width)
    return segments(wrap(rich_text(renderable), width, "default"))


def rich_text(text: Text) -> RichText:
    """The rich Text that terminal.to_rich makes of `text`."""
    check_cells(text.plain, lines=True)
    out = RichText(style=parse_style(text.style))
    for op, value, style in text.ops:
        if isinstance(value, Text):
            out.append_text(rich_text(value))
        elif op == "append":
            out.append(value, parse_style(style) if style else None)
        elif len(out.plain.rstrip()) < len(out.plain):
            out.set_plain(out.plain.rstrip())
    return out


def _cell(cell: Cell) -> RichText:
    return rich_text(cell) if isinstance(cell, Text) else RichText(literal(cell))


def _table(table: Table, width: int) -> list[list[Segment]]:
    """rich's Table with its defaults: the HEAVY_HEAD box, cells padded by one space."""
    count = len(table.columns)
    if not count or any(len(row) > count for row in table.rows):
        raise NotPlain("a table rich lays out otherwise")
    header = [RichText(literal(c.header)) for c in table.columns]
    rows = [[_cell(c) for c in row] + [RichText() for _ in range(count - len(row))]
            for row in table.rows]
    widths = column_widths(table, [header, *rows], width - count - 1)
    if min(widths) < 3:
        raise NotPlain("a column too narrow for its padding")
    out: list[list[Segment]] = []
    if table.title:
        title = RichText(literal(table.title), TITLE)
        out += segments(wrap(title, sum(widths) + count + 1, table.title_justify))
    out.append([(box_rule(widths, *TOP), NULL)])
    out += _row(table, header, widths, HEADER, "┃", bottom=True)
    out.append([(box_rule(widths, *HEAD_RULE), NULL)])
    for row in rows:
        out += _row(table, row, widths, NULL, "│", bottom=False)
    out.append([(box_rule(widths, *BOTTOM), NULL)])
    return out


def _row(table: Table, cells: list[RichText], widths: list[int], style: Style, bar: str,
         bottom: bool) -> list[list[Segment]]:
    rendered = []
    for cell, column, width in zip(cells, table.columns, widths, strict=True):
        lines = segments(wrap(cell, width - 2, column.justify, column.no_wrap, "ellipsis"))
        rendered.append([[(t, combine(style, s)) for t, s in [(" ", NULL), *line, (" ", NULL)]]
                         for line in lines])
    height = max(len(lines) for lines in rendered)
    for lines, width in zip(rendered, widths, strict=True):
        blank = [[(" " * width, style)]] * (height - len(lines))
        if bottom:  # a header sits at the bottom of its row
            lines[:0] = blank
        else:
            lines += blank
    out = []
    for n in range(height):
        line = [(bar, NULL)]
        for i, lines in enumerate(rendered):
            line += [(bar, NULL)] * bool(i) + lines[n]
        out.append(line + [(bar, NULL)])
    return out


def column_widths(table: Table, rows: list[list[RichText]], max_width: int) -> list[int]:
    """Table._calculate_column_widths for a table without fixed widths or expansion."""
    columns = list(zip(*rows, strict=True))
    widths = [_measure(column, max_width)[1] or 1 for column in columns]
    if sum(widths) > max_width:
        wrapable = [not c.no_wrap for c in table.columns]
        widths = _collapse(widths, wrapable, max_width)
        if sum(widths) > max_width:
            widths = _ratio_reduce(sum(widths) - max_width, [1] * len(widths), widths, widths)
        widths = [_measure(column, w)[1] for column, w in zip(columns, widths, strict=True)]
    return widths


def _measure(cells: tuple[RichText, ...], max_width: int) -> tuple[int, int]:
    """A column's (minimum, maximum) width with padding, as rich's Measurement works it out."""
    if max_width < 1:
        return 0, 0
    found = [_measure_padded(cell.plain, max_width) for cell in cells]
    return min(max(m for m, _ in found), max_width), min(max(m for _, m in found), max_width)


def _measure_padded(plain: str, max_width: int) -> tuple[int, int]:
    if max_width - 2 < 1:
        low, high = max_width, max_width
    else:
        lines, words = plain.splitlines(), plain.split()
        high = max(map(len, lines)) if lines else 0
        low = max(map(len, words)) if words else high
        low, high = _clip(low, high, max_width)
        if high < 1:
            low, high = 0, 0
        low, high = low + 2, high + 2
    low, high = _clip(min(low, max_width), min(high, max_width), max_width)
    return (0, 0) if high < 1 else (low, high)


def _clip(low: int, high: int, max_width: int) -> tuple[int, int]:
    """Measurement.normalize().with_maximum(max_width)."""
    low = max(0, min(max(0, low), high))
    high = max(0, max(low, high))
    return min(low, max_width), min(high, max_width)


def _collapse(widths: list[int], wrapable: list[bool], max_width: int) -> list[int]:
    """Table._collapse_widths: the widest wrapable columns shrink first."""
    excess = sum(widths) - max_width
    while any(wrapable) and sum(widths) > 0 and excess > 0:
        widest = max(w for w, wrap_ in zip(widths, wrapable, strict=True) if wrap_)
        second = max(w if wrap_ and w != widest else 0
                     for w, wrap_ in zip(widths, wrapable, strict=True))
        ratios = [1 if w == widest and wrap_ else 0
                  for w, wrap_ in zip(widths, wrapable, strict=True)]
        if not any(ratios) or not widest - second:
            break
        widths = _ratio_reduce(excess, ratios, [min(excess, widest - second)] * len(widths),
                               widths)
        excess = sum(widths) - max_width
    return widths


def _ratio_reduce(total: int, ratios: list[int], maximums: list[int],
                  values: list[int]) -> list[int]:
    """rich._ratio.ratio_reduce."""
    ratios = [r if m else 0 for r, m in zip(ratios, maximums, strict=True)]
    total_ratio, remaining, out = sum(ratios), total, []
    if not total_ratio:
        return values[:]
    for ratio, maximum, value in zip(ratios, maximums, values, strict=True):
        if ratio and total_ratio > 0:
            share = min(maximum, round(ratio * remaining / total_ratio))
            out.append(value - share)
            remaining -= share
            total_ratio -= ratio
        else:
            out.append(value)
    return out
