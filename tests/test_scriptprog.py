"""Scripted workloads compiled into AArch64 guest programs: run on the CPU-emulated guest, the
decoded mailbox stores must give exactly the scripted engine's reads and UNDEF records (and
the values the rules give, worked out by hand). Needs the `guest` extra (make install has it).

Registers and events are chosen so that no value depends on how many instructions ran: the
scripted engine counts nothing without `execute`, while the CPU-emulated guest counts what the
program really executes. The one exception, an INST_RETIRED counter, is compared as
counted-or-zero (test_instruction_counts_are_counted_or_zero)."""

import re
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kvmpmu.arch import sysregs as sr
from kvmpmu.errors import GuestError, SourceLoc
from kvmpmu.spec import yamlio
from kvmpmu.spec.filterspec import FilterCall, spec_from_node
from kvmpmu.spec.schema import root
from kvmpmu.spec.workload import (
    Access,
    Execute,
    Exit,
    Repeat,
    SetEl,
    VmmCall,
    Workload,
    load_workload,
    workload_from_node,
)
from kvmpmu.vmm import mailbox as mb
from kvmpmu.vmm import session
from kvmpmu.vmm.backend import GuestOutput, ScriptImage
from kvmpmu.vmm.boot import boot
from kvmpmu.vmm.scriptprog import (
    MAX_REPEAT_DEPTH,
    STATE_PAIRS,
    VBAR_ALIGN,
    ScriptCompileError,
    ScriptDecoder,
    compile_steps,
)
from tests.clihelpers import ROOT

pytest.importorskip("unicorn", reason="the `guest` extra (unicorn) is not installed")
pytest.importorskip("capstone", reason="the `guest` extra (capstone) is not installed")

from kvmpmu.vmm.scriptrun import EmulatedScriptRun

CONFIGS = ROOT / "configs"
RESET_COUNTERS = "    - write: {PMCR_EL0: 0x6, PMCNTENCLR_EL0: 0xffffffff}\n"  # P, C; none counts


def load(text: str, name: str = "w.yaml") -> Workload:
    return workload_from_node(root(yamlio.load(text, name), name), name)


def spec_of(text: str):
    return spec_from_node(root(yamlio.load(text, "spec.yaml"), "spec.yaml"), "spec.yaml")


def steps(text: str) -> Workload:
    return load("vcpus:\n  all:\n" + text)


def expand(records: list) -> list[tuple]:
    """The engines' records ([name, value, count]) one per access, as the tests write them."""
    return [(name, value) for name, value, count in records for _ in range(count)]


def _comparable(state: dict | None) -> dict:
    """The state but the values instruction counts decide (the CPU-emulated guest counts what
    it runs; the scripted engine counts nothing): counters counting anything but SW_INCR."""
    state = dict(state or {})
    if state.get("PMCR_EL0", 0) & 1:
        for name in [k for k in state if k.startswith("PMEVCNTR") or k == "PMCCNTR_EL0"]:
            typer = state.get(name.replace("CNTR", "TYPER"), 0x11 if "CC" in name else 0)
            if typer is None or typer & 0xFFFF != 0:
                state.pop(name)
    return state


class Scripted:
    """One vCPU's scripted-engine output and the `vmm:` steps its VMM made."""

    def __init__(self, output: GuestOutput, calls: list) -> None:
        self.output = output
        self.reads, self.undefined = expand(output.reads), expand(output.undefined)
        self.vmm_calls = calls


