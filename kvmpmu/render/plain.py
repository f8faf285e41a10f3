"""Long tables as aligned plain columns (like `ps` or `kubectl get`): rich's Table measures
every cell and costs ~0.4 ms a row, which a 128-row PMCEID table cannot afford at start-up."""

from __future__ import annotations

from rich.text import Text

Cell = str | Text


def columns(title: str, headers: list[str], rows: list[list[Cell]]) -> Text:
    """A title line, a header line, then one line per row; cells padded to the widest."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths[i], len(cell.plain if isinstance(cell, Text) else cell))
    out = Text(title + "\n", style="italic")
    out.append("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
               style="bold")
    for row in rows:
        line = Text()
        for i, cell in enumerate(row):
            text = cell if isinstance(cell, Text) else Text(cell)
            line.append_text(text)
            if i < len(row) - 1:
                line.append(" " * (widths[i] - len(text.plain) + 2))
        line.rstrip()
        out.append("\n")
        out.append_text(line)
    return out
