"""Heterogeneous hosts through the spec and the VMM: SET_PMU, vCPU placement, per profile."""

import errno as E
import struct

import pytest

from kvmpmu.spec.filterspec import spec_from_node
from kvmpmu.spec.schema import root
from kvmpmu.spec.yamlio import load
from kvmpmu.uapi import kvm as u
from kvmpmu.vmm import execution, session
from kvmpmu.vmm.boot import boot
from kvmpmu.vmm.hosts import build_host
from kvmpmu.vmm.vmm import VmmStopped
from tests.kvmhelpers import DENY, errno_of, make_vm, set_attr, set_filter

BIG_LITTLE = """
kernel: {kernel}
host:
  pmus:
    - {{name: big, cpu: {big}, cpus: "0-1"}}
    - {{name: little, cpu: cortex-a53, cpus: "2-5"}}
vm:
  vcpus: 2
  pmu: {pmu}
{extra}
filters: [{{deny: [L2D_CACHE]}}]
"""
PROFILES_WITHOUT_SET_PMU = ["5.10", "5.15"]  # SET_PMU arrived in v5.18
PROFILES_WITH_SET_PMU = ["6.1", "6.6", "6.12", "latest"]


def big_little(kernel="latest", pmu="big", big="cortex-a72", extra=""):
    text = BIG_LITTLE.format(kernel=kernel, pmu=pmu, big=big, extra=extra)
    return spec_from_node(root(load(text, "bl.yaml"), "bl.yaml"), "bl.yaml")


def set_pmu_calls(result):
    return [c for c in result.ioctls if c.attr == "KVM_ARM_VCPU_PMU_V3_SET_PMU"
            and c.ioctl == "KVM_SET_DEVICE_ATTR"]


def test_pmus_get_perf_types_in_order_and_their_cpus():
    host = build_host(big_little().host)
    assert [(p.name, p.pmu_type, sorted(p.cpus)) for p in host.pmus] == [
        ("big", 8, [0, 1]), ("little", 9, [2, 3, 4, 5])]


@pytest.mark.parametrize("kernel", PROFILES_WITH_SET_PMU)
@pytest.mark.parametrize("pmu,pmu_type,cpus", [("big", 8, {0, 1}), ("little", 9, {2, 3, 4, 5})])
def test_set_pmu_selects_the_cluster_and_the_vcpus_run_there(kernel, pmu, pmu_type, cpus):
    result = execution.run_spec(big_little(kernel, pmu))
    assert result.error is None
    calls = set_pmu_calls(result)
    assert [(c.vcpu, c.args["pmu_id"], c.errno) for c in calls] == [(0, pmu_type, None),
                                                                   (1, pmu_type, None)]
    assert result.host_pmu is not None and result.host_pmu.pmu_type == pmu_type
    # the guest counts on its cluster: INST_RETIRED and CPU_CYCLES count, L2D_CACHE is denied
    counters = {c.event: c.value for c in result.vcpus[0].counters if c.counter != 31}
    assert counters[0x16] == 0 and counters[0x08] > 0
    assert session.vcpu_cpus(big_little(kernel, pmu)) == cpus


@pytest.mark.parametrize("kernel", PROFILES_WITHOUT_SET_PMU)
def test_set_pmu_is_unknown_before_5_18(kernel):
    result = execution.run_spec(big_little(kernel))
    assert result.error is not None and "KVM_HAS_DEVICE_ATTR" in result.error.message
    assert "ENXIO" in result.error.message


@pytest.mark.parametrize("kernel", PROFILES_WITH_SET_PMU)
def test_set_pmu_to_another_pmu_after_a_filter_is_ebusy_the_same_pmu_is_not(kernel):
    vm, (vcpu,) = make_vm(kernel, host=build_host(big_little(kernel).host))
    set_filter(vcpu, 0x16, 1, DENY)
    attr = u.KVM_ARM_VCPU_PMU_V3_SET_PMU
    assert errno_of(set_attr, vcpu, attr, struct.pack("<i", 8)) is None  # big: the default
    assert errno_of(set_attr, vcpu, attr, struct.pack("<i", 9)) == E.EBUSY
    assert errno_of(set_attr, vcpu, attr, struct.pack("<i", 7)) == E.ENXIO


@pytest.mark.parametrize("kernel", PROFILES_WITH_SET_PMU)
def test_vcpu_threads_outside_the_pmus_cpus_fail_entry(kernel):
    result = execution.run_spec(big_little(kernel, extra="  cpus: '2-3'"))
    assert result.error is not None and "KVM_EXIT_FAIL_ENTRY" in result.error.message
    last = result.ioctls[-1]
    assert last.ioctl == "KVM_RUN" and last.exit is not None and last.exit.reason == "FAIL_ENTRY"
    assert last.exit.cpu == 2 and last.errno is None  # KVM_RUN itself returned 0


@pytest.mark.parametrize("kernel,ok", [("6.1", True), ("6.6", False), ("6.12", False),
                                       ("latest", False)])
def test_no_vpmu_on_a_host_with_mixed_pmu_versions_from_6_6(kernel, ok):
    # Cortex-A76 is PMUv3p1, Cortex-A53 PMUv3 (8.0): "Disallow vPMU on non-uniform PMUVer"
    result = execution.run_spec(big_little(kernel, big="cortex-a76"))
    assert (result.error is None) == ok
    if not ok:
        init = next(c for c in result.ioctls if c.ioctl == "KVM_ARM_VCPU_INIT")
        assert init.errno == "EINVAL"


def test_vm_pmu_must_name_a_host_pmu():
    from kvmpmu.errors import SpecError

    with pytest.raises(SpecError) as info:
        big_little(pmu="bigg")
    assert "big" in str(info.value.hint or info.value.message)


def test_cpu_sets_of_two_pmus_may_not_overlap():
    from kvmpmu.errors import SpecError

    text = ("host:\n  pmus:\n    - {cpu: cortex-a72, cpus: '0-3'}\n"
            "    - {cpu: cortex-a53, cpus: '3-5'}\n")
    with pytest.raises(SpecError) as info:
        spec_from_node(root(load(text, "t.yaml"), "t.yaml"), "t.yaml")
    assert "[3]" in info.value.message and info.value.loc.line == 4


def test_stopping_at_set_pmu_points_at_the_spec_line():
    with pytest.raises(VmmStopped) as info:
        spec = big_little("5.15")
        vmm, backend = session.emulated_vmm(spec, session.profile_for(spec, None))
        boot(vmm, spec, session.pmu_types(backend))
    assert info.value.record.loc is not None and info.value.record.loc.line == 9