class Engines:
    """The same spec and workload on two identically booted VMs: the scripted engine on one,
    the compiled program on the CPU-emulated guest on the other."""

    def __init__(self, workload: Workload, spec_text: str = "{}\n", kernel: str | None = None,
                 registers: dict[str, int] | None = None, load: int = 0x40080000) -> None:
        spec = spec_of(spec_text)
        self.scripted: list[Scripted] = []
        self.compiled: list[EmulatedScriptRun] = []
        self.vmm_calls: list[list] = []  # the emulated side's vmm steps, made by its VMM
        scripted_vmm, scripted_backend = self._boot(spec, kernel)
        for vcpu in scripted_backend.vm.vcpus:
            scripted_vmm.load_guest(vcpu.index, ScriptImage(workload.steps_for(vcpu.index)))
            scripted_vmm.run_to_end(vcpu.index)
            calls = [(s, r) for i, s, r in scripted_vmm.step_calls if i == vcpu.index]
            self.scripted.append(Scripted(scripted_backend.output(vcpu.index), calls))
        emulated_vmm, emulated_backend = self._boot(spec, kernel)
        for vcpu in emulated_backend.vm.vcpus:
            vcpu.run()
            run = EmulatedScriptRun(
                vcpu, compile_steps(workload.steps_for(vcpu.index), load),
                lambda step, i=vcpu.index: emulated_vmm.serve_vmm_step(i, step),  # type: ignore[misc]
                1_000_000)
            for name, value in (registers or {}).items():
                run.guest.set_reg(name.lower(), value)
            run.run()
            self.compiled.append(run)
            self.vmm_calls.append([(s, r) for i, s, r in emulated_vmm.step_calls
                                   if i == vcpu.index])

    @staticmethod
    def _boot(spec, kernel: str | None) -> tuple:
        vmm, backend = session.emulated_vmm(spec, session.profile_for(spec, kernel))
        boot(vmm, spec, session.pmu_types(backend))
        return vmm, backend

    def agree(self) -> tuple[list, list]:
        """vCPU 0's reads and UNDEF records, after checking that every vCPU's agree."""
        for runner, run, vmm_side in zip(self.scripted, self.compiled, self.vmm_calls,
                                         strict=True):
            assert run.decoder.ended and run.guest.result.finished
            assert run.decoder.reads == runner.output.reads
            assert run.decoder.undefined == runner.output.undefined
            assert _comparable(run.decoder.state) == _comparable(runner.output.state)
            assert [(s.loc, r.args, r.errno) for s, r in vmm_side] == \
                [(s.loc, r.args, r.errno) for s, r in runner.vmm_calls]
        return self.scripted[0].reads, self.scripted[0].undefined

    def requests(self, vcpu: int = 0) -> list[str]:
        return [r.kind for r in self.compiled[vcpu].requests]


def scripted_only(workload: Workload, spec_text: str = "{}\n") -> Scripted:
    spec = spec_of(spec_text)
    vmm, backend = Engines._boot(spec, None)
    vmm.load_guest(0, ScriptImage(workload.steps_for(0)))
    vmm.run_to_end(0)
    return Scripted(backend.output(0), [(s, r) for _, s, r in vmm.step_calls])


# --- the shipped workloads ----------------------------------------------------------------------

def has_execute(steps) -> bool:
    return any(isinstance(s, Execute) or isinstance(s, Repeat) and has_execute(s.steps)
               for s in steps)


def every_step(workload: Workload) -> tuple:
    return (workload.all_steps or ()) + sum(workload.per_vcpu.values(), ())


SHIPPED = sorted(CONFIGS.glob("workload-*.yaml"))
RUNNABLE = [p for p in SHIPPED if not has_execute(every_step(load_workload(str(p))))]
# the policy each workload goes with (README's table; the comment at the top of each file)
POLICY = {"workload-chain-swincr.yaml": "deny-chain-swincr.yaml"}


def test_the_shipped_runnable_workloads_are_the_expected_ones():
    assert [p.name for p in RUNNABLE] == list(POLICY)


@pytest.mark.parametrize("kernel", ["5.10", "6.1", "6.12", "latest"])
@pytest.mark.parametrize("path", RUNNABLE, ids=lambda p: p.name)
def test_shipped_workloads_agree_on_both_engines(path, kernel):
    spec_text = (CONFIGS / POLICY[path.name]).read_text()
    engines = Engines(load_workload(str(path)), spec_text, kernel)
    reads, undefined = engines.agree()
    assert [name for name, _ in reads] == ["PMEVCNTR0_EL0", "PMEVCNTR1_EL0", "PMEVCNTR2_EL0",
                                           "PMOVSSET_EL0", "PMCEID0_EL0"]
    assert undefined == []
    values = dict(reads)
    assert values["PMEVCNTR2_EL0"] == 3  # three PMSWINC writes with bit 2
    if kernel == "latest":  # 64-bit event counters: the low word wraps once, CHAIN counts it
        assert (values["PMEVCNTR0_EL0"], values["PMEVCNTR1_EL0"]) == (0x1_0000_0001, 1)


