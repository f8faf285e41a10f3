"""The one exception boundary: a command's outcome or error becomes a message on stderr, in
--json mode a JSON error document on stdout, and an exit code (`exitcodes.py` decides which)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import click

from kvmpmu.cli import output
from kvmpmu.cli.exitcodes import ExitCode, Outcome, UsageError, error_code, outcome_code
from kvmpmu.errors import KvmpmuError


class InternalError(KvmpmuError):
    """A bug in kvmpmu: an exception nothing else caught. Exit code 70."""

    kind = "internal"


class Interrupted(KvmpmuError):
    """Ctrl-C. Exit code 130."""

    kind = "interrupted"


def _json_wanted(args: Sequence[str]) -> bool:
    """--json as the command saw it, or (for a command line click refused) as written."""
    if output.MODE.json is not None:
        return output.MODE.json
    words = list(args)
    return "--json" in (words[:words.index("--")] if "--" in words else words)


def _fail(err: KvmpmuError, code: ExitCode, args: Sequence[str]) -> int:
    if _json_wanted(args):
        from kvmpmu.render.jsonout import SCHEMA, error_json

        output.emit_json({"schema": SCHEMA, "ok": False, "error": error_json(err)})
    output.report_error(err)
    return int(code)


def _usage(exc: click.ClickException, args: Sequence[str]) -> int:
    if not _json_wanted(args):
        exc.show()
        return int(ExitCode.USAGE)
    ctx = getattr(exc, "ctx", None)
    hint = f"see '{ctx.command_path} --help'" if ctx is not None else None
    return _fail(UsageError(exc.format_message(), hint=hint), ExitCode.USAGE, args)


def _result_code(rv: Any) -> int:
    if isinstance(rv, Outcome):
        return int(outcome_code(rv))
    return int(rv or 0)  # --help and --version end with click's own exit code


def run_main(group: click.Group, args: Sequence[str]) -> int:
    """Run the command line `args`; return the exit code. Nothing escapes but the code."""
    output.MODE.json = None
    try:
        try:
            code = _result_code(group.main(list(args), prog_name="kvmpmu",
                                           standalone_mode=False))
        except click.ClickException as exc:
            code = _usage(exc, args)
        except (click.Abort, KeyboardInterrupt):
            code = _fail(Interrupted("interrupted"), ExitCode.INTERRUPTED, args)
        except KvmpmuError as err:
            code = _fail(err, error_code(err), args)
        except (output.StdoutClosed, output.StdoutFailed):
            raise
        except Exception as exc:
            if os.environ.get("KVMPMU_DEBUG"):
                import traceback

                traceback.print_exc()
            bug = InternalError(f"internal error: {type(exc).__name__}: {exc} "
                                "(set KVMPMU_DEBUG=1 for details)")
            code = _fail(bug, ExitCode.INTERNAL, args)
        output.flush_stdout()
    except output.StdoutClosed:
        output.silence_stdout()
        return int(ExitCode.STDOUT_CLOSED)
    except output.StdoutFailed as failed:
        output.silence_stdout()
        output.report_error(failed.error)
        return int(ExitCode.OUTPUT_FAILED)
    return code
