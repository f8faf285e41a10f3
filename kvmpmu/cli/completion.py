"""Shell completion: `kvmpmu completion bash|zsh|fish` prints click's script, and the options
whose values kvmpmu knows complete them: CPU models, event names, lint rule codes. (Choices
such as --kernel and --format complete by themselves.)"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from kvmpmu.cli.exitcodes import OK, Outcome
from kvmpmu.cli.options import Command
from kvmpmu.cli.output import emit_text

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_KVMPMU_COMPLETE"


def _item(value: str, **kwargs: Any) -> CompletionItem:
    from click.shell_completion import CompletionItem  # only while completing

    return CompletionItem(value, **kwargs)


def complete_cpu(ctx: click.Context, param: click.Parameter,
                 incomplete: str) -> list[CompletionItem]:
    from kvmpmu.arch.cpus import CPU_MODELS

    return [_item(name, help=model.display) for name, model in CPU_MODELS.items()
            if name.startswith(incomplete.lower())]


def event_names(cpu: str | None) -> list[str]:
    """The common events' names and, with a known CPU model, its own."""
    from kvmpmu.arch.catalog import Catalog
    from kvmpmu.arch.cpus import find_cpu

    model = find_cpu(cpu) if cpu else None
    catalog = Catalog("completion", model.impdef if model else None)
    return sorted({info.name for info in catalog.events.values() if info.name})


def complete_event(ctx: click.Context, param: click.Parameter,
                   incomplete: str) -> list[CompletionItem]:
    cpu = ctx.params.get("cpu")
    prefix = incomplete.upper()
    return [_item(name) for name in event_names(cpu if isinstance(cpu, str) else None)
            if name.startswith(prefix)]


def complete_path(ctx: click.Context, param: click.Parameter,
                  incomplete: str) -> list[CompletionItem]:
    """Files and folders: the shell completes the path itself."""
    return [_item(incomplete, type="file")]


def complete_file_then_events(ctx: click.Context, param: click.Parameter,
                              incomplete: str) -> list[CompletionItem]:
    """`explain [FILE] EVENT...`: a file first, unless --filter or --pmu-filter gave the
    policy; event names after it."""
    given = ctx.params.get(param.name or "") or ()
    if not given and ctx.params.get("filter_path") is None and \
            ctx.params.get("pmu_filter") is None:
        return [_item(incomplete, type="file")]
    return complete_event(ctx, param, incomplete)


def complete_codes(ctx: click.Context, param: click.Parameter,
                   incomplete: str) -> list[CompletionItem]:
    """Rule codes after the last comma of `KP001,KP0…`."""
    from kvmpmu.policy.lint import CODES

    head, _, last = incomplete.rpartition(",")
    lead = head + "," if head else ""
    return [_item(lead + code, help=name) for code, (name, _) in CODES.items()
            if code.startswith(last.upper())]


@click.command(cls=Command)
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> Outcome:
    """Print the shell completion script for bash, zsh or fish.

    \b
    bash:  kvmpmu completion bash > ~/.local/share/bash-completion/completions/kvmpmu
    zsh:   kvmpmu completion zsh > "${fpath[1]}/_kvmpmu"
    fish:  kvmpmu completion fish > ~/.config/fish/completions/kvmpmu.fish
    """
    from click.shell_completion import get_completion_class

    root = click.get_current_context().find_root().command
    script = get_completion_class(shell)(root, {}, "kvmpmu", COMPLETE_VAR)  # type: ignore[misc]
    emit_text(script.source())
    return OK
