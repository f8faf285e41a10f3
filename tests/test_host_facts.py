"""Host facts a VMM sees (issue: scenarios): perf types, PMCR_EL0's IMP and IDCODE, and the
host's ID_AA64DFR0_EL1, each set in the spec and read back through the calls a VMM makes.
Expected values come from the register layouts (Arm ARM: PMCR_EL0 IMP [31:24], IDCODE [23:16];
ID_AA64DFR0_EL1 BRPs [15:12], WRPs [23:20], PMUVer [11:8]) and semantics §5.1/§5.4."""

import json
from pathlib import Path

from kvmpmu.cli.exitcodes import ExitCode
from tests.clihelpers import run_cli

BIG_LITTLE = """host:
  pmcr: {{imp: 0x51, idcode: 7}}
  pmus:
    - {{name: big, cpus: "{big_cpus}", type: {big_type}}}
    - {{name: little, cpus: "{little_cpus}", pmcr: {{imp: 0x41, idcode: 3}}}}
"""
SCENARIO = """vmm:
  - vgic: create
  - create_vcpus: 1
  - vcpu_init: {vcpu: 0}
  - set_pmu: {vcpu: 0, type: 8, expect_errno: ENXIO}
  - set_pmu: {vcpu: 0, type: 12, expect_errno: null}
  - set_pmu: {vcpu: 0, type: 9, expect_errno: null}
  - get_one_reg: {vcpu: 0, reg: PMCR_EL0}
  - get_one_reg: {vcpu: 0, reg: ID_AA64DFR0_EL1}
"""


def run(tmp_path: Path, spec: str, scenario: str = SCENARIO, kernel: str = "6.1"):
    (tmp_path / "s.yaml").write_text(spec)
    (tmp_path / "w.yaml").write_text(scenario)
    result = run_cli("run", "--filter", str(tmp_path / "s.yaml"), "--scenario",
                     str(tmp_path / "w.yaml"), "--kernel", kernel, "--json")
    return result.exit_code, json.loads(result.stdout)


def reads(doc: dict) -> list[int]:
    return [int(c["value"], 16) for c in doc["ioctls"] if c["ioctl"] == "KVM_GET_ONE_REG"]


def spec(big_type: int = 12, big_cpus: str = "0-1", little_cpus: str = "2-3") -> str:
    return BIG_LITTLE.format(big_type=big_type, big_cpus=big_cpus, little_cpus=little_cpus)


def test_perf_types_and_pmcr_per_pmu(tmp_path):
    """big is type 12, little keeps the default of its place (9), and 8 is nobody's. Before
    6.7 KVM_ARM_VCPU_INIT resets PMCR_EL0 from the PMCR of the CPU making the call (the
    VMM's, CPU 0), and a later SET_PMU leaves it: little's own pmcr when CPU 0 is little's,
    the host-wide one when it is big's."""
    for (big, little), expected in ((("2-3", "0-1"), (0x41, 3)), (("0-1", "2-3"), (0x51, 7))):
        code, doc = run(tmp_path, spec(big_cpus=big, little_cpus=little))
        assert code == ExitCode.OK, doc["expectations"]
        pmcr = reads(doc)[0]
        assert (pmcr >> 24, pmcr >> 16 & 0xFF) == expected


def test_the_hosts_id_aa64dfr0_el1_reaches_the_guest_sanitised(tmp_path):
    """BRPs 5 and WRPs 3 pass through; PMUVer is the VM's (PMUv3p5 on the generic model,
    capped at 8.4 on 6.1: 5), whatever the host value says (here 1)."""
    code, doc = run(tmp_path, spec().replace("host:\n", "host:\n  id_aa64dfr0_el1: 0x305106\n"))
    assert code == ExitCode.OK, doc["error"]
    dfr0 = reads(doc)[1]
    assert (dfr0 >> 12 & 0xF, dfr0 >> 20 & 0xF, dfr0 >> 8 & 0xF) == (5, 3, 5)


def test_perf_types_are_unique(tmp_path):
    code, doc = run(tmp_path, spec(big_type=9))
    assert code == ExitCode.INVALID_INPUT
    assert doc["error"]["path"].endswith("type") and doc["error"]["position"]["line"] == 4
    assert "PMUs 'big' and 'little' both have perf type 9" in doc["error"]["message"]


def test_a_spec_host_the_real_host_does_not_match_is_said_field_by_field():
    """On the kvm backend the real host is used; what the spec's host: wrote and the real host
    lacks becomes a warning. The real host here: QEMU's `max` CPU as the model describes it."""
    from kvmpmu.vmm.hostcheck import host_differences
    from kvmpmu.vmm.hosts import build_host

    real = build_host(load_filter_spec_text("host: {cpu: qemu-max}\n").host)
    same = load_filter_spec_text("host: {cpu: qemu-max, counters: 6}\n")
    assert host_differences(same, real) == []
    generic = load_filter_spec_text("filters: []\n")
    assert host_differences(generic, real) == []  # no host: section, nothing to compare
    other = load_filter_spec_text("host:\n  cpu: neoverse-n1\n  counters: 4\n"
                                  "  pmcr: {imp: 0x41, idcode: 1}\n")
    warnings = host_differences(other, real)
    assert len(warnings) == 2 and all(w.startswith("s.yaml: warning: the spec's PMU "
                                                   "armv8_pmuv3_0's ") for w in warnings)
    assert "CPU is neoverse-n1, the real host's qemu-max" in warnings[0]
    assert "counters is 4, the real host's 6" in warnings[1]


def load_filter_spec_text(text: str):
    from kvmpmu.spec.filterspec import spec_from_node
    from kvmpmu.spec.schema import root
    from kvmpmu.spec.yamlio import load

    return spec_from_node(root(load(text, "s.yaml"), "s.yaml"), "s.yaml")
