"""Debian's arm64 kernels, found through their meta packages; only each vmlinuz is kept.

A profile names the kernel series kvmpmu models (`--kernel` there). Its image is whatever the
meta package depends on today, so the package version and `uname -r` go with every result.
"""

from __future__ import annotations

import re
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from realkvm.cache import read_record, write_record
from realkvm.debian import (
    BOOKWORM,
    BULLSEYE,
    SID,
    TRIXIE_BACKPORTS,
    AptState,
    Distribution,
    depends_names,
    newest_first,
)
from realkvm.errors import RealKvmError

# Up to 6.18 the image package holds ./boot/vmlinuz-*; from 6.19 it depends on linux-binary-*,
# which holds usr/lib/modules/<release>/vmlinuz.
BOOT_VMLINUZ = re.compile(r"\./boot/vmlinuz-.+")
MODULES_VMLINUZ = re.compile(r"\./usr/lib/modules/[^/]+/vmlinuz")


@dataclass(frozen=True)
class KernelProfile:
    """A kernel series: where Debian has it and which meta package follows it."""

    name: str
    distributions: tuple[Distribution, ...]
    meta: str


PROFILES = {
    p.name: p
    for p in (
        KernelProfile("5.10", (BULLSEYE,), "linux-image-arm64"),
        KernelProfile("6.1", (BOOKWORM,), "linux-image-arm64"),
        KernelProfile("6.12", (BOOKWORM,), "linux-image-6.12-arm64"),
        # the newest of the two (backports is pinned low, so each has its own apt state)
        KernelProfile("latest", (TRIXIE_BACKPORTS, SID), "linux-image-arm64"),
    )
}


@dataclass(frozen=True)
class KernelImage:
    """A fetched kernel: the package it came from and its vmlinuz in the cache."""

    profile: str
    package: str
    package_version: str
    distribution: str
    vmlinuz: Path
    fetched: str
    skipped: tuple[str, ...] = ()

    def record(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "package": self.package,
            "package_version": self.package_version,
            "distribution": self.distribution,
            "vmlinuz": self.vmlinuz.name,
            "fetched": self.fetched,
            "skipped": list(self.skipped),
        }


def cached_kernel(folder: Path) -> KernelImage | None:
    """The kernel a previous run left in `folder`, if complete."""
    record = read_record(folder / "kernel.json")
    if record is None or not (folder / str(record.get("vmlinuz"))).is_file():
        return None
    try:
        return KernelImage(
            record["profile"],
            record["package"],
            record["package_version"],
            record["distribution"],
            folder / record["vmlinuz"],
            record["fetched"],
            tuple(record.get("skipped", ())),
        )
    except KeyError:  # written by another version of the harness: fetch again
        return None


def meta_versions(
    profile: KernelProfile, states: dict[str, AptState]
) -> list[tuple[AptState, str]]:
    """Every version of the meta package in the profile's distributions, newest first."""
    found = {
        version: states[d.name] for d in profile.distributions
        for version in states[d.name].versions(profile.meta)
    }  # fmt: skip
    return [(found[version], version) for version in newest_first(list(found))]


def fetch_kernel(profile: KernelProfile, states: dict[str, AptState], folder: Path) -> KernelImage:
    """Follow the meta package to today's image; download and extract it unless cached.

    A version whose .deb the archive no longer serves (listed, but 404) is skipped for the
    next older one, and the skip is recorded with the kernel.
    """
    skipped: list[str] = []
    for state, version in meta_versions(profile, states):
        package = _image_package(state.show(profile.meta, version), profile)
        cached = cached_kernel(folder)
        if cached and (cached.package, cached.package_version) == (package, version):
            return cached
        try:
            return _download(profile, state, package, version, folder, tuple(skipped))
        except RealKvmError as error:
            skipped.append(f"{package} {version}: {str(error).splitlines()[-1]}")
    raise RealKvmError(f"kernel {profile.name}: no {profile.meta} downloadable: {skipped}")


def _download(
    profile: KernelProfile,
    state: AptState,
    package: str,
    version: str,
    folder: Path,
    skipped: tuple[str, ...],
) -> KernelImage:
    folder.mkdir(parents=True, exist_ok=True)
    vmlinuz = folder / "vmlinuz.partial"
    with tempfile.TemporaryDirectory(prefix="realkvm-deb-") as scratch:
        deb = state.download([f"{package}={version}"], Path(scratch))[package]
        if not extract_member(deb, BOOT_VMLINUZ, vmlinuz):
            binary = _binary_package(state.show(package, version), package)
            deb = state.download([f"{binary}={version}"], Path(scratch))[binary]
            if not extract_member(deb, MODULES_VMLINUZ, vmlinuz):
                raise RealKvmError(f"kernel {profile.name}: {binary} holds no vmlinuz")
    image = KernelImage(
        profile.name,
        package,
        version,
        state.distribution.name,
        folder / f"vmlinuz-{version}",
        datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        skipped,
    )
    vmlinuz.replace(image.vmlinuz)
    for old in folder.glob("vmlinuz-*"):
        if old != image.vmlinuz:
            old.unlink()
    write_record(folder / "kernel.json", image.record())
    return image


def _image_package(meta: dict[str, str], profile: KernelProfile) -> str:
    for name in depends_names(meta.get("Depends", "")):
        if name.startswith("linux-image-") and name != profile.meta:
            return name
    raise RealKvmError(f"kernel {profile.name}: {profile.meta} depends on no linux-image-*")


def _binary_package(image: dict[str, str], package: str) -> str:
    for name in depends_names(image.get("Depends", "")):
        if name.startswith("linux-binary-"):
            return name
    raise RealKvmError(f"{package} has no ./boot/vmlinuz-* and depends on no linux-binary-*")


def extract_member(deb: Path, pattern: re.Pattern[str], dest: Path) -> bool:
    """Copy the first regular file of the .deb's data whose name matches; stop reading there."""
    reader = subprocess.Popen(
        ["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert reader.stdout is not None
    found = False
    try:
        with tarfile.open(fileobj=reader.stdout, mode="r|") as archive:
            for member in archive:
                if member.isfile() and pattern.fullmatch(member.name):
                    source = archive.extractfile(member)
                    assert source is not None
                    with open(dest, "wb") as out:
                        while chunk := source.read(1 << 20):
                            out.write(chunk)
                    found = True
                    break
    except tarfile.TarError as error:
        raise RealKvmError(f"cannot read {deb.name}: {error}") from None
    finally:
        reader.stdout.close()
        if reader.poll() is None:
            reader.kill()  # the rest of the archive (modules) is not needed
        reader.wait()
    return found
