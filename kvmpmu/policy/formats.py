"""The formats `kvmpmu compile` writes (kept apart so that the command line can name them
without loading the exporters)."""

from __future__ import annotations

from typing import Literal

ExportFormat = Literal["yaml", "kvmtool", "c", "bin", "json"]
FORMATS: tuple[ExportFormat, ...] = ("yaml", "kvmtool", "c", "bin", "json")