@pytest.mark.parametrize("path", [p for p in SHIPPED if p not in RUNNABLE], ids=lambda p: p.name)
def test_shipped_workloads_with_execute_are_refused_at_that_step(path):
    text = path.read_text().splitlines()
    line = next(i for i, t in enumerate(text, 1) if re.match(r"\s*- execute:", t))
    with pytest.raises(ScriptCompileError) as err:
        compile_steps(load_workload(str(path)).steps_for(0))
    col = text[line - 1].index("execute") + 1
    assert err.value.render().startswith(f"{path}:{line}:{col}: error: execute: ")
    assert "synthetic events" in err.value.message


# --- accesses at EL1 ----------------------------------------------------------------------------

def test_undef_reads_and_writes_at_el1_are_recorded_and_execution_goes_on():
    # The generic host gives the guest 6 counters: PMEVCNTR6 does not exist; PMCEID0 is
    # read-only and PMSWINC write-only (semantics §5.2): each access is UNDEF, and the read of
    # PMEVCNTR2 right after the UNDEF of PMEVCNTR6 must not take its stale value.
    work = steps(RESET_COUNTERS + """\
    - write: {PMEVCNTR6_EL0: 5, PMCEID0_EL0: 1}
    - write: {PMEVCNTR2_EL0: 0x1234, PMSELR_EL0: 2}
    - read: [PMEVCNTR6_EL0, PMEVCNTR2_EL0, PMSWINC_EL0, PMXEVCNTR_EL0, PMSELR_EL0]
    - write: {PMEVTYPER3_EL0: 0x11, PMSELR_EL0: 3}
    - read: [PMXEVTYPER_EL0, PMEVTYPER7_EL0]
""")
    reads, undefined = Engines(work).agree()
    assert reads == [("PMEVCNTR6_EL0", None), ("PMEVCNTR2_EL0", 0x1234), ("PMSWINC_EL0", None),
                     ("PMXEVCNTR_EL0", 0x1234), ("PMSELR_EL0", 2), ("PMXEVTYPER_EL0", 0x11),
                     ("PMEVTYPER7_EL0", None)]
    assert undefined == [("PMEVCNTR6_EL0", "write"), ("PMCEID0_EL0", "write"),
                         ("PMEVCNTR6_EL0", "read"), ("PMSWINC_EL0", "read"),
                         ("PMEVTYPER7_EL0", "read")]


def test_a_repeated_undef_read_records_every_iteration():
    work = steps("    - repeat: {times: 5, steps: [{read: PMEVCNTR7_EL0}]}\n"
                 "    - read: PMUSERENR_EL0\n")
    reads, undefined = Engines(work, "vm: {counters: 4}\n").agree()
    assert reads == [("PMEVCNTR7_EL0", None)] * 5 + [("PMUSERENR_EL0", 0)]
    assert undefined == [("PMEVCNTR7_EL0", "read")] * 5


def test_nested_repeats_with_software_increments():
    work = steps("""\
    - write: {PMCR_EL0: 0x7, PMCNTENCLR_EL0: 0xffffffff}
    - program: {counter: 0, event: SW_INCR}
    - program: {counter: 1, event: SW_INCR}
    - enable: [0, 1]
    - repeat:
        times: 3
        steps:
          - swinc: [0]
          - repeat: {times: 4, steps: [{swinc: [1]}, {read: PMEVCNTR1_EL0}]}
          - read: PMEVCNTR0_EL0
""")
    reads, undefined = Engines(work).agree()
    expected = []
    for outer in range(1, 4):
        expected += [("PMEVCNTR1_EL0", 4 * (outer - 1) + inner) for inner in range(1, 5)]
        expected.append(("PMEVCNTR0_EL0", outer))
    assert reads == expected and undefined == []


def test_repeats_nest_to_the_limit_and_no_deeper():
    def nested(depth: int) -> str:
        body = "{swinc: [0]}"
        for _ in range(depth):
            body = f"{{repeat: {{times: 2, steps: [{body}]}}}}"
        return f"    - {body}\n"

    setup = ("    - write: {PMCR_EL0: 0x7, PMCNTENCLR_EL0: 0xffffffff}\n"
             "    - program: {counter: 0, event: SW_INCR}\n    - enable: [0]\n")
    work = steps(setup + nested(MAX_REPEAT_DEPTH) + "    - read: PMEVCNTR0_EL0\n")
    reads, _ = Engines(work).agree()
    assert reads == [("PMEVCNTR0_EL0", 2**MAX_REPEAT_DEPTH)]
    text = "vcpus:\n  all:\n" + nested(MAX_REPEAT_DEPTH + 1)
    innermost = text.splitlines()[2].rindex("{repeat") + 1  # the innermost repeat's column
    with pytest.raises(ScriptCompileError) as err:
        compile_steps(load(text).steps_for(0))
    assert err.value.render().startswith(f"w.yaml:3:{innermost}: error: repeat: ")
    assert f"more than {MAX_REPEAT_DEPTH} deep" in err.value.message


