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

# A guest that reports x0, x1 and x2: presets in the workload, the VMM's KVM_SET_ONE_REG winning
REGS_ASM = """        movz    x9, #0x0900, lsl #16
        str     x0, [x9]
        str     x1, [x9]
        str     x2, [x9]
        str     xzr, [x9, #8]
1:      b       1b
"""
REGS_SCENARIO = """guest: {binary: regs.bin, regs: {x1: 0x77, x2: 0x99}}
vmm:
  - vgic: create
  - create_vcpus: 1
  - vcpu_init: {vcpu: 0}
  - vgic: init
  - set_irq: {vcpu: 0, irq: 23}
  - pmu_init: {vcpu: 0}
  - set_one_reg: {vcpu: 0, reg: X0, value: 0x1234}
  - set_one_reg: {vcpu: 0, reg: X1, value: 0x5678}
  - run: {vcpu: 0, expect_exit: KVM_EXIT_MMIO}
"""
REGS_REPORTED = [0x1234, 0x5678, 0x99]


def regs_guest(folder: Path) -> Path:
    """REGS_SCENARIO and its guest binary (assembled here) in `folder`; the scenario's path."""
    from kvmpmu.vmm.emulated.assembler import assemble

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "regs.bin").write_bytes(assemble(REGS_ASM, 0x40080000))
    (folder / "regs.yaml").write_text(REGS_SCENARIO)
    return folder / "regs.yaml"

PAYLOADS: dict[str, list[str] | dict[str, list[str]]] = {
    "probe": [realkvm.PROBE],
    "policy": ["-m", "kvmpmu", "run", "--backend", "kvm", "--filter", POLICY, "--json"],
    "inside": {"argv": ["-m", "kvmpmu", *INSIDE_ARGS], "only": ONE_BOOT},
    "synthetic": {"argv": ["-m", "kvmpmu", "run", "--backend", "kvm", "--workload",
                           f"/{SYNTHETIC}", "--json"], "only": ONE_BOOT},
    "regs": {"argv": ["-m", "kvmpmu", "run", "--backend", "kvm", "--scenario",
                      "/regs/regs.yaml", "--json"], "only": ONE_BOOT},
    # last: the longest, so that a short payload's failure shows early in the console log
    "corpus": {"argv": ["-m", "kvmpmu", "conform", "--corpus", "--json"],
               "only": CORPUS_IDS},
}


def guest_files(scratch: Path) -> list[realkvm.GuestFile]:
    policy = scratch / "deny-cycles.yaml"
    policy.write_text(POLICY_TEXT)
    return [realkvm.GuestFile(policy, POLICY),
            realkvm.GuestFile(CHECKOUT / SHIPPED_SPEC, f"/{SHIPPED_SPEC}"),
            realkvm.GuestFile(CHECKOUT / SYNTHETIC, f"/{SYNTHETIC}"),
            realkvm.GuestFile(regs_guest(scratch / "regs").parent, "/regs")]


def payload(boot: realkvm.BootResult, name: str) -> realkvm.PayloadResult:
    """One payload of a boot, which must have completed and run it."""
    assert boot.outcome == "completed", boot.error
    assert boot.exit_status == 0, boot.stderr
    entry = PAYLOADS[name]
    argv = entry if isinstance(entry, list) else entry["argv"]
    (found,) = [p for p in boot.series() if p.argv == argv]
    return found

