"""What every real-kernel boot runs (tests/conftest.py: real_boots), one after the other."""

from pathlib import Path

import realkvm

CHECKOUT = Path(__file__).resolve().parent.parent
PAIRS = [(k, c) for k in realkvm.PROFILES for c in realkvm.CONFIGS]
IDS = [f"{k}-{c}" for k, c in PAIRS]

SHIPPED_SPEC = "configs/deny-shared-cache.yaml"
POLICY = "/deny-cycles.yaml"  # CPU_CYCLES (which QEMU's PMU implements) and an L3 event
POLICY_TEXT = "filters:\n  - deny: [CPU_CYCLES, L3D_CACHE_REFILL]\n"
INSIDE_ARGS = ["show-pmceid", "--filter", SHIPPED_SPEC, "--json"]

ARGVS = {
    "probe": [realkvm.PROBE],
    "corpus": ["-m", "kvmpmu", "conform", "--corpus", "--json"],
    "policy": ["-m", "kvmpmu", "run", "--backend", "kvm", "--filter", POLICY, "--json"],
    "inside": ["-m", "kvmpmu", *INSIDE_ARGS],
}
INDEX = {name: i for i, name in enumerate(ARGVS)}


def guest_files(scratch: Path) -> list[realkvm.GuestFile]:
    policy = scratch / "deny-cycles.yaml"
    policy.write_text(POLICY_TEXT)
    return [realkvm.GuestFile(policy, POLICY),
            realkvm.GuestFile(CHECKOUT / SHIPPED_SPEC, f"/{SHIPPED_SPEC}")]


def payload(boot: realkvm.BootResult, name: str) -> realkvm.PayloadResult:
    """One payload of a boot, which must have completed."""
    assert boot.outcome == "completed", boot.error
    assert boot.exit_status == 0, boot.stderr
    return boot.series()[INDEX[name]]