def test_a_zero_repeat_runs_nothing_but_is_still_checked():
    work = steps("    - repeat: {times: 0, steps: [{read: PMCR_EL0}]}\n    - read: PMSELR_EL0\n")
    reads, _ = Engines(work).agree()
    assert [name for name, _ in reads] == ["PMSELR_EL0"]
    with pytest.raises(ScriptCompileError):
        compile_steps(steps("    - repeat: {times: 0, steps: [{execute: {events: "
                            "{INST_RETIRED: 1}}}]}\n").steps_for(0))


def test_vmm_and_exit_steps_stop_the_guest_in_order():
    # After INIT every FILTER call through the vCPU is EBUSY (semantics §2.2), from the guest too.
    work = load("""\
vcpus:
  0:
    - vmm: {filter: {deny: INST_RETIRED}, expect_errno: EBUSY}
    - read: PMSELR_EL0
    - exit: {}
    - repeat:
        times: 2
        steps:
          - vmm: {filter: {allow: [0x10, 0x12]}, expect_errno: EBUSY}
          - exit: {}
""")
    engines = Engines(work)
    engines.agree()
    assert engines.requests() == ["vmm", "exit", "vmm", "exit", "vmm", "exit", "end"]
    made = engines.vmm_calls[0]
    assert [(r.args["base_event"], r.args["nevents"], r.errno) for _, r in made] == [
        (0x08, 1, "EBUSY"), (0x10, 1, "EBUSY"), (0x12, 1, "EBUSY"), (0x10, 1, "EBUSY"),
        (0x12, 1, "EBUSY")]


def test_each_vcpu_runs_its_own_program():
    work = load("""\
vcpus:
  0: [{write: {PMSELR_EL0: 4}}, {read: PMSELR_EL0}]
  1: [{read: [PMSELR_EL0, PMEVCNTR6_EL0]}]
""")
    engines = Engines(work, "vm: {vcpus: 2}\n")
    engines.agree()
    # vCPU 1 never wrote PMSELR_EL0: it resets to the UNKNOWN pattern's SEL bits (semantics §5.3)
    unknown_sel = sr.RESET_UNKNOWN_PATTERN & sr.PMSELR_SEL_MASK
    assert unknown_sel == 0x1E
    assert engines.scripted[0].reads == [("PMSELR_EL0", 4)]
    assert engines.scripted[1].reads == [("PMSELR_EL0", unknown_sel), ("PMEVCNTR6_EL0", None)]


def test_the_program_depends_on_no_register_but_pc():
    junk = {f"X{n}": 0xDEAD_0000_0000_0000 + n for n in range(31)} | {"SP": 0x8}
    work = steps(RESET_COUNTERS + "    - write: {PMEVCNTR1_EL0: 7}\n"
                 "    - repeat: {times: 2, steps: [{read: [PMEVCNTR1_EL0, PMEVCNTR9_EL0]}]}\n")
    reads, undefined = Engines(work, registers=junk).agree()
    assert reads == [("PMEVCNTR1_EL0", 7), ("PMEVCNTR9_EL0", None)] * 2


def test_any_word_aligned_load_address_works():
    work = steps("    - write: {PMSELR_EL0: 5}\n    - read: [PMSELR_EL0, PMEVCNTR6_EL0]\n")
    reads, _ = Engines(work, load=0x40200404).agree()  # vectors at the next 2 KiB boundary
    assert reads == [("PMSELR_EL0", 5), ("PMEVCNTR6_EL0", None)]


