"""conform: compare() on hand-built results (every kind of difference, every counter rule),
the corpus on every profile, emulated-vs-emulated runs, KTAP output and the CLI's exit codes.
Expected values come from the brief's rules and from the semantics document (§6), by hand."""

from __future__ import annotations

import json
import re
import sys
import types

import pytest

from kvmpmu.arch.cpus import CPU_MODELS
from kvmpmu.conform.compare import compare
from kvmpmu.conform.corpus import corpus
from kvmpmu.conform.run import conform_cases
from kvmpmu.errors import KvmUnavailable
from kvmpmu.kvm.profiles import PROFILES
from kvmpmu.render.conform import conform_tap
from kvmpmu.spec.hostspec import HostSpec, PmuSpec
from kvmpmu.vmm.execution import run_spec
from kvmpmu.vmm.hosts import build_host
from kvmpmu.vmm.machine import EmulatedMachine
from kvmpmu.vmm.results import CallRecord, CounterResult, Mmio, RunResult, VcpuExit, VcpuResult
from tests.clihelpers import ROOT, run_cli

QEMU_MAX = build_host(HostSpec((PmuSpec("armv8_pmuv3_0", CPU_MODELS["qemu-max"]),)))
FILTER = "KVM_ARM_VCPU_PMU_V3_FILTER"
END = VcpuExit("MMIO", Mmio(0x09000008, 8, 0))  # a store to the mailbox's END slot (+0x08)
EXIT = VcpuExit("MMIO", Mmio(0x09000010, 8, 0))  # ... to its EXIT slot (+0x10)


def calls(*errnos: str | None) -> list[CallRecord]:
    return [CallRecord(0, "KVM_SET_DEVICE_ATTR", FILTER, {"base_event": 0x11}, errno=e)
            for e in errnos]


def result(ioctls=None, vcpus=None, backend="kvm", error=None, error_kind="kvm") -> RunResult:
    from kvmpmu.errors import GuestError, KvmpmuError

    typed: KvmpmuError | None = None
    if error is not None:
        typed = GuestError(error) if error_kind == "guest" else KvmpmuError(error)
        typed.kind = error_kind  # type: ignore[misc]  # a kind the real run reported
    return RunResult("6.1", 0, 0, ioctls or [], vcpus or [], [], error=typed, backend=backend)


def vcpu(state=None, reads=None, undefined=None, counters=None) -> VcpuResult:
    return VcpuResult(0, 0, 0, 0, counters or [], reads or [], undefined or [], state=state)


# --- calls --------------------------------------------------------------------------------------

def test_identical_results_have_no_difference():
    assert compare(result(calls(None, "EBUSY")), result(calls(None, "EBUSY"))) == []


def test_a_different_errno_is_a_call_difference_at_that_call():
    diffs = compare(result(calls(None, None)), result(calls(None, "EBUSY")))
    assert [(d.what, d.where.call, d.real, d.emulated) for d in diffs] == \
        [("call", 1, None, "EBUSY")]
    assert diffs[0].where.ioctl == "KVM_SET_DEVICE_ATTR" and diffs[0].where.attr == FILTER


def test_a_different_value_exit_reason_and_mailbox_slot_are_each_reported():
    real = CallRecord(0, "KVM_GET_ONE_REG", "PMCR_EL0", {}, value=0x3000)
    model = CallRecord(0, "KVM_GET_ONE_REG", "PMCR_EL0", {}, value=0x410130A8)
    run_real = CallRecord(0, "KVM_RUN", None, {}, exit=END)
    run_model = CallRecord(0, "KVM_RUN", None, {}, exit=EXIT)
    intr = CallRecord(0, "KVM_RUN", None, {}, errno="EINTR", exit=VcpuExit("INTR"))
    diffs = compare(result([real, run_real, intr]), result([model, run_model, run_real]))
    found = [(d.where.call, d.real, d.emulated) for d in diffs]
    assert (0, 0x3000, 0x410130A8) in found
    assert (1, 0x08, 0x10) in found  # mailbox slots END and EXIT
    assert (2, "EINTR", None) in found and (2, "INTR", "MMIO") in found
    assert (2, None, 0x08) in found  # no slot for an INTR exit


