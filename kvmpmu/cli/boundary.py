"""The one exception boundary: errors become a message, a JSON error document and an exit code."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import click

from kvmpmu.cli.exitcodes import ExitCode
from kvmpmu.cli.output import emit_json, note
from kvmpmu.errors import KvmpmuError, KvmUnavailable, RejectedError, SpecError

F = TypeVar("F", bound=Callable[..., Any])


def _fail(kind: str, err: KvmpmuError | None, message: str, code: ExitCode,
          as_json: bool) -> None:
    if as_json:
        from kvmpmu.render.jsonout import SCHEMA, error_json

        loc = err.loc if err else None
        path = err.path if err else None
        emit_json({"schema": SCHEMA, "ok": False,
                   "error": error_json(kind, err.message if err else message, loc, path)})
    note(message)
    sys.exit(int(code))


def boundary(func: F) -> F:
    """Run a command; map its errors to the exit-code table."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            return func(*args, **kwargs)
        except SpecError as err:
            _fail("spec", err, err.render(), ExitCode.INVALID_INPUT, as_json)
        except KvmUnavailable as err:
            _fail("unavailable", err, err.render(), ExitCode.UNAVAILABLE, as_json)
        except RejectedError as err:
            _fail("kvm", err, err.render(), ExitCode.KVM_CALL_FAILED, as_json)
        except KvmpmuError as err:
            _fail("error", err, err.render(), ExitCode.INVALID_INPUT, as_json)
        except KeyboardInterrupt:
            _fail("interrupted", None, "interrupted", ExitCode.INTERRUPTED, as_json)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            if os.environ.get("KVMPMU_DEBUG"):
                traceback.print_exc()
            _fail("internal", None,
                  f"internal error: {type(exc).__name__}: {exc} (set KVMPMU_DEBUG=1 for details)",
                  ExitCode.INTERNAL, as_json)
        return None

    return wrapper  # type: ignore[return-value]
