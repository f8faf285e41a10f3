"""The project's runtime dependencies: aarch64/cp311 wheels from PyPI, unpacked onto a folder."""

from __future__ import annotations

import shutil
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path
from typing import Any

from realkvm.cache import read_record, write_record
from realkvm.commands import run_tool
from realkvm.pyc import byte_compile

GUEST_SITE = "/opt/realkvm/site"
# What the guest's interpreter accepts: CPython 3.11 on glibc aarch64.
TARGET = (
    "--only-binary=:all:",
    "--platform",
    "manylinux2014_aarch64",
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
    "--abi",
    "cp311",
)


def runtime_requirements(pyproject: Path) -> list[str]:
    """`[project] dependencies` of pyproject.toml: optional extras are not needed inside."""
    with open(pyproject, "rb") as handle:
        project = tomllib.load(handle)["project"]
    return list(project.get("dependencies", []))


def pip_download_command(requirements: list[str], folder: Path) -> list[str]:
    return [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        *TARGET, "--dest", str(folder), *requirements,
    ]  # fmt: skip


def cached_site(folder: Path, requirements: list[str]) -> dict[str, Any] | None:
    record = read_record(folder / "site.json")
    if record and record.get("requirements") == requirements and (folder / "site").is_dir():
        return record
    return None


def stage_site(requirements: list[str], folder: Path) -> dict[str, Any]:
    """Download the wheels (with their dependencies), unzip and compile them unless cached."""
    cached = cached_site(folder, requirements)
    if cached is not None:
        return cached
    partial = folder / "site.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="realkvm-wheels-") as scratch:
        run_tool(pip_download_command(requirements, Path(scratch)))
        wheels = sorted(Path(scratch).glob("*.whl"))
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(partial)
    byte_compile(partial, GUEST_SITE)
    shutil.rmtree(folder / "site", ignore_errors=True)
    partial.replace(folder / "site")
    record = {"requirements": requirements, "wheels": [w.name for w in wheels]}
    write_record(folder / "site.json", record)
    return record