def test_a_divergent_call_sequence_is_reported_once_and_ends_the_call_comparison():
    other = CallRecord(1, "KVM_RUN", None, {})
    diffs = compare(result(calls(None, "EBUSY", "EINVAL")),
                    result([calls(None)[0], other, *calls("EBUSY")]))
    assert [(d.what, d.where.call) for d in diffs] == [("call", 1)]


def test_a_different_number_of_calls_is_one_difference_at_the_first_missing_call():
    diffs = compare(result(calls(None, None, None)), result(calls(None)))
    assert [(d.what, d.where.call, d.emulated) for d in diffs] == [("call", 1, None)]
    assert "3 calls on the real kernel, 1 on the model" in diffs[0].message


# --- reads and UNDEFs ---------------------------------------------------------------------------

def test_reads_compare_the_register_sequence_and_undef_exactly():
    real = vcpu(reads=[["PMCR_EL0", 0x3000, 1], ["PMEVCNTR5_EL0", None, 1]])
    same = vcpu(reads=[["PMCR_EL0", 0x3000, 1], ["PMEVCNTR5_EL0", None, 1]])
    not_undef = vcpu(reads=[["PMCR_EL0", 0x3000, 1], ["PMEVCNTR5_EL0", 0, 1]])
    other_reg = vcpu(reads=[["PMCEID0_EL0", 0x20001, 1]])
    assert compare(result(vcpus=[real]), result(vcpus=[same])) == []
    assert [d.what for d in compare(result(vcpus=[real]), result(vcpus=[not_undef]))] == ["read"]
    diffs = compare(result(vcpus=[real]), result(vcpus=[other_reg]))
    assert [(d.what, d.where.register) for d in diffs] == [("read", "PMCR_EL0")]


def test_a_read_of_a_deterministic_register_is_exact():
    diffs = compare(result(vcpus=[vcpu(reads=[["PMCEID0_EL0", 0x40020001, 1]])]),
                    result(vcpus=[vcpu(reads=[["PMCEID0_EL0", 0x20001, 1]])]))
    assert [(d.what, d.real, d.emulated) for d in diffs] == [("read", 0x40020001, 0x20001)]


def test_a_read_of_a_counter_that_could_count_is_counted_or_zero():
    def reads(value):
        return result(vcpus=[vcpu(reads=[["PMCCNTR_EL0", value, 1]], state=COUNTING)])

    assert compare(reads(123456), reads(9)) == []
    assert [d.what for d in compare(reads(123456), reads(0))] == ["counter"]


def test_different_undefined_accesses_are_an_undef_difference():
    a = vcpu(undefined=[["PMEVCNTR5_EL0", "read", 1]])
    b = vcpu(undefined=[["PMEVCNTR5_EL0", "write", 1]])
    assert [d.what for d in compare(result(vcpus=[a]), result(vcpus=[b]))] == ["undef"]


# --- state and counters -------------------------------------------------------------------------

# PMCR_EL0.E set, counters 0, 1 and the cycle counter enabled; counter 0 counts SW_INCR (0),
# counter 1 CPU_CYCLES (0x11); a PMUv3p5 guest (ID_AA64DFR0_EL1.PMUVer 6).
COUNTING = {"PMCEID0_EL0": 0x20001, "PMCR_EL0": 0x3001, "ID_AA64DFR0_EL1": 0x10305609,
            "PMCNTENSET_EL0": 0x80000003, "PMOVSSET_EL0": 0, "PMCCNTR_EL0": 500,
            "PMEVTYPER1_EL0": 0x11, "PMEVCNTR1_EL0": 400,
            "PMEVTYPER0_EL0": 0x0, "PMEVCNTR0_EL0": 3}


# What the model says of those counters: SW_INCR and CPU_CYCLES, both allowed and implemented.
MODEL_COUNTERS = [CounterResult(0, 0x00, "SW_INCR", True, True, True, 3, False),
                  CounterResult(1, 0x11, "CPU_CYCLES", True, True, True, 400, False),
                  CounterResult(31, 0x11, "CPU_CYCLES", True, True, True, 500, False)]


def state_diffs(real: dict, model: dict, counters=None):
    return compare(result(vcpus=[vcpu(state=real)]),
                   result(vcpus=[vcpu(state=model, counters=counters or MODEL_COUNTERS)],
                          backend="emulated"))