def test_instruction_counts_are_counted_or_zero():
    # deny-cycles: CPU_CYCLES is denied, so the cycle counter and a CPU_CYCLES counter stay at 0
    # on both engines; INST_RETIRED counts the program's own instructions on the CPU only.
    work = steps("""\
    - write: {PMCR_EL0: 0x6, PMOVSCLR_EL0: 0xffffffff}
    - program: {counter: 0, event: CPU_CYCLES}
    - program: {counter: 1, event: INST_RETIRED}
    - program: {counter: cycle}
    - enable: [0, 1, cycle]
    - write: {PMCR_EL0: 0x1}
    - read: [PMCCNTR_EL0, PMEVCNTR0_EL0, PMEVCNTR1_EL0]
""")
    engines = Engines(work, (CONFIGS / "deny-cycles.yaml").read_text())
    scripted = engines.scripted[0].reads
    compiled = expand(engines.compiled[0].decoder.reads)
    assert scripted == [("PMCCNTR_EL0", 0), ("PMEVCNTR0_EL0", 0), ("PMEVCNTR1_EL0", 0)]
    assert compiled[:2] == scripted[:2]
    assert compiled[2][0] == "PMEVCNTR1_EL0" and compiled[2][1] > 0  # counted, not zero


# --- EL0 ----------------------------------------------------------------------------------------

# PMUSERENR_EL0 (semantics §5.2): EN allows every EL0 access but PMUSERENR itself
# and the EL1 registers; SW allows PMSWINC; CR reads of PMCCNTR; ER reads of the event counters
# and PMSELR (write too). PMUSERENR_EL0 reads at EL0 always, writes only at EL1.
EL0_WORK = RESET_COUNTERS + """\
    - write: {PMEVCNTR0_EL0: 10, PMCCNTR_EL0: 20, PMSELR_EL0: 0, PMUSERENR_EL0: 0}
    - el: 0
    - read: [PMCCNTR_EL0, PMUSERENR_EL0]
    - write: {PMCR_EL0: 0, PMUSERENR_EL0: 0xf}
    - el: 1
    - write: {PMUSERENR_EL0: 0x4}
    - el: 0
    - read: [PMCCNTR_EL0, PMEVCNTR0_EL0]
    - write: {PMCCNTR_EL0: 1}
    - el: 1
    - write: {PMUSERENR_EL0: 0x8}
    - el: 0
    - read: [PMEVCNTR0_EL0, PMXEVCNTR_EL0, PMSELR_EL0, PMCR_EL0]
    - write: {PMSELR_EL0: 0, PMEVCNTR0_EL0: 1}
    - swinc: [0]
    - el: 1
    - write: {PMUSERENR_EL0: 0x1}
    - repeat:
        times: 2
        steps:
          - el: 0
          - read: [PMCCNTR_EL0, PMINTENSET_EL1, ID_AA64DFR0_EL1]
          - el: 1
          - read: PMUSERENR_EL0
"""
EL0_READS = [("PMCCNTR_EL0", None), ("PMUSERENR_EL0", 0),  # nothing allowed
             ("PMCCNTR_EL0", 20), ("PMEVCNTR0_EL0", None),  # CR
             ("PMEVCNTR0_EL0", 10), ("PMXEVCNTR_EL0", 10), ("PMSELR_EL0", 0), ("PMCR_EL0", None)
             ] + [("PMCCNTR_EL0", 20), ("PMINTENSET_EL1", None), ("ID_AA64DFR0_EL1", None),
                  ("PMUSERENR_EL0", 1)] * 2  # ER, then EN twice
EL0_UNDEFINED = [("PMCCNTR_EL0", "read"), ("PMCR_EL0", "write"), ("PMUSERENR_EL0", "write"),
                 ("PMEVCNTR0_EL0", "read"), ("PMCCNTR_EL0", "write"),
                 ("PMCR_EL0", "read"), ("PMEVCNTR0_EL0", "write"), ("PMSWINC_EL0", "write")] + \
    [("PMINTENSET_EL1", "read"), ("ID_AA64DFR0_EL1", "read")] * 2


def test_pmuserenr_rules_at_el0_in_the_scripted_engine():
    runner = scripted_only(steps(EL0_WORK))
    assert runner.reads == EL0_READS
    assert runner.undefined == EL0_UNDEFINED


def test_pmuserenr_rules_at_el0_in_the_compiled_program():
    reads, undefined = Engines(steps(EL0_WORK)).agree()
    assert reads == EL0_READS and undefined == EL0_UNDEFINED


def test_el_steps_are_no_op_when_already_there():
    work = steps("    - write: {PMSELR_EL0: 4, PMINTENCLR_EL1: 0xffffffff}\n"
                 "    - el: 1\n    - read: PMSELR_EL0\n    - el: 0\n    - el: 0\n"
                 "    - read: PMSELR_EL0\n    - el: 1\n    - el: 1\n    - read: PMINTENSET_EL1\n")
    reads, undefined = Engines(work).agree()
    assert reads == [("PMSELR_EL0", 4), ("PMSELR_EL0", None), ("PMINTENSET_EL1", 0)]
    assert undefined == [("PMSELR_EL0", "read")]


