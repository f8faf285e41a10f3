"""Everything a boot needs, from the cache or downloaded into it.

A cached run touches no network: kernels, runtime and wheels found in the cache are used as
they are. `refresh=True` re-reads the package lists and follows the meta packages again (a
kernel whose package version did not change is not downloaded again).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from realkvm.cache import cache_lock
from realkvm.debian import BOOKWORM, AptState, Distribution, system_mirrors
from realkvm.initramfs import build_base
from realkvm.kernels import PROFILES, KernelImage, cached_kernel, fetch_kernel
from realkvm.pyc import require_guest_python
from realkvm.runtime import cached_runtime, stage_runtime
from realkvm.wheels import runtime_requirements, stage_site

CHECKOUT = Path(__file__).resolve().parent.parent
RUNTIME_DISTRIBUTION = BOOKWORM  # Python 3.11, as on the host


@dataclass(frozen=True)
class Assets:
    """The kernels by profile and the cached base archive of the initramfs."""

    kernels: dict[str, KernelImage]
    base: Path
    runtime: dict[str, Any]
    site: dict[str, Any]


def fetch(
    profiles: list[str],
    root: Path,
    refresh: bool = False,
    progress: Callable[[str], None] = lambda _: None,
) -> Assets:
    """The kernels of `profiles` and the base archive, fetching only what the cache lacks."""
    require_guest_python()
    requirements = runtime_requirements(CHECKOUT / "pyproject.toml")
    with cache_lock(root):
        started = time.monotonic()
        kernels = {} if refresh else _cached_kernels(profiles, root)
        missing = [PROFILES[name] for name in profiles if name not in kernels]
        runtime = cached_runtime(root / "runtime")
        distributions = {d.name: d for p in missing for d in p.distributions}
        if runtime is None:
            distributions[RUNTIME_DISTRIBUTION.name] = RUNTIME_DISTRIBUTION
        states = _updated_states(root, list(distributions.values()), progress)
        with ThreadPoolExecutor() as pool:
            kernel_jobs = {
                p.name: pool.submit(fetch_kernel, p, states, root / "kernels" / p.name)
                for p in missing
            }
            runtime_job = None
            if runtime is None:
                state = states[RUNTIME_DISTRIBUTION.name]
                runtime_job = pool.submit(stage_runtime, state, root / "runtime")
            site_job = pool.submit(stage_site, requirements, root / "wheels")
            for name, job in kernel_jobs.items():
                kernels[name] = job.result()
                progress(f"kernel {name}: {kernels[name].package} {kernels[name].package_version}")
            runtime = runtime_job.result() if runtime_job else runtime
            site = site_job.result()
        assert runtime is not None
        base = build_base(
            root,
            root / "runtime" / "tree",
            root / "wheels" / "site",
            {"runtime": runtime, "site": site},
        )
        if missing or refresh:
            progress(f"fetched in {time.monotonic() - started:.1f} s")
    return Assets({name: kernels[name] for name in profiles}, base, runtime, site)


def _cached_kernels(profiles: list[str], root: Path) -> dict[str, KernelImage]:
    found = {}
    for name in profiles:
        image = cached_kernel(root / "kernels" / name)
        if image is not None:
            found[name] = image
    return found


def _updated_states(
    root: Path, distributions: list[Distribution], progress: Callable[[str], None]
) -> dict[str, AptState]:
    if not distributions:
        return {}
    mirrors = system_mirrors()
    states = {d.name: AptState(root / "apt" / d.name, d, mirrors) for d in distributions}
    progress(f"apt-get update: {', '.join(states)}")
    with ThreadPoolExecutor() as pool:
        for done in [pool.submit(state.update) for state in states.values()]:
            done.result()
    return states