def test_deterministic_state_registers_are_exact():
    for register, other in (("PMCR_EL0", 0x41013001), ("PMCEID0_EL0", 0x40020001),
                            ("ID_AA64DFR0_EL1", 0x10305506), ("PMEVTYPER1_EL0", 0x8)):
        diffs = state_diffs(COUNTING, {**COUNTING, register: other})
        assert [(d.what, d.where.register) for d in diffs] == [("state", register)], register


def test_a_sw_incr_counter_is_exact():
    diffs = state_diffs(COUNTING, {**COUNTING, "PMEVCNTR0_EL0": 4})
    assert [(d.what, d.where.register, d.real, d.emulated) for d in diffs] == \
        [("counter", "PMEVCNTR0_EL0", 3, 4)]


def test_a_counter_the_model_says_could_count_is_the_hosts_business():
    assert state_diffs(COUNTING, {**COUNTING, "PMEVCNTR1_EL0": 7}) == []
    assert state_diffs(COUNTING, {**COUNTING, "PMEVCNTR1_EL0": 0, "PMCCNTR_EL0": 0}) == []


def test_a_counter_whose_event_is_denied_or_not_implemented_is_exact():
    denied = [MODEL_COUNTERS[0], CounterResult(1, 0x11, "CPU_CYCLES", True, False, True, 0,
                                               False), MODEL_COUNTERS[2]]
    diffs = state_diffs(COUNTING, {**COUNTING, "PMEVCNTR1_EL0": 0}, denied)
    assert [(d.where.register, d.real, d.emulated) for d in diffs] == [("PMEVCNTR1_EL0", 400, 0)]
    absent = [MODEL_COUNTERS[0], MODEL_COUNTERS[1],
              CounterResult(31, 0x11, "CPU_CYCLES", True, True, False, 0, False)]
    assert [d.where.register for d in
            state_diffs(COUNTING, {**COUNTING, "PMCCNTR_EL0": 0}, absent)] == ["PMCCNTR_EL0"]


def test_without_a_model_the_end_state_says_which_counters_could_not_count():
    def diffs(a: dict, b: dict) -> list:
        return compare(result(vcpus=[vcpu(state=a)]), result(vcpus=[vcpu(state=b)]))

    stopped = {**COUNTING, "PMCR_EL0": 0x3000}  # E clear: nothing counted
    assert [d.where.register for d in diffs(stopped, {**stopped, "PMEVCNTR1_EL0": 7})] \
        == ["PMEVCNTR1_EL0"]
    disabled = {**COUNTING, "PMCNTENSET_EL0": 0x3}  # the cycle counter's bit 31 clear
    assert [d.where.register for d in diffs(disabled, {**disabled, "PMCCNTR_EL0": 9})] \
        == ["PMCCNTR_EL0"]
    assert diffs(COUNTING, {**COUNTING, "PMEVCNTR1_EL0": 7}) == []  # counted both
    assert [d.where.register for d in diffs(COUNTING, {**COUNTING, "PMEVCNTR1_EL0": 0})] \
        == ["PMEVCNTR1_EL0"]  # counted on one side only


def test_overflow_bits_are_compared_for_counters_that_could_not_have_counted_only():
    # bit 0: the SW_INCR counter (compared); bit 1: the CPU_CYCLES counter (not compared)
    assert state_diffs({**COUNTING, "PMOVSSET_EL0": 0x2}, {**COUNTING, "PMOVSSET_EL0": 0}) == []
    diffs = state_diffs({**COUNTING, "PMOVSSET_EL0": 0x1}, {**COUNTING, "PMOVSSET_EL0": 0})
    assert [(d.what, d.where.register) for d in diffs] == [("counter", "PMOVSSET_EL0")]


def test_a_state_read_on_one_side_only_is_a_difference():
    assert [d.what for d in state_diffs(COUNTING, None)] == ["state"]  # type: ignore[arg-type]


# --- errors -------------------------------------------------------------------------------------

def test_errors_compare_their_kind_and_the_call_that_stopped():
    stopped = result(calls(None, "EBUSY"), error="FILTER failed: EBUSY")
    same = result(calls(None, "EBUSY"), error="FILTER failed: EBUSY: the VM has run")
    assert compare(stopped, same) == []
    diffs = compare(stopped, result(calls(None, "EBUSY"), error="x", error_kind="guest"))
    assert [d.what for d in diffs] == ["error"]
    diffs = compare(result(calls(None)), stopped)
    assert [d.what for d in diffs][-1] == "error" and diffs[-1].real is None