# --- the program and its decoder ----------------------------------------------------------------

def test_a_repeated_read_does_not_grow_with_the_repeat_count():
    def program(times: int):
        return compile_steps(steps(f"    - repeat: {{times: {times}, steps: "
                                   "[{read: PMCCNTR_EL0}]}\n").steps_for(0))

    small, huge = program(1), program(10**8)
    assert huge.size - small.size <= 16  # three more MOVKs at most, and the buffer's padding
    reads = [s for p in (small, huge) for s in p.sites.values() if s.access == "read"]
    assert len(reads) == 2 and len(huge.sites) == len(small.sites)  # one read each
    assert huge.state_store == small.state_store + 4  # 10^8 has two non-zero halfwords
    (loop,) = steps("    - repeat: {times: 1, steps: [{read: PMCCNTR_EL0}]}\n").steps_for(0)
    largest = compile_steps((loop.replace(times=2**63 - 1),))
    assert largest.state_store == small.state_store + 12  # four halfwords


def test_the_layout_and_the_entry():
    program = compile_steps(steps("    - read: PMCR_EL0\n").steps_for(0))
    ((address, code),) = program.segments
    assert address == program.entry == 0x40080000
    assert program.mailbox == mb.BASE
    (site,) = [pc for pc, s in program.sites.items() if s.access == "read"]
    assert site >= address + 2 * VBAR_ALIGN  # the steps come after the vector table
    other = compile_steps(steps("    - read: PMCR_EL0\n").steps_for(0), load=0x40100000,
                          mailbox=0x0A000000)
    assert other.entry == 0x40100000 and other.size == program.size
    with pytest.raises(ScriptCompileError, match="guest RAM"):
        compile_steps((), load=0x3000_0000)


class Ram:
    """Guest memory holding a program, for a decoder fed by hand."""

    def __init__(self, program) -> None:
        ((self.base, code),) = program.segments
        self.data = bytearray(code)

    def put(self, addr: int, *words: int) -> None:
        off = addr - self.base
        self.data[off:off + 8 * len(words)] = struct.pack(f"<{len(words)}Q", *words)

    def read(self, addr: int, size: int) -> bytes:
        return bytes(self.data[addr - self.base:addr - self.base + size])


def decoder_for(text: str) -> ScriptDecoder:
    program = compile_steps(steps(text).steps_for(0))
    return ScriptDecoder(program, Ram(program).read)


def test_the_decoder_refuses_stores_that_do_not_fit_the_program():
    decoder = decoder_for("    - read: PMCR_EL0\n    - vmm: {filter: {deny: 0x10}}\n")
    (mrs,) = [pc for pc, s in decoder.program.sites.items() if s.access == "read"]
    cases = [(mb.REPORT, 1, 0x40081000, "offset 0x0"), (mb.READ, 1, mrs, "follows no MRS"),
             (mb.UNDEF, 0x40081234, 0x40080200, "no PMU access"),
             (mb.VMM_CALL, 1, 0x40081010, "has 1 vmm steps"),
             (mb.EXIT, 0, 0x40081010, "no exit step")]
    for offset, value, pc, message in cases:
        with pytest.raises(GuestError, match=message):
            decoder.store(offset, value, pc)
    assert decoder.store(mb.READ, 0x41, mrs + 4) is None
    assert decoder.reads == [["PMCR_EL0", 0x41, 1]]
    request = decoder.store(mb.VMM_CALL, 0, 0x40081010)
    assert request is not None and request.kind == "vmm"


