"""`lint --format github|sarif`: GitHub workflow-command annotations, and SARIF 2.1.0 for code
scanning (the text and JSON forms are in `render/policy.py`)."""

from __future__ import annotations

from typing import Any, Protocol

from kvmpmu import __version__
from kvmpmu.errors import KvmpmuError, SourceLoc


class Finding(Protocol):
    """What these formats need of a lint finding (`kvmpmu.policy.lint.Finding`)."""

    code: str
    loc: SourceLoc | None
    message: str
    fix: str

    @property
    def name(self) -> str: ...

    @property
    def severity(self) -> str: ...


Rule = tuple[str, str, str, str]  # code, name, severity, one-line summary

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"error": "error", "warning": "warning", "note": "notice"}  # GitHub's commands

Result = tuple[str, list[Any], KvmpmuError | None]  # file, findings, its error


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _command(level: str, loc: SourceLoc | None, title: str, message: str) -> str:
    props = []
    if loc is not None:
        props.append(f"file={_escape_property(loc.file)}")
        if loc.line:
            props += [f"line={loc.line}", f"col={loc.col}"]
    props.append(f"title={_escape_property(title)}")
    return f"::{level} {','.join(props)}::{_escape_data(message)}"


def github_lines(results: list[Result]) -> list[str]:
    """One workflow command per finding, and per error of a file that could not be read."""
    lines = []
    for _, findings, error in results:
        f: Finding
        for f in findings:
            lines.append(_command(_LEVEL[f.severity], f.loc, f.code,
                                  f"{f.name}: {f.message} (fix: {f.fix})"))
        for err in error.all() if error is not None else ():
            lines.append(_command("error", err.loc, f"kvmpmu {err.kind} error",
                                  (f"{err.path}: " if err.path else "") + err.message))
    return lines


def _region(loc: SourceLoc) -> dict[str, Any]:
    region: dict[str, Any] = {}
    if loc.line:
        region = {"startLine": loc.line, "startColumn": loc.col}
    return {"physicalLocation": {"artifactLocation": {"uri": loc.file},
                                 **({"region": region} if region else {})}}


def _rules(rules: list[Rule]) -> list[dict[str, Any]]:
    return [{"id": code, "name": name, "shortDescription": {"text": summary},
             "defaultConfiguration": {"level": severity}}
            for code, name, severity, summary in rules]


def sarif(results: list[Result], rules: list[Rule]) -> dict[str, Any]:
    """One SARIF 2.1.0 log: one run, every rule's metadata, the findings as results, and the
    files that could not be read as tool execution notifications."""
    index = {rule[0]: i for i, rule in enumerate(rules)}
    found = [{"ruleId": f.code, "ruleIndex": index[f.code], "level": f.severity,
              "message": {"text": f"{f.message} (fix: {f.fix})"},
              "locations": [_region(f.loc)] if f.loc else []}
             for _, findings, _ in results for f in findings]
    failures = [{"level": "error", "message": {"text": err.message},
                 "locations": [_region(err.loc)] if err.loc else []}
                for _, _, error in results if error is not None for err in error.all()]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "kvmpmu", "version": __version__,
                                "semanticVersion": __version__, "rules": _rules(rules)}},
            "invocations": [{"executionSuccessful": not failures,
                             "toolExecutionNotifications": failures}],
            "results": found,
        }],
    }