# --- the corpus ---------------------------------------------------------------------------------

CASES = list(corpus(QEMU_MAX))


def test_the_corpus_has_every_part_with_stable_unique_names():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    scenarios = sorted(p.stem for p in (ROOT / "configs" / "scenarios").glob("*.yaml"))
    assert sorted(n.removeprefix("scenario/") for n in names if n.startswith("scenario/")) \
        == scenarios
    # 5 attributes x (HAS, GET, SET valid, SET invalid), INIT's SET taking no argument: 19
    # operations, in 5 x 5 states of vCPUs A and B
    assert sum(n.startswith("matrix/") for n in names) == 19 * 25
    for name in ("matrix/SET.FILTER.valid/A3-B4", "matrix/HAS.SET_NR_COUNTERS/A0-B0",
                 "matrix/SET.INIT/A2-B1", "scenario/irq-ppi", "spec/deny-cycles",
                 "filter/late-after-run", "filter/edge-0x4000", "counting/CPU_CYCLES.denied"):
        assert name in names
    # QEMU's five events, each with and without a filter denying it
    assert sum(n.startswith("counting/") for n in names) == 10


def test_the_shipped_scenarios_name_pmus_any_host_has():
    # SET_PMU by `default` (the VMM's CPU's PMU), not by a name only one host has
    other = build_host(HostSpec((PmuSpec("apple_icestorm_pmu", CPU_MODELS["qemu-max"]),)))
    names = [c.name for c in corpus(other)]
    assert "scenario/nr-counters-then-one-reg-and-set-pmu" in names
    assert sum(n.startswith("scenario/") for n in names) == len(
        list((ROOT / "configs" / "scenarios").glob("*.yaml")))


@pytest.mark.parametrize("profile", list(PROFILES))
def test_every_case_runs_on_every_profile_and_agrees_with_itself(profile):
    machine = EmulatedMachine(QEMU_MAX, PROFILES[profile])
    report = conform_cases(CASES, machine, machine)
    assert report.differing == 0, [(c.name, c.differences[:2]) for c in report.cases
                                   if not c.agrees][:3]


def case(name):
    return next(c for c in CASES if c.name == name)


def diffs_between(name, real, model):
    c = case(name)
    return compare(run_spec(c.spec, c.workload, None, None,
                            EmulatedMachine(QEMU_MAX, PROFILES[real])),
                   run_spec(c.spec, c.workload, None, None,
                            EmulatedMachine(QEMU_MAX, PROFILES[model])))


def test_late_filter_after_a_run_is_accepted_on_5_10_and_ebusy_on_6_1():
    # calls: 0 vGIC, 1-2 vCPUs, 3-4 VCPU_INIT, 5 CTRL_INIT, 6 IRQ, 7 PMU INIT, 8 RUN, 9 FILTER
    diffs = diffs_between("filter/late-after-run", "5.10", "6.1")
    calls_ = [(d.where.call, d.where.vcpu, d.real, d.emulated) for d in diffs
              if d.what == "call"]
    assert (9, 1, None, "EBUSY") in calls_


def test_pmcr_reset_and_pmceid_differ_between_6_12_and_6_1_as_measured():
    # §6: guest PMCR_EL0 after reset 0x3000 on 6.12, 0x410130A8 on 6.1; PMCEID0 0x40020001
    # on 6.12 (CHAIN advertised), 0x20001 on 6.1
    diffs = diffs_between("matrix/HAS.IRQ/A4-B0", "6.12", "6.1")
    state = {d.where.register: (d.real, d.emulated) for d in diffs if d.what == "state"}
    assert state["PMCR_EL0"] == (0x3000, 0x410130A8)
    assert state["PMCEID0_EL0"] == (0x40020001, 0x20001)


# --- KTAP ---------------------------------------------------------------------------------------

def test_ktap_output_has_the_version_a_plan_and_one_numbered_result_per_case():
    report = conform_cases(CASES[:40], EmulatedMachine(QEMU_MAX, PROFILES["6.12"]),
                           EmulatedMachine(QEMU_MAX, PROFILES["6.1"]))
    lines = conform_tap(report).splitlines()
    assert lines[0] == "KTAP version 1" and lines[1] == "1..40"
    results = [line for line in lines if re.match(r"(not )?ok \d+ ", line)]
    assert [int(r.split()[-2]) for r in results] == list(range(1, 41))
    assert sum(r.startswith("not ok") for r in results) == report.differing > 0
    assert all(line.startswith("# ") for line in lines[2:] if line not in results)