def test_the_state_buffer_is_read_in_one_store_and_checked():
    program = compile_steps(steps("    - read: PMCR_EL0\n").steps_for(0))
    ram = Ram(program)
    decoder = ScriptDecoder(program, ram.read)
    buf, store = program.state_buffer, program.state_store
    values = {"PMCEID0_EL0": 1, "PMCEID1_EL0": 2, "PMCR_EL0": 1 << 11, "ID_AA64DFR0_EL1": 3,
              "PMCNTENSET_EL0": 4, "PMOVSSET_EL0": 5, "PMINTENSET_EL1": 6, "PMCCFILTR_EL0": 7,
              "PMCCNTR_EL0": 8, "PMEVTYPER0_EL0": 9, "PMEVCNTR0_EL0": 10}
    pairs = [w for name, v in values.items() for w in (v, name == "PMCCFILTR_EL0")]
    ram.put(buf, *pairs)
    end = buf + 8 * len(pairs)
    for bad_end, pc, message in [(end, store + 4, "not the end"), (buf, store, "not the end"),
                                 (end - 16, store, "ends before PMEVCNTR0_EL0"),
                                 (end + 16, store, "more reads")]:
        with pytest.raises(GuestError, match=message):
            ScriptDecoder(program, ram.read).store(mb.STATE, bad_end, pc)
    assert decoder.store(mb.STATE, end, store) is None
    assert decoder.state == {**values, "PMCCFILTR_EL0": None}  # its UNDEF flag was set


def test_the_state_read_at_the_end_is_decoded_as_the_scripted_engine_reads_it():
    engines = Engines(steps("    - write: {PMCR_EL0: 0x6, PMEVTYPER1_EL0: 0x11}\n"),
                      "vm: {counters: 2}\n")
    compiled = engines.compiled[0].decoder.state
    assert compiled == engines.scripted[0].output.state
    assert list(compiled)[-4:] == ["PMEVTYPER1_EL0", "PMEVCNTR1_EL0", "PMEVTYPER0_EL0",
                                   "PMEVCNTR0_EL0"]  # N = 2, read from n = N-1 down
    assert compiled["PMEVTYPER1_EL0"] & 0xFFFF == 0x11 and compiled["PMCR_EL0"] >> 11 == 2


@pytest.mark.parametrize("profile", ["5.10", "6.12"])
def test_the_state_of_a_vcpu_without_a_pmu_undefs_or_reads_zero_alike(profile):
    from kvmpmu.vmm.state import read_state
    from tests.kvmhelpers import make_vm

    work = steps("    - read: [PMCR_EL0]\n")
    (_, (scripted,)), (_, (compiled,)) = (make_vm(profile, pmu=False) for _ in range(2))
    for vcpu in (scripted, compiled):
        vcpu.run()
    run = EmulatedScriptRun(compiled, compile_steps(work.steps_for(0)), lambda _: None,
                            100_000)
    run.run()
    assert run.decoder.state == read_state(scripted)
    undefined = profile != "5.10"  # 5.10: a PMU that is not ready reads 0
    assert (run.decoder.state["PMCR_EL0"] is None) == undefined
    assert (run.decoder.state["PMCCNTR_EL0"] is None) == undefined  # the last one too


def test_a_fault_names_the_vector_and_the_exception_class():
    decoder = decoder_for("    - read: PMCR_EL0\n")
    by_vector = {name: pc for pc, name in decoder.program.fault_stores.items()}
    assert len(decoder.program.fault_stores) == 16  # 14 vectors, and the 2 handlers' own
    pc = by_vector["synchronous, current EL with SP_ELx"]  # the EL1 handler: an SVC #2, say
    request = decoder.store(mb.FAULT, 0x15 << 26 | 1 << 25 | 2, pc)
    assert request is not None and request.kind == "fault" and decoder.fault == request
    assert "synchronous, current EL with SP_ELx" in request.message
    assert "ESR_EL1 0x56000002: EC 0x15, SVC" in request.message
    irq = decoder.store(mb.FAULT, 0, by_vector["IRQ, lower EL using AArch64"])
    assert irq is not None and "IRQ, lower EL using AArch64" in irq.message
    end = decoder.store(mb.END, 0, 0x40081000)
    assert end is not None and end.kind == "end" and decoder.ended


