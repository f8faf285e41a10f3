"""What every real-kernel boot runs (tests/conftest.py: real_boots), one after the other."""

from pathlib import Path

import realkvm

CHECKOUT = Path(__file__).resolve().parent.parent
PAIRS = [(k, c) for k in realkvm.PROFILES for c in realkvm.CONFIGS]
IDS = [f"{k}-{c}" for k, c in PAIRS]
# 5.10 predates kvm-arm.mode: its max-nvhe boot is the max-vhe machine again (the probe shows
# it runs VHE), so the corpus, the longest payload, runs in every other boot.
SAME_MACHINE = {("5.10", "max-nvhe")}
CORPUS_PAIRS = [pair for pair in PAIRS if pair not in SAME_MACHINE]
CORPUS_IDS = [f"{k}-{c}" for k, c in CORPUS_PAIRS]

SHIPPED_SPEC = "configs/deny-shared-cache.yaml"
POLICY = "/deny-cycles.yaml"  # CPU_CYCLES (which QEMU's PMU implements) and an L3 event,
# written for a Neoverse-N1 host: the real host differs, which the run says
POLICY_TEXT = "host: {cpu: neoverse-n1}\nfilters:\n  - deny: [CPU_CYCLES, L3D_CACHE_REFILL]\n"
INSIDE_ARGS = ["show-pmceid", "--filter", SHIPPED_SPEC, "--json"]
SYNTHETIC = "configs/workload-basic.yaml"  # its `execute` steps cannot run on a real CPU
ONE_BOOT = ["6.12-max-vhe"]  # what needs showing once, not per kernel

PAYLOADS: dict[str, list[str] | dict[str, list[str]]] = {
    "probe": [realkvm.PROBE],
    "corpus": {"argv": ["-m", "kvmpmu", "conform", "--corpus", "--json"],
               "only": CORPUS_IDS},
    "policy": ["-m", "kvmpmu", "run", "--backend", "kvm", "--filter", POLICY, "--json"],
    "inside": {"argv": ["-m", "kvmpmu", *INSIDE_ARGS], "only": ONE_BOOT},
    "synthetic": {"argv": ["-m", "kvmpmu", "run", "--backend", "kvm", "--workload",
                           f"/{SYNTHETIC}", "--json"], "only": ONE_BOOT},
}


def guest_files(scratch: Path) -> list[realkvm.GuestFile]:
    policy = scratch / "deny-cycles.yaml"
    policy.write_text(POLICY_TEXT)
    return [realkvm.GuestFile(policy, POLICY),
            realkvm.GuestFile(CHECKOUT / SHIPPED_SPEC, f"/{SHIPPED_SPEC}"),
            realkvm.GuestFile(CHECKOUT / SYNTHETIC, f"/{SYNTHETIC}")]


def payload(boot: realkvm.BootResult, name: str) -> realkvm.PayloadResult:
    """One payload of a boot, which must have completed and run it."""
    assert boot.outcome == "completed", boot.error
    assert boot.exit_status == 0, boot.stderr
    entry = PAYLOADS[name]
    argv = entry if isinstance(entry, list) else entry["argv"]
    (found,) = [p for p in boot.series() if p.argv == argv]
    return found

