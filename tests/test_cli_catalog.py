"""`kvmpmu events`, `kvmpmu cpus`, `--events-db` and names in the call log, from the CLI."""

import json

from kvmpmu.cli.exitcodes import ExitCode
from tests.clihelpers import check_golden, run_cli
from tests.test_catalog_import import ARM_DOC, write


def test_cpus_json_lists_every_model_with_midr_and_pmceid():
    result = run_cli("cpus", "--json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    n1 = next(c for c in doc["cpus"] if c["name"] == "neoverse-n1")
    assert n1["midr"] == "0x410fd0c0" and n1["pmu_version"] == "8.1" and n1["counters"] == 6
    assert (n1["pmceid0"], n1["pmceid1"]) == ("0x0000000f7fff0f3f", "0x0000000000f2ae7f")
    assert [c["name"] for c in doc["cpus"]][:2] == ["generic", "cortex-a53"]
    check_golden("cpus.txt", run_cli("cpus").stdout)


def test_events_for_a_cpu_say_implemented_and_pmceid():
    doc = json.loads(run_cli("events", "--cpu", "cortex-a53", "--json").stdout)
    rows = {e["event"]: e for e in doc["events"]}
    assert doc["cpu"]["midr"] == "0x410fd030"
    assert rows[0x1A]["implemented"] is False and rows[0x1A]["pmceid_visible"] is False
    assert rows[0x20]["implemented"] is True and rows[0x20]["pmceid_visible"] is True
    assert rows[0xC0] == {"event": 0xC0, "hex": "0x00c0", "name": "EXT_MEM_REQ",
                          "description": rows[0xC0]["description"], "implemented": True,
                          "pmceid_bit": False, "pmceid_visible": False}
    # a 10-bit (PMUv3 8.0) PMU cannot implement 0x4000+ events: none is set in its PMCEID
    assert not any(e["pmceid_visible"] for e in doc["events"] if e["event"] >= 0x4000)


def test_events_search_matches_number_name_and_description():
    def by(*args):
        return [e["name"] for e in json.loads(run_cli("events", *args, "--json").stdout)["events"]]

    assert by("--search", "0x11") == ["CPU_CYCLES"]
    assert by("--search", "ext_mem", "--cpu", "cortex-a53") == ["EXT_MEM_REQ", "EXT_MEM_REQ_NC"]
    assert "L3D_CACHE_REFILL" in by("--search", "l3", "--cpu", "neoverse-n1", "--implemented")
    assert by("--search", "no-such-event-anywhere") == []
    check_golden("events-a53-stall.txt", run_cli("events", "--cpu", "cortex-a53", "--search",
                                                 "dep_stall").stdout)


def test_events_unknown_cpu_is_invalid_input_with_suggestion():
    result = run_cli("events", "--cpu", "neoverse-n7")
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert "did you mean neoverse-n2" in result.stderr


def test_events_db_names_resolve_in_run_and_show_in_the_call_log(tmp_path):
    db = write(tmp_path, "core.json", ARM_DOC)
    result = run_cli("run", "--pmu-filter", "D:0xc0-0xc0", "--events-db", db, "--json")
    assert result.exit_code == 0, result.stdout
    doc = json.loads(result.stdout)
    call = next(c for c in doc["ioctls"] if c["ioctl"] == "KVM_SET_DEVICE_ATTR"
                and c["attr"] == "KVM_ARM_VCPU_PMU_V3_FILTER")
    assert call["names"] == {"base_event": "MY_BUS_SNOOP", "last_event": "MY_BUS_SNOOP"}
    assert doc["host"]["pmu"]["cpu"] == "Test Core"
    counter = next(c for c in doc["vcpus"][0]["counters"] if c["event"] == 0xC0)
    assert counter["name"] == "MY_BUS_SNOOP" and counter["allowed"] is False


def test_workload_names_resolve_against_the_specs_host(tmp_path):
    spec = write(tmp_path, "s.yaml", "host: {cpu: cortex-a53}\nfilters: [{deny: [EXT_SNOOP]}]\n")
    work = write(tmp_path, "w.yaml", """vcpus:
  all:
    - write: {PMCR_EL0: 0x6}           # P and C: counters start UNKNOWN, as on KVM
    - program: {counter: 0, event: ext_snoop}
    - program: {counter: 1, event: EXT_MEM_REQ}
    - enable: [0, 1]
    - write: {PMCR_EL0: 0x1}
    - execute: {el: 1, events: {EXT_SNOOP: 100, ext_mem_req: 50}}
expect:
  - {vcpu: 0, counter: 0, eq: 0}      # denied
  - {vcpu: 0, counter: 1, eq: 50}
""")
    assert run_cli("run", "--filter", spec, "--workload", work).exit_code == 0
    assert run_cli("validate", spec, work).exit_code == 0
    assert run_cli("validate", work).exit_code == ExitCode.INVALID_INPUT  # generic host


def test_show_pmceid_names_the_host_pmu():
    result = run_cli("show-pmceid", "--filter", "configs/big-little.yaml", "--json")
    doc = json.loads(result.stdout)
    assert doc["host"]["pmu"] == {"name": "big", "pmu_type": 8, "cpu": "cortex-a72",
                                  "pmuver": 1, "counters": 6}
    # Cortex-A72: 0x7FFF0F3F; the policy denies 0x16-0x19, so the guest sees 0x7C3F0F3F
    assert doc["host"]["pmceid0"] == "0x000000007fff0f3f"
    assert doc["guest"]["pmceid0"] == "0x000000007c3f0f3f"
