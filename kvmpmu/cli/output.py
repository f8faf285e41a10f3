"""The single writer of command output: JSON documents or rich renderables."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click


def console(err: bool = False) -> Any:
    from rich.console import Console

    ctx = click.get_current_context(silent=True)
    no_color = bool(ctx and ctx.find_root().params.get("no_color"))
    stream = sys.stderr if err else sys.stdout
    width = None if stream.isatty() else int(os.environ.get("COLUMNS", "120"))
    return Console(file=stream, width=width, no_color=no_color or None,
                   highlight=False, soft_wrap=False)


def emit_json(document: dict[str, Any]) -> None:
    click.echo(json.dumps(document, indent=2))


def emit(renderable: Any) -> None:
    console().print(renderable)


def note(message: str) -> None:
    """Human text that must not mix with JSON on stdout."""
    click.echo(message, err=True)


def write_output(path: str, data: bytes) -> None:
    """Write `path` atomically: a temporary file beside it, then a rename. On any failure the
    old file (or none) stays and the temporary file is removed."""
    import tempfile

    from kvmpmu.errors import SpecError

    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".kvmpmu-", dir=folder)
    except OSError as exc:
        raise SpecError(f"cannot write {path}: {exc.strerror}", path="--output") from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        os.unlink(tmp)
        if isinstance(exc, OSError):
            raise SpecError(f"cannot write {path}: {exc.strerror}", path="--output") from None
        raise