# --- the CLI ------------------------------------------------------------------------------------

def fake_kvm(monkeypatch, profile="6.12", release="6.1.0-56-arm64", error=None):
    """A kvm backend module whose machine is the model at `profile` claiming `release`."""
    module = types.ModuleType("kvmpmu.vmm.kvm_backend")

    def kvm_machine():
        if error:
            raise KvmUnavailable(error)
        return EmulatedMachine(QEMU_MAX, PROFILES[profile], release)

    module.kvm_machine = kvm_machine  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kvmpmu.vmm.kvm_backend", module)


def test_conform_agrees_with_a_kernel_its_profile_models(monkeypatch):
    fake_kvm(monkeypatch, profile="6.1")
    out = run_cli("conform", "--scenario", "configs/scenarios/irq-ppi.yaml")
    assert out.exit_code == 0, out.output
    assert "6.1.0-56-arm64" in out.output and "profile 6.1" in out.output
    assert out.output.splitlines()[-1] == "1 cases, 0 differ"


def test_conform_lists_differences_and_exits_1(monkeypatch):
    fake_kvm(monkeypatch, profile="6.12")  # claims 6.1: the model runs the 6.1 profile
    out = run_cli("conform", "--scenario", "configs/scenarios/late-filter-ebusy.yaml", "--json")
    assert out.exit_code == 1
    doc = json.loads(out.output)
    assert doc["schema"] == 1 and not doc["ok"]
    assert doc["release"] == "6.1.0-56-arm64" and doc["profile"] == "6.1"
    diffs = doc["cases"][0]["differences"]
    pmcr = [d for d in diffs if d["where"]["register"] == "PMCR_EL0"]
    assert pmcr and pmcr[0]["real"] == "0x3000" and pmcr[0]["emulated"] == "0x410130a8"


def test_run_backend_both_is_conform_and_kernel_picks_the_models_profile(monkeypatch):
    fake_kvm(monkeypatch, profile="6.12")
    out = run_cli("run", "--backend", "both", "--kernel", "6.12",
                  "--scenario", "configs/scenarios/late-filter-ebusy.yaml")
    assert out.exit_code == 0, out.output
    assert "profile 6.12" in out.output


def test_conform_corpus_in_ktap(monkeypatch):
    fake_kvm(monkeypatch, profile="6.1")
    out = run_cli("conform", "--corpus", "--format", "tap")
    assert out.exit_code == 0
    lines = out.output.splitlines()
    assert lines[:2] == ["KTAP version 1", f"1..{len(CASES)}"]
    assert "6.1.0-56-arm64" in lines[2]


def test_run_and_show_pmceid_on_the_kvm_backend(monkeypatch):
    fake_kvm(monkeypatch, profile="6.12", release="6.12.117")
    out = run_cli("show-pmceid", "--backend", "kvm", "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["guest"]["pmceid0"] == "0x0000000040020001"  # §6, 6.12
    out = run_cli("run", "--backend", "kvm", "--scenario", "configs/scenarios/irq-ppi.yaml")
    assert out.exit_code == 0, out.output


@pytest.mark.parametrize("args", [("conform", "--corpus"), ("run", "--backend", "kvm"),
                                  ("show-pmceid", "--backend", "both")])
def test_no_kvm_here_is_exit_69(monkeypatch, args):
    fake_kvm(monkeypatch, error="no /dev/kvm")
    out = run_cli(*args)
    assert out.exit_code == 69 and "no /dev/kvm" in out.output


def test_a_kvmpmu_without_the_kvm_backend_is_exit_69(monkeypatch):
    monkeypatch.setitem(sys.modules, "kvmpmu.vmm.kvm_backend", None)
    out = run_cli("conform", "--corpus", "--json")
    assert out.exit_code == 69
    assert json.loads(out.stdout)["error"]["kind"] == "unavailable"


def test_conform_usage_errors(monkeypatch):
    fake_kvm(monkeypatch)
    assert run_cli("conform", "--corpus", "--filter", "configs/cancel.yaml").exit_code == 2
    assert run_cli("conform", "--json", "--format", "tap").exit_code == 2
    assert run_cli("run", "--backend", "kvm", "--kernel", "6.1").exit_code == 2
