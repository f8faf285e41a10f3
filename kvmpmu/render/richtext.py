"""rich's Text as it wraps, justifies and styles on a terminal, for the text kvmpmu prints:
printable ASCII, a few named styles, words that fit their width. `NotPlain` for the rest, which
the caller leaves to rich itself (tests compare the two byte for byte)."""

from __future__ import annotations

import re
from itertools import pairwise

from kvmpmu.render.plain import NotPlain

# SGR parameters in the order rich writes them: attributes, then the foreground colour.
_ATTRIBUTES = {"bold": "1", "b": "1", "dim": "2", "d": "2", "italic": "3", "i": "3",
               "underline": "4", "u": "4", "reverse": "7", "r": "7", "strike": "9", "s": "9"}
_ATTRIBUTE_ORDER = "1234567890"
_COLOURS = {name: str(30 + n) for n, name in enumerate(
    ("black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"))}
_COLOURS.update({f"bright_{name}": str(60 + int(code)) for name, code in list(_COLOURS.items())})
_COLOURS["default"] = "39"
_WORD = re.compile(r"\s*\S+\s*")

Style = tuple[frozenset[str], "str | None"]  # SGR attributes, foreground colour
NULL: Style = (frozenset(), None)


def parse_style(text: str | None) -> Style:
    """'bold red' as rich reads it; NotPlain for what this does not model."""
    attributes: set[str] = set()
    colour = None
    for word in (text or "").lower().split():
        if word in _ATTRIBUTES:
            attributes.add(_ATTRIBUTES[word])
        elif word in _COLOURS:
            colour = _COLOURS[word]
        else:
            raise NotPlain(f"style {text!r}")
    return frozenset(attributes), colour


def combine(*styles: Style) -> Style:
    """Later styles win for the colour; attributes add up (rich's Style.__add__)."""
    attributes: frozenset[str] = frozenset()
    colour = None
    for more, more_colour in styles:
        attributes |= more
        colour = more_colour if more_colour is not None else colour
    return attributes, colour


def sgr(text: str, style: Style, colour: bool) -> str:
    """A segment as rich's Style.render writes it."""
    codes = sorted(style[0], key=_ATTRIBUTE_ORDER.index)
    if colour and style[1] is not None:
        codes.append(style[1])
    return f"\x1b[{';'.join(codes)}m{text}\x1b[0m" if codes and text else text


Span = tuple[int, int, Style]


class RichText:
    """rich.text.Text's plain text, base style and spans, with the steps of its wrap()."""

    __slots__ = ("plain", "style", "spans")

    def __init__(self, plain: str = "", style: Style = NULL,
                 spans: list[Span] | None = None) -> None:
        self.plain, self.style, self.spans = plain, style, spans or []

    def append(self, text: str, style: Style | None = None) -> None:
        if text:
            if style is not None and style != NULL:
                self.spans.append((len(self.plain), len(self.plain) + len(text), style))
            self.plain += text

    def append_text(self, other: RichText) -> None:
        offset = len(self.plain)
        if other.style != NULL:
            self.spans.append((offset, offset + len(other.plain), other.style))
        self.spans += [(start + offset, end + offset, s) for start, end, s in other.spans]
        self.plain += other.plain

    def set_plain(self, new: str) -> None:
        """rich's `plain` setter: spans past a shortened end are cut, never stretched."""
        if len(new) < len(self.plain):
            self.spans = [(s, min(e, len(new)), st) for s, e, st in self.spans if s < len(new)]
        self.plain = new

    def divide(self, offsets: list[int]) -> list[RichText]:
        if not offsets:  # rich copies the text whole, empty spans too
            return [RichText(self.plain, self.style, self.spans[:])]
        bounds = [0, *offsets, len(self.plain)]
        lines = []
        for start, end in pairwise(bounds):
            spans = [(max(0, s - start), min(e - start, end - start), st)
                     for s, e, st in self.spans if min(e - start, end - start) > max(0, s - start)]
            lines.append(RichText(self.plain[start:end], self.style, spans))
        return lines

    def split_lines(self) -> list[RichText]:
        """split("\\n", allow_blank=True)."""
        if "\n" not in self.plain:
            return [RichText(self.plain, self.style, self.spans[:])]
        offsets = [o for m in re.finditer("\n", self.plain) for o in m.span()]
        return [line for line in self.divide(offsets) if line.plain != "\n"]


