"""Human output through rich: on a terminal (its width, colours and wrapping), and off one
for what `plain.py` leaves to rich (markup, emoji codes, wide characters)."""

from __future__ import annotations

import io
from typing import Any

from kvmpmu.render.layout import Group, Renderable, Table, Text

PIPE_WIDTH = 1 << 20  # off a terminal no line is wrapped or cut: rich never reaches this


def to_rich(renderable: Renderable) -> Any:
    """The same calls, made on rich's Text, Table and Group."""
    from rich import console, table, text

    if isinstance(renderable, Group):
        return console.Group(*(to_rich(part) for part in renderable.parts))
    if isinstance(renderable, Table):
        out = table.Table(title=renderable.title, title_justify=renderable.title_justify)
        for column in renderable.columns:
            out.add_column(column.header, justify=column.justify, no_wrap=column.no_wrap)
        for row in renderable.rows:
            out.add_row(*(to_rich(c) if isinstance(c, Text) else c for c in row))
        return out
    rich_text = text.Text(style=renderable.style)
    for op, value, style in renderable.ops:
        if isinstance(value, Text):
            rich_text.append_text(to_rich(value))
        elif op == "append":
            rich_text.append(value, style=style)
        else:
            rich_text.rstrip()
    return rich_text


def render(renderable: Renderable, terminal: bool, no_color: bool) -> str:
    """rich's rendering: a terminal gets its width and colours, anything else one unwrapped
    line per row."""
    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, force_terminal=terminal, width=None if terminal else PIPE_WIDTH,
            no_color=no_color or None, highlight=False,
            soft_wrap=not terminal).print(to_rich(renderable))
    return buffer.getvalue()
