"""`kvmpmu lint`: as linters are used in CI and editors: many files and folders, rules
selected and silenced, the repository's defaults, and text, JSON, GitHub or SARIF output."""

from __future__ import annotations

import os
from typing import Any

import click

from kvmpmu.cli.completion import complete_codes, complete_path
from kvmpmu.cli.defaults import current_config, default
from kvmpmu.cli.exitcodes import Outcome, UsageError
from kvmpmu.cli.options import (
    Command,
    events_db_option,
    json_option,
    kernel_option,
    max_bytes_option,
)
from kvmpmu.cli.output import emit_json, emit_text, note
from kvmpmu.cli.sources import (
    cpu_option,
    exclude,
    filter_option,
    host_choice,
    kernel_default,
    pmu_filter_option,
    policy_sources,
    skip_unrelated_option,
)
from kvmpmu.errors import KvmpmuError
from kvmpmu.spec.schema_defs import LINT_FORMATS


def _format(fmt: str | None, as_json: bool) -> str:
    if as_json and fmt not in (None, "json"):
        raise UsageError(f"--json and --format {fmt} ask for two outputs: give one")
    chosen: str = "json" if as_json else default(fmt, "format") or "text"
    return chosen


def _codes(option: str | None, key: str, fallback: tuple[str, ...]) -> tuple[str, ...]:
    from kvmpmu.policy.lint_select import parse_codes

    if option is not None:
        try:
            codes = parse_codes(option, f"--{key}")
        except KvmpmuError as err:  # a bad option value: a usage error, as click's are
            raise UsageError(f"--{key}: {err.message}", hint=err.hint) from None
        if not codes:
            raise UsageError(f"--{key} names no rule: give codes or prefixes such as KP007,KP01")
        return codes
    configured = current_config().get(key)
    if configured is None:
        return fallback
    return _configured_codes(configured, key)


def _configured_codes(texts: tuple[str, ...], key: str) -> tuple[str, ...]:
    """Codes the configuration gives; a bad one is an error at its key's line."""
    from kvmpmu.errors import SpecError
    from kvmpmu.policy.lint_select import parse_codes

    try:
        return tuple(c for text in texts for c in parse_codes(text, key))
    except SpecError as err:
        config = current_config()
        raise SpecError(err.message, loc=config.loc(key), path=f"tool.kvmpmu.{key}",
                        hint=err.hint) from None


def _rules(select: str | None, ignore: str | None) -> Any:
    from kvmpmu.policy.lint_select import ALL, RuleSelection

    per_file = current_config().get("per-file-ignores") or {}
    return RuleSelection(
        _codes(select, "select", (ALL,)), _codes(ignore, "ignore", ()),
        tuple((glob, _configured_codes(codes, "per-file-ignores"))
              for glob, codes in per_file.items()))


def _config_relative(path: str | None) -> str:
    """A file's path from the configuration's folder: what per-file-ignores globs match."""
    if path is None or path == "-":
        return path or ""
    return os.path.relpath(os.path.abspath(path), current_config().folder)


def _source_text(path: str | None, max_bytes: int) -> str | None:
    """The spec's text, for its noqa comments (none for a --pmu-filter string)."""
    from kvmpmu.spec.yamlio import read_text

    if path is None:
        return None
    try:
        return read_text(path, max_bytes)
    except KvmpmuError:
        return None


@click.command(cls=Command)
@click.argument("files", nargs=-1, metavar="[PATH]...", shell_complete=complete_path)
@filter_option
@pmu_filter_option
@click.option("--select", metavar="CODES", shell_complete=complete_codes,
              help="Only these rules: codes or prefixes, comma-separated (KP007,KP01).")
@click.option("--ignore", metavar="CODES", shell_complete=complete_codes,
              help="Not these rules: codes or prefixes (the longer match of --select and "
              "--ignore wins).")
@click.option("--strict/--no-strict", default=None,
              help="Exit 1 on warnings too, not only on errors.")
@click.option("--format", "fmt", type=click.Choice(LINT_FORMATS),
              help="text (default), json, github (workflow annotations) or sarif (2.1.0).")
@skip_unrelated_option
@kernel_option
@cpu_option
@events_db_option
@json_option
@max_bytes_option
def lint(files: tuple[str, ...], filter_path: str | None, pmu_filter: str | None,
         select: str | None, ignore: str | None, strict: bool | None, fmt: str | None,
         skip_unrelated: bool, kernel: str | None, cpu: str | None, events_db: str | None,
         as_json: bool, max_bytes: int) -> Outcome:
    """Find the filter API's traps in policies: file:line:col, a stable code, a fix.

    PATH is a spec, `-` (stdin) or a folder (its specs: *.yaml, *.yml, *.json, not
    workloads); without PATH, --filter or --pmu-filter, the current folder.
    `# kvmpmu: noqa` on a line silences its findings, `# kvmpmu: noqa: KP001` only those.
    Defaults come from [tool.kvmpmu] in pyproject.toml or .kvmpmu.toml.
    """
    from kvmpmu.cli.manyfiles import Tally
    from kvmpmu.policy.lint import lint as lint_spec
    from kvmpmu.policy.lint_select import select as select_findings
    from kvmpmu.spec.discover import expand
    from kvmpmu.spec.sources import load_policy

    chosen = _format(fmt, as_json)
    rules = _rules(select, ignore)
    failing = {"error", "warning"} if default(strict, "strict") else {"error"}
    host = host_choice(cpu, events_db, max_bytes)
    kernel = kernel_default(kernel)
    if not files and filter_path is None and pmu_filter is None:
        files = (".",)  # as linters do: the current folder
    paths = expand(files, "spec", max_bytes, exclude(), skip_unrelated=skip_unrelated)
    sources = policy_sources(paths, filter_path, pmu_filter)
    tally = Tally(len(sources))
    results: list[tuple[str, list[Any], KvmpmuError | None]] = []
    silenced = 0
    for source in sources:
        try:
            found = lint_spec(load_policy(source, host), kernel)
        except KvmpmuError as err:
            tally.failed(err)
            results.append((source.name, [], err))
            continue
        text = _source_text(source.path, max_bytes) if source.pmu_filter is None else None
        findings, quiet = select_findings(found, _config_relative(source.path), text, rules)
        silenced += quiet
        results.append((source.name, findings, None))
        tally.error_findings += sum(f.severity == "error" for f in findings)
        tally.warnings += sum(f.severity == "warning" for f in findings)
        tally.verdict_failed |= any(f.severity in failing for f in findings)
    _emit(chosen, results, tally, silenced)
    note(tally.line() + (f" ({silenced} silenced by noqa)" if silenced else ""))
    return tally.outcome()


def _emit(fmt: str, results: list[Any], tally: Any, silenced: int) -> None:
    from kvmpmu.render import lint_formats
    from kvmpmu.render.policy import finding_text, lint_json

    if fmt == "json":
        emit_json(lint_json(results, tally.ok(), {**tally.json(), "silenced": silenced}))
    elif fmt == "sarif":
        from kvmpmu.policy.lint import rules

        emit_json(lint_formats.sarif(results, rules()))
    elif fmt == "github":
        for line in lint_formats.github_lines(results):
            emit_text(line)
    else:
        for name, findings, error in results:
            for finding in findings:
                emit_text(finding_text(finding))
            if not findings and error is None:
                emit_text(f"{name}: no findings")