def wrap(text: RichText, width: int, justify: str, no_wrap: bool = False,
         overflow: str = "fold") -> list[RichText]:
    """Text.wrap: words moved to the next line, a word wider than a line folded (or cut, with
    overflow "ellipsis"), lines justified and truncated as rich's Lines.justify does."""
    if width < 1 or justify not in ("default", "left", "center", "right"):
        raise NotPlain(f"a {width}-cell line justified {justify}")
    out = []
    for line in text.split_lines():
        if no_wrap:
            pieces = [line]
        else:
            pieces = line.divide(_divide_line(line.plain, width, overflow == "fold"))
            for piece in pieces:  # rstrip_end: trailing blanks go only as far as they overflow
                excess = len(piece.plain) - width
                if excess > 0:
                    blanks = len(piece.plain) - len(piece.plain.rstrip())
                    piece.set_plain(piece.plain[:len(piece.plain) - min(blanks, excess)])
        for piece in pieces:
            if justify == "left":
                _truncate(piece, width, overflow, pad=True)
            elif justify != "default":
                piece.set_plain(piece.plain.rstrip())
                _truncate(piece, width, overflow)
                room = width - len(piece.plain)
                _pad_left(piece, room if justify == "right" else room // 2)
                piece.plain += " " * (width - len(piece.plain))
            _truncate(piece, width, overflow)
        out += pieces
    return out


def _truncate(text: RichText, width: int, overflow: str, pad: bool = False) -> None:
    length = len(text.plain)
    if length > width:
        text.set_plain(text.plain[:width - 1] + "…" if overflow == "ellipsis"
                       else text.plain[:width])
    if pad and length < width:
        text.plain += " " * (width - length)


def _pad_left(text: RichText, count: int) -> None:
    text.plain = " " * count + text.plain
    text.spans = [(s + count, e + count, st) for s, e, st in text.spans]


def _divide_line(text: str, width: int, fold: bool) -> list[int]:
    """rich's divide_line: where the lines break."""
    breaks, offset = [], 0
    for match in _WORD.finditer(text):
        start, word = match.start(), match.group()
        length = len(word.rstrip())
        if width - offset >= length:
            offset += len(word)
        elif length > width and fold:  # in pieces of the line's width
            chunks = [word[i:i + width] for i in range(0, len(word), width)]
            for chunk in chunks:
                if start:
                    breaks.append(start)
                start += len(chunk)
            offset = len(chunks[-1])
        elif length > width:  # alone on its line, to be cut
            if start:
                breaks.append(start)
            offset = len(word)
        elif offset and start:
            breaks.append(start)
            offset = len(word)
    return breaks


Segment = tuple[str, Style]


def segments(lines: list[RichText]) -> list[list[Segment]]:
    """Each line's segments as Text("\\n").join(lines).render() cuts them: a piece at every
    span boundary, styled by the base style and the spans over it, in their order."""
    out = []
    for line in lines:
        spans = ([(0, len(line.plain), line.style)] if line.style != NULL else []) + line.spans
        if not spans:
            out.append([(line.plain, NULL)])
            continue
        cuts = sorted({0, len(line.plain), *(s for s, _, _ in spans), *(e for _, e, _ in spans)})
        out.append([(line.plain[a:b], combine(*(st for s, e, st in spans if s <= a and b <= e)))
                    for a, b in pairwise(cuts) if b > a])
    return out