def test_the_vector_table_is_aligned_and_vbar_points_at_it():
    capstone = pytest.importorskip("capstone")
    program = compile_steps(())
    ((address, code),) = program.segments
    cs = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
    text = [f"{i.mnemonic} {i.op_str}".strip() for i in cs.disasm(code, address)]
    vectors = address + VBAR_ALIGN
    assert vectors % 0x800 == 0
    assert f"adr x16, #{vectors:#x}" in text and "msr vbar_el1, x16" in text
    for slot in range(0, 0x800, 0x80):  # each of the 16 vectors starts by reading ESR_EL1
        assert text[(VBAR_ALIGN + slot) // 4] == "mrs x16, esr_el1"
    end = text.index("str xzr, [x28, #8]")  # the end, then the state buffer
    assert text[end + 1] == f"b #{address + 4 * end:#x}"
    assert program.state_buffer == address + 4 * (end + 2) and \
        code[4 * (end + 2):] == bytes(STATE_PAIRS * 16)


# --- any EL1 workload --------------------------------------------------------------------------

LOC = SourceLoc("gen.yaml", 1, 1)
# PMCR_EL0.E stays 0 (reset value, and every PMCR write below clears it): nothing counts on
# either engine, so every value is exact, whatever the program's instruction count.
READABLE = ["PMCR_EL0", "PMCNTENSET_EL0", "PMSELR_EL0", "PMUSERENR_EL0", "PMINTENSET_EL1",
            "PMOVSSET_EL0", "PMCCNTR_EL0", "PMCCFILTR_EL0", "PMXEVTYPER_EL0", "PMXEVCNTR_EL0",
            "PMCEID0_EL0", "PMCEID1_EL0", "PMSWINC_EL0", "PMMIR_EL1", "ID_AA64DFR0_EL1"] + \
    [f"PMEV{kind}{n}_EL0" for kind in ("CNTR", "TYPER") for n in (0, 5, 6, 30)]
WRITABLE = [r for r in READABLE if r != "PMCNTENSET_EL0"] + ["PMCNTENCLR_EL0", "PMOVSCLR_EL0",
                                                              "PMINTENCLR_EL1"]
values = st.one_of(st.integers(0, 31), st.integers(0, 2**64 - 1))


def access_ops():
    read = st.tuples(st.sampled_from(READABLE), st.none())
    write = st.tuples(st.sampled_from(WRITABLE), values).map(
        lambda op: (op[0], op[1] & ~1 if op[0] == "PMCR_EL0" else op[1]))
    return st.lists(st.one_of(read, write), min_size=1, max_size=4).map(
        lambda ops: Access(tuple(ops), LOC, "write"))


vmm_steps = st.just(VmmCall((FilterCall(0x11, 1, 1, LOC),), "EBUSY", True, LOC))
script_steps = st.recursive(
    st.one_of(access_ops(), vmm_steps, st.just(Exit(LOC))),
    lambda inner: st.builds(lambda times, body: Repeat(times, tuple(body), LOC),
                            st.integers(0, 3), st.lists(inner, min_size=1, max_size=3)),
    max_leaves=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(script_steps, max_size=8))
def test_any_el1_workload_agrees_on_both_engines(generated):
    engines = Engines(Workload("gen.yaml", all_steps=tuple(generated)))
    engines.agree()
    exits = sum(1 for kind in engines.requests() if kind == "exit")
    assert exits == count_exits(tuple(generated))


el_steps = st.sampled_from([0, 1]).map(lambda el: SetEl(el, LOC))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(script_steps, el_steps), max_size=10))
def test_any_workload_at_el0_and_el1_agrees_on_both_engines(generated):
    engines = Engines(Workload("gen.yaml", all_steps=(SetEl(0, LOC), *generated)))
    engines.agree()


def count_exits(steps) -> int:
    return sum(s.times * count_exits(s.steps) if isinstance(s, Repeat) else isinstance(s, Exit)
               for s in steps)


def test_steps_that_differ_only_in_location_share_code_but_keep_their_own_steps():
    text = ("    - read: PMCR_EL0\n    - repeat: {times: 3, steps: [{write: {PMSWINC_EL0: 1}}, "
            "{vmm: {filter: {deny: 0x11}}}, {exit: {}}]}\n")
    first = steps(text).steps_for(0)
    second = steps("    - write: {PMSELR_EL0: 0}\n" + text).steps_for(0)[1:]  # a line lower
    assert first != second  # equal but for their locations
    a, b = compile_steps(first), compile_steps(second)
    assert a.segments == b.segments and a.sites.keys() == b.sites.keys()
    for program, own in ((a, first), (b, second)):
        lines = {s.step.loc.line for s in program.sites.values() if s.step is not None}
        assert lines == {own[0].loc.line, own[1].steps[0].loc.line}
        assert program.vmm_steps == (own[1].steps[1],) and \
            list(program.exits.values()) == [own[1].steps[2]]
    moved = compile_steps(first, load=0x40100000)  # another address: other code
    assert moved.entry == 0x40100000 and moved.segments != a.segments
