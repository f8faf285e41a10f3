"""Debian's archive seen through a private apt state: arm64 package lists and downloads.

The machine's own dpkg/apt state and configuration are never changed: every apt call gets its
own lists, cache, empty dpkg status, sources file and arm64 as its only architecture. The
archive addresses come from the machine's own sources (the suites differ, the mirrors do not).
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from realkvm.commands import run_tool
from realkvm.errors import RealKvmError

ARCHIVE_ENV = "KVMPMU_REALKVM_DEBIAN_MIRROR"
SECURITY_ENV = "KVMPMU_REALKVM_SECURITY_MIRROR"
SYSTEM_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))


@dataclass(frozen=True)
class Suite:
    """One suite of one archive: `archive` is "debian" or "debian-security"."""

    archive: str
    name: str


@dataclass(frozen=True)
class Distribution:
    """The suites one private apt state lists together (a release and its updates)."""

    name: str
    suites: tuple[Suite, ...]


def _release(codename: str) -> Distribution:
    return Distribution(
        codename,
        (
            Suite("debian", codename),
            Suite("debian", f"{codename}-updates"),
            Suite("debian-security", f"{codename}-security"),
        ),
    )


BULLSEYE = _release("bullseye")
BOOKWORM = _release("bookworm")
TRIXIE_BACKPORTS = Distribution("trixie-backports", (Suite("debian", "trixie-backports"),))
SID = Distribution("sid", (Suite("debian", "sid"),))


@dataclass(frozen=True)
class Mirrors:
    """Base URIs of the two archives and the keyring that signs them."""

    debian: str
    security: str
    signed_by: str | None


ONE_LINE = re.compile(r"deb\s+(\[(?P<opts>[^\]]*)\]\s+)?(?P<uri>\S+)\s+(?P<suite>\S+)")


@dataclass(frozen=True)
class SourceEntry:
    uri: str
    suites: tuple[str, ...]
    signed_by: str | None


def parse_sources(text: str) -> list[SourceEntry]:
    """`deb` entries of a one-line `.list` file or a deb822 `.sources` file."""
    entries: list[SourceEntry] = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            line = line.split("#", 1)[0].rstrip()
            if not line.strip():
                continue
            one_line = ONE_LINE.match(line)
            if one_line:
                opts = dict(o.split("=", 1) for o in (one_line["opts"] or "").split() if "=" in o)
                entries.append(
                    SourceEntry(one_line["uri"], (one_line["suite"],), opts.get("signed-by"))
                )
            elif ":" in line and not line[0].isspace():
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.strip()
        if "deb" in fields.get("types", "").split() and fields.get("uris"):
            entries.append(
                SourceEntry(
                    fields["uris"].split()[0],
                    tuple(fields.get("suites", "").split()),
                    fields.get("signed-by"),
                )
            )
    return entries


def mirrors_from(entries: list[SourceEntry], codename: str) -> Mirrors:
    """The archive listing `codename` and the one listing `codename-security`."""
    debian = next((e for e in entries if codename in e.suites), None)
    security = next((e for e in entries if f"{codename}-security" in e.suites), None)
    debian_uri = os.environ.get(ARCHIVE_ENV) or (debian.uri if debian else None)
    security_uri = os.environ.get(SECURITY_ENV) or (security.uri if security else None)
    if not debian_uri or not security_uri:
        raise RealKvmError(
            f"cannot find Debian's archive for '{codename}' and '{codename}-security' in the "
            f"machine's apt sources; set {ARCHIVE_ENV} and {SECURITY_ENV}"
        )
    # a keyring file; an inline key block cannot go on a one-line entry (apt's keyrings then)
    signed_by = debian.signed_by if debian and (debian.signed_by or "").startswith("/") else None
    return Mirrors(debian_uri.rstrip("/"), security_uri.rstrip("/"), signed_by)


def system_mirrors() -> Mirrors:
    """Mirrors configured on this machine for its own Debian release."""
    texts = []
    for path in SYSTEM_SOURCES:
        if path.is_dir():
            files = sorted(path.glob("*.list")) + sorted(path.glob("*.sources"))
        else:
            files = [path]
        texts += [f.read_text(encoding="utf-8", errors="replace") for f in files if f.is_file()]
    return mirrors_from(parse_sources("\n\n".join(texts)), _codename())


def _codename() -> str:
    try:
        release = Path("/etc/os-release").read_text(encoding="utf-8")
    except OSError:
        release = ""
    found = re.search(r"^VERSION_CODENAME=\"?(\w+)", release, re.MULTILINE)
    return found.group(1) if found else "bookworm"


def parse_stanza(text: str) -> dict[str, str]:
    """The fields of one control stanza (`apt-cache show` output), continuation lines joined."""
    fields: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        if line[0].isspace() and key:
            fields[key] += "\n" + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            fields[key] = value.strip()
    return fields


def depends_names(depends: str) -> list[str]:
    """Package names of a Depends field, first choice of each alternative, versions dropped."""
    return [item.split("|")[0].split("(")[0].strip() for item in depends.split(",") if item.strip()]


def version_newer(left: str, right: str) -> bool:
    """Debian version order, as dpkg decides it."""
    done = subprocess.run(["dpkg", "--compare-versions", left, "gt", right], check=False)
    return done.returncode == 0


def newest_first(versions: list[str]) -> list[str]:
    def order(left: str, right: str) -> int:
        return -1 if version_newer(left, right) else 1 if version_newer(right, left) else 0

    return sorted(versions, key=functools.cmp_to_key(order))


class AptState:
    """A private apt state for one distribution, kept under `folder`."""

    def __init__(self, folder: Path, distribution: Distribution, mirrors: Mirrors) -> None:
        self.folder = folder
        self.distribution = distribution
        self.mirrors = mirrors
        self._updated = False
        self._lock = threading.Lock()

    def options(self) -> list[str]:
        """The `-o` options that keep apt off the machine's own state and configuration."""
        f = self.folder
        settings = [
            f"Dir::State={f / 'state'}",
            f"Dir::State::Lists={f / 'lists'}",
            f"Dir::State::status={f / 'status'}",
            f"Dir::Cache={f / 'cache'}",
            f"Dir::Etc::SourceList={f / 'sources.list'}",
            f"Dir::Etc::SourceParts={f / 'sources.list.d'}",
            f"Dir::Etc::Preferences={f / 'preferences'}",
            f"Dir::Etc::PreferencesParts={f / 'preferences.d'}",
            "APT::Architecture=arm64",
            "APT::Architectures::=arm64",
            "Acquire::Languages=none",
            "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false",
            "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false",
            "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false",
            "Acquire::IndexTargets::deb::CNF::DefaultEnabled=false",
            "APT::Sandbox::User=root",
        ]
        return [arg for setting in settings for arg in ("-o", setting)]

    def sources_list(self) -> str:
        """One `deb` line per suite of the distribution."""
        signed = f"[signed-by={self.mirrors.signed_by}] " if self.mirrors.signed_by else ""
        lines = []
        for suite in self.distribution.suites:
            security = suite.archive == "debian-security"
            uri = self.mirrors.security if security else self.mirrors.debian
            lines.append(f"deb {signed}{uri} {suite.name} main")
        return "\n".join(lines) + "\n"

    def has_lists(self) -> bool:
        return any((self.folder / "lists").glob("*_Packages*"))

    def update(self) -> None:
        """`apt-get update` once per process (cheap when the lists are current)."""
        with self._lock:
            if self._updated:
                return
            for sub in (
                "state",
                "lists/partial",
                "cache/archives/partial",
                "sources.list.d",
                "preferences.d",
            ):
                (self.folder / sub).mkdir(parents=True, exist_ok=True)
            (self.folder / "status").touch()
            (self.folder / "sources.list").write_text(self.sources_list(), encoding="utf-8")
            run_tool(["apt-get", *self.options(), "-q", "update"])
            self._updated = True

    def candidate(self, package: str) -> str | None:
        """The version `apt-get download PACKAGE` would fetch, or None if no suite has it."""
        policy = run_tool(["apt-cache", *self.options(), "policy", package])
        found = re.search(r"^\s*Candidate:\s*(\S+)", policy, re.MULTILINE)
        return found.group(1) if found and found.group(1) != "(none)" else None

    def versions(self, package: str) -> list[str]:
        """Every version of the package in the lists, newest first."""
        table = run_tool(["apt-cache", *self.options(), "madison", package])
        found = [row.split("|")[1].strip() for row in table.splitlines() if row.count("|") >= 2]
        return newest_first(list(dict.fromkeys(found)))

    def show(self, package: str, version: str) -> dict[str, str]:
        """The control fields of one version of a package."""
        shown = run_tool(["apt-cache", *self.options(), "show", f"{package}={version}"])
        return parse_stanza(shown)

    def download(self, packages: list[str], folder: Path) -> dict[str, Path]:
        """Download the candidate (or `name=version`) .debs into `folder`: package name -> file."""
        folder.mkdir(parents=True, exist_ok=True)
        run_tool(["apt-get", *self.options(), "-q", "download", *packages], cwd=folder)
        found = {}
        for deb in folder.glob("*.deb"):
            name, version, _arch = deb.name[: -len(".deb")].split("_")
            found[name] = deb
        wanted = [p.split("=")[0] for p in packages]
        missing = [p for p in wanted if p not in found]
        if missing:
            raise RealKvmError(f"apt-get download gave no .deb for {', '.join(missing)}")
        return {name: found[name] for name in wanted}


def deb_version(deb: Path) -> str:
    """The package version in a downloaded .deb's file name (the epoch's ':' is %3a there)."""
    return urllib.parse.unquote(deb.name.split("_")[1])
