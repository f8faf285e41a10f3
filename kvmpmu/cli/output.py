"""The single writer of command output: JSON documents, rich renderables and raw bytes on
stdout; errors, verdicts and warnings on stderr.

A write to stdout that fails raises StdoutClosed (the reader went away: exit 141, no message)
or StdoutFailed (a full disk, a closed file: exit 74); the boundary decides the rest."""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from kvmpmu.errors import KvmpmuError, OutputError

if TYPE_CHECKING:
    from kvmpmu.render.layout import Renderable

class _Mode:
    json: bool | None = None  # --json as the running command parsed it; None before that


MODE = _Mode()


class StdoutClosed(Exception):
    """The reader of stdout closed it (EPIPE)."""


class StdoutFailed(Exception):
    """Writing stdout failed for another reason (ENOSPC, EIO, EBADF)."""

    def __init__(self, error: OutputError) -> None:
        super().__init__(error.message)
        self.error = error


@contextmanager
def _stdout() -> Iterator[None]:
    try:
        yield
    except BrokenPipeError:
        raise StdoutClosed from None
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            raise StdoutClosed from None
        raise StdoutFailed(OutputError(f"cannot write standard output: "
                                       f"{exc.strerror or exc}")) from None
    except ValueError as exc:  # the stream was closed under us
        raise StdoutFailed(OutputError(f"cannot write standard output: {exc}")) from None


def remember_json(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    """The --json option's callback: errors after this point are JSON documents too."""
    MODE.json = bool(value)
    return value


def is_terminal() -> bool:
    return sys.stdout.isatty()


def _render(renderable: Renderable) -> str:
    """The text for stdout: a terminal gets rich's width and colours; anything else the plain
    text rich would print there (one unwrapped line per row); both made without rich unless
    rich could print them differently (markup, emoji codes, wide characters, cut words)."""
    from kvmpmu.render.plain import NotPlain, plain_text

    tty = is_terminal()
    ctx = click.get_current_context(silent=True)
    no_color = bool(ctx and ctx.find_root().params.get("no_color"))
    try:
        if not tty:
            return plain_text(renderable)
        from kvmpmu.render.ansi import terminal_text, terminal_width

        return terminal_text(renderable, terminal_width(), no_color)
    except NotPlain:
        pass
    from kvmpmu.render.terminal import render

    return render(renderable, tty, no_color)


def emit_bytes(data: bytes) -> None:
    """Every byte, or an error: a raw (PYTHONUNBUFFERED) stdout may take only part of a
    write, and the next write of the rest is the one that reports why."""
    with _stdout():
        sys.stdout.flush()
        out = sys.stdout.buffer
        view = memoryview(data)
        while view:
            written = out.write(view)
            view = view[len(view) if written is None else written:]
        out.flush()


def emit_text(text: str, nl: bool = True) -> None:
    emit_bytes((text + "\n" if nl else text).encode(sys.stdout.encoding or "utf-8", "replace"))


def emit_json(document: dict[str, Any]) -> None:
    """The document as json.dumps(indent=2) writes it, in pieces of about 64 KiB: a call
    log of 100,000 records is never held as one string."""
    import json  # not on the path of `kvmpmu --version`

    piece: list[str] = []
    size = 0
    for chunk in json.JSONEncoder(indent=2).iterencode(document):
        piece.append(chunk)
        size += len(chunk)
        if size >= 1 << 16:
            emit_text("".join(piece), nl=False)
            piece, size = [], 0
    emit_text("".join(piece))


def emit(renderable: Renderable) -> None:
    emit_text(_render(renderable), nl=False)


def flush_stdout() -> None:
    with _stdout():
        sys.stdout.flush()


def silence_stdout() -> None:
    """After stdout failed: point fd 1 at /dev/null so the interpreter's last flush of what is
    still buffered cannot fail again (and print Python's own complaint)."""
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError, AttributeError):
        return  # not a real file (tests capture stdout in memory)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, fd)
    os.close(null)


def note(message: str) -> None:
    """Human text for stderr: errors, failure verdicts, warnings, summaries."""
    try:
        click.echo(message, err=True)
    except (OSError, ValueError):
        pass  # nowhere left to say it


def report_error(err: KvmpmuError) -> None:
    note(err.render())
