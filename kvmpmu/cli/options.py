"""Options shared by the commands, and the command class that refuses a repeated option."""

from __future__ import annotations

import re
from typing import Any

import click

from kvmpmu.cli.output import remember_json
from kvmpmu.kvm.profiles import PROFILE_NAMES
from kvmpmu.spec.yamlio import DEFAULT_MAX_BYTES

_SIZE = r"\s*([0-9]+)\s*([KMG]?)(i?B)?\s*"  # compiled by `re` when a size is given
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


class ByteSize(click.ParamType):  # type: ignore[type-arg]
    """A byte count: 4096, 64K, 16M, 1G (binary units; KiB/MB spellings too)."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        match = re.fullmatch(_SIZE, str(value), re.IGNORECASE)
        if not match or int(match.group(1)) < 1:
            self.fail(f"{value!r} is not a size such as 4096, 64K, 16M or 1G", param, ctx)
        return int(match.group(1)) * _UNITS[match.group(2).upper()]


class Command(click.Command):
    """A click command on which an option that takes one value may be given only once (click
    would silently keep the last one)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        _, _, order = self.make_parser(ctx).parse_args(args=list(args))
        seen: set[str | None] = set()
        for param in order:
            if not isinstance(param, click.Option) or param.multiple or param.is_flag \
                    or param.count:
                continue
            if param.name in seen:
                raise click.UsageError(f"option {param.opts[-1]} given more than once", ctx)
            seen.add(param.name)
        return super().parse_args(ctx, args)


json_option = click.option("--json", "as_json", is_flag=True, callback=remember_json,
                           is_eager=True, help="Print one JSON document on stdout.")
kernel_option = click.option("--kernel", type=click.Choice(PROFILE_NAMES),
                             help="Kernel profile (overrides the spec's `kernel`).")
def _complete_file(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    from click.shell_completion import CompletionItem  # only while completing

    return [CompletionItem(incomplete, type="file")]


events_db_option = click.option(
    "--events-db", metavar="FILE", shell_complete=_complete_file,
    help="CPU events from a JSON file (Arm's pmu/*.json or Linux "
    "perf's pmu-events format, or a perf per-CPU folder): the host's events and names.")
max_bytes_option = click.option("--max-bytes", type=ByteSize(), default=DEFAULT_MAX_BYTES,
                                metavar="SIZE", help="Refuse input files larger than this: "
                                "4096, 64K, 16M, 1G.  [default: 16M]")
