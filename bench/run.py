"""kvmpmu benchmarks: every figure is a ratio of two things measured side by side in this run,
each the median of several repetitions (these machines are noisy).

    make bench            # or: .venv/bin/python bench/run.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import batch as bt
import startup as su

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
KVMPMU = [PY, "-m", "kvmpmu"] if os.environ.get("BENCH_MODULE") else \
    [str(Path(PY).parent / "kvmpmu")]
ROWS: list[tuple[str, str, str, str]] = []


def row(what: str, value: str, target: str, ok: bool | None) -> None:
    verdict = "" if ok is None else ("met" if ok else "MISSED")
    ROWS.append((what, value, target, verdict))
    print(f"  {what}: {value} (target {target}) {verdict}", flush=True)


def fastest(cmds: dict[str, list[str]], repeat: int) -> dict[str, float]:
    """Wall time of each command (output discarded), taking turns, the fastest of `repeat`:
    what is compared is run side by side, and the fastest run is the one the machine's other
    jobs disturbed least."""
    return su.interleaved({name: partial(su.run_piped, cmd, ROOT) for name, cmd in cmds.items()},
                          repeat, min)


def peak_rss_kib(cmd: list[str]) -> int:
    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], "
            "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([PY, "-c", code, *cmd], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    return int(out.stdout)


def elapsed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# --- 1. start-up --------------------------------------------------------------------------

def startup(repeat: int) -> None:
    print("1. start-up", flush=True)
    # Byte-compile first, as `pip install` does for an installed package: with
    # PYTHONDONTWRITEBYTECODE set (as on CI machines) every run would compile our sources anew.
    subprocess.run([PY, "-m", "compileall", "-q", str(ROOT / "kvmpmu")], check=True)
    bare = [PY, "-c", su.BARE_IMPORTS]
    runs: dict[str, Callable[[], float]] = {
        "bare": partial(su.run_piped, bare, ROOT),
        "bare in a terminal": partial(su.run_in_terminal, bare, ROOT),
        "--version": partial(su.run_piped, [*KVMPMU, "--version"], ROOT)}
    for name, args in su.COMMANDS.items():
        runs[name] = partial(su.run_piped, [*KVMPMU, *args], ROOT)
        runs[f"{name} in a terminal"] = partial(su.run_in_terminal, [*KVMPMU, *args], ROOT)
    times = su.interleaved(runs, repeat)
    base, base_tty = times["bare"], times["bare in a terminal"]
    print(f"  bare imports: {base * 1000:.0f} ms, in a terminal {base_tty * 1000:.0f} ms",
          flush=True)
    row(f"`kvmpmu --version` / `{su.BARE_IMPORTS}`", f"{times['--version'] / base:.2f}x",
        f"<= {su.PIPE_TARGET}x", times["--version"] / base <= su.PIPE_TARGET)
    for name in su.COMMANDS:
        pipe, tty = times[name] / base, times[f"{name} in a terminal"] / base_tty
        row(f"`kvmpmu {name}` (example), stdout a pipe / the bare imports", f"{pipe:.2f}x "
            f"({times[name] * 1000:.0f} ms)", f"<= {su.PIPE_TARGET}x", pipe <= su.PIPE_TARGET)
        row(f"`kvmpmu {name}` (example), stdout a terminal / the bare imports in one",
            f"{tty:.2f}x ({times[f'{name} in a terminal'] * 1000:.0f} ms)",
            f"<= {su.TERMINAL_TARGET}x", tty <= su.TERMINAL_TARGET)
    bare_modules = su.imported_by(bare, ROOT)
    for name, args in su.COMMANDS.items():
        su.print_import_top(name, su.import_top([*KVMPMU, *args], ROOT, bare_modules))


# --- 2. large specs -------------------------------------------------------------------------

def generate(folder: Path, n: int) -> tuple[Path, Path]:
    rng = random.Random(n)
    entries = [(rng.choice(("allow", "deny")), rng.randrange(0, 0xFFC0), rng.randrange(1, 64))
               for _ in range(n)]
    yaml_path, json_path = folder / f"spec{n}.yaml", folder / f"spec{n}.json"
    yaml_path.write_text("kernel: latest\nfilters:\n" + "".join(
        f"  - {{action: {a}, base_event: 0x{b:04x}, nevents: {c}}}\n" for a, b, c in entries))
    json_path.write_text(json.dumps({"kernel": "latest", "filters": [
        {"action": a, "base_event": b, "nevents": c} for a, b, c in entries]}))
    return yaml_path, json_path


def fastest_yaml_parser() -> tuple[str, str]:
    """The fastest YAML parser importable here, as (name, code that parses sys.argv[1])."""
    for module, name, code in (
            ("ryml", "rapidyaml",
             "import ryml,sys; ryml.parse_in_arena(open(sys.argv[1],'rb').read())"),
            ("yaml_rs", "yaml-rs",
             "import yaml_rs,sys; yaml_rs.loads(open(sys.argv[1]).read())")):
        if subprocess.run([PY, "-c", f"import {module}"], capture_output=True).returncode == 0:
            return name, code
    return "PyYAML CSafeLoader", \
        "import yaml,sys; yaml.load(open(sys.argv[1]), Loader=yaml.CSafeLoader)"


def large_specs(sizes: list[int], repeat: int) -> None:
    print("2. large specs, end to end through `kvmpmu show-pmceid`", flush=True)
    name, parse_code = fastest_yaml_parser()
    per_entry = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            yaml_path, json_path = generate(Path(tmp), n)
            times = fastest({
                "e2e": [*KVMPMU, "show-pmceid", "--filter", str(yaml_path)],
                "e2e_json": [*KVMPMU, "show-pmceid", "--filter", str(json_path)],
                "parse": [PY, "-c", parse_code, str(yaml_path)],
                "jparse": [PY, "-c", "import json,sys; json.load(open(sys.argv[1]))",
                           str(json_path)]}, repeat)
            e2e, e2e_json, parse, jparse = (times[k] for k in ("e2e", "e2e_json", "parse",
                                                               "jparse"))
            per_entry[n] = e2e / n
            row(f"{n} entries, YAML: end to end / {name} parse", f"{e2e / parse:.1f}x "
                f"({e2e:.2f} s vs {parse:.2f} s)", "<= 2x", e2e / parse <= 2)
            row(f"{n} entries, JSON: end to end / json.load", f"{e2e_json / jparse:.1f}x "
                f"({e2e_json:.2f} s vs {jparse:.2f} s)", "(JSON fast path)", None)
            if n == max(sizes):
                peak_memory(n, yaml_path)
    if len(sizes) < 3:
        return  # growth needs three sizes (the full run)
    a, b, c = sorted(sizes)[-3:]
    low = (per_entry[b] * b - per_entry[a] * a) / (b - a)
    high = (per_entry[c] * c - per_entry[b] * b) / (c - b)
    row(f"growth: marginal time per entry {b}->{c} / {a}->{b}", f"{high / low:.2f}x "
        f"({high * 1e6:.0f} us vs {low * 1e6:.0f} us)", "<= 1.2x (linear)", high / low <= 1.2)


def peak_memory(n: int, spec: Path) -> None:
    """Peak RSS of show-pmceid on the spec, as text and as JSON, whose call log must still
    hold every call (one FILTER call per generated entry)."""
    bare = peak_rss_kib([PY, "-c", su.BARE_IMPORTS])
    rss = peak_rss_kib([*KVMPMU, "show-pmceid", "--filter", str(spec)])
    row(f"peak RSS, show-pmceid on {n} entries / bare interpreter + deps",
        f"{rss / bare:.1f}x ({rss // 1024} MiB vs {bare // 1024} MiB)", "<= 5x", rss / bare <= 5)
    cmd = [*KVMPMU, "show-pmceid", "--json", "--filter", str(spec)]
    rss_json = peak_rss_kib(cmd)
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False).stdout
    filters = sum(c["ioctl"] == "KVM_SET_DEVICE_ATTR" and c["attr"] == "KVM_ARM_VCPU_PMU_V3_FILTER"
                  for c in json.loads(out)["ioctls"])
    row(f"peak RSS, show-pmceid --json on {n} entries / the same", f"{rss_json / bare:.1f}x "
        f"({rss_json // 1024} MiB; its call log has {filters} FILTER calls of {n})",
        "complete log", filters == n)


# --- 3. filter application ------------------------------------------------------------------

def filter_application(n: int, repeat: int) -> None:
    print("3. filter application through the library", flush=True)
    sys.path.insert(0, str(ROOT))
    from kvmpmu.kvm.filter import EventFilter

    rng = random.Random(3)
    calls = [(rng.randrange(0, 0xF000), rng.randrange(1, 4096), rng.randrange(2))
             for _ in range(n)]

    def bitmap() -> None:
        flt = EventFilter(0x10000, calls[0][2])
        for base, count, action in calls:
            flt.apply(base, count, action)

    def naive() -> None:
        allowed = [calls[0][2] == 1] * 0x10000
        for base, count, action in calls:
            value = action == 0
            for event in range(base, base + count):
                allowed[event] = value

    def ioctls() -> None:
        from kvmpmu.spec.filterspec import FilterCall, FilterSpec
        from kvmpmu.vmm.session import emulated_vmm, profile_for

        spec = FilterSpec(file="bench")
        vmm, _ = emulated_vmm(spec, profile_for(spec, None))
        vmm.create_vgic()
        vmm.create_vcpu(0)
        vmm.vcpu_init(0)
        for base, count, action in calls:
            vmm.filter(0, FilterCall(base, count, action))

    t_bitmap, t_naive = median_of(bitmap, repeat), median_of(naive, repeat)
    t_ioctl = median_of(ioctls, repeat)
    row(f"{n} FILTER ranges (avg 2048 events): bitmap / naive per-event loop",
        f"{t_bitmap / t_naive:.3f}x ({t_bitmap / n * 1e6:.2f} us vs {t_naive / n * 1e6:.1f} us"
        " per call)", "O(words), << 1x", t_bitmap < t_naive)
    row(f"{n} FILTER calls through KVM_SET_DEVICE_ATTR / naive per-event loop",
        f"{t_ioctl / t_naive:.3f}x ({t_ioctl / n * 1e6:.1f} us per call)", "(informative)", None)


# --- 4 and 5. workload engine, analytic counting ----------------------------------------------

def workload_engine(steps: int, repeat: int) -> None:
    print("4. workload engine", flush=True)
    from kvmpmu.gcpause import paused_gc
    from kvmpmu.spec.filterspec import FilterSpec
    from kvmpmu.spec.workload import Access, Repeat
    from kvmpmu.vmm.backend import ScriptImage
    from kvmpmu.vmm.boot import boot
    from kvmpmu.vmm.session import emulated_vmm, pmu_types, profile_for

    spec = FilterSpec(file="bench")
    # A write and a read: a body no engine can collapse (a repeated read alone is one record
    # and one read), so that each of the `steps` is a step the engine makes.
    body = (Access((("PMCCNTR_EL0", 5),), None, "write"),  # type: ignore[arg-type]
            Access((("PMCCNTR_EL0", None),), None, "read"))  # type: ignore[arg-type]

    def engine() -> None:  # as `run` does it: no cyclic GC while the guest runs
        vmm, backend = emulated_vmm(spec, profile_for(spec, None))
        boot(vmm, spec, pmu_types(backend))
        vmm.load_guest(0, ScriptImage((Repeat(steps // 2, body, None),)))  # type: ignore[arg-type]
        with paused_gc():
            vmm.run_to_end(0)

    def empty() -> None:
        for _ in range(steps):
            pass

    ratio = median_of(engine, repeat) / median_of(empty, repeat)
    row(f"{steps} register accesses (repeat of a write and a read): per-step cost / empty "
        "loop iteration",
        f"{ratio:.1f}x", "<= 30x", ratio <= 30)


def analytic_counting(repeat: int) -> None:
    print("5. counting is analytic", flush=True)
    from kvmpmu.spec.filterspec import FilterSpec
    from kvmpmu.spec.workload import Access, Execute, Step
    from kvmpmu.vmm.guest import ScriptedGuest
    from kvmpmu.vmm.session import entered_vcpu

    vcpu = entered_vcpu(FilterSpec(file="bench"))

    def run(steps: tuple[Step, ...]) -> None:
        ScriptedGuest(vcpu, steps, exit_on_irq_change=False).resume()

    run((Access((("PMCR_EL0", 0x7), ("PMEVTYPER0_EL0", 0x08), ("PMEVTYPER1_EL0", 0x11),
                 ("PMINTENSET_EL1", 0x3), ("PMCNTENSET_EL0", 0x8000_0003)),
                None, "write"),))  # type: ignore[arg-type]

    def execute(n: int) -> Callable[[], None]:
        steps = tuple(Execute(1, ((0x08, n), (0x11, n)), None)  # type: ignore[arg-type]
                      for _ in range(1000))
        return lambda: run(steps)

    times = su.interleaved({"small": partial(elapsed, execute(10**3)),
                            "huge": partial(elapsed, execute(10**15))}, repeat, min)
    small, huge = times["small"], times["huge"]
    row("`execute` of 10^15 events / of 10^3 events (two 32-bit counters overflowing "
        "~233,000 times each)", f"{huge / small:.2f}x", "<= 1.1x", huge / small <= 1.1)


# --- 6. bounded memory (issue 13) -----------------------------------------------------------

def bounded_memory() -> None:
    """Peak RSS of `run --json` of a workload repeating a read 10^8 times against the same
    with 10^3: consecutive identical reads are one record with a count."""
    print("6. bounded memory", flush=True)
    with tempfile.TemporaryDirectory(prefix="kvmpmu-bench-") as tmp:
        rss = {}
        for times in (10**3, 10**8):
            path = Path(tmp) / f"repeat{times}.yaml"
            path.write_text(f"vcpus:\n  all:\n    - repeat: {{times: {times}, steps: [{{read: "
                            "PMCCNTR_EL0}]}\n")
            cmd = [*KVMPMU, "run", "--json", "--workload", str(path)]
            rss[times] = min(peak_rss_kib(cmd) for _ in range(3))
            out = json.loads(subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                                            check=False).stdout)
            assert out["ok"], out
    ratio = rss[10**8] / rss[10**3]
    row("peak RSS, `run --json` of 10^8 repeated reads / of 10^3", f"{ratio:.2f}x "
        f"({rss[10**8] // 1024} MiB vs {rss[10**3] // 1024} MiB)", "<= 1.5x", ratio <= 1.5)


GUEST_LOOP = """
        movz    x9, #0x0900, lsl #16
        mov     x0, #0x6
        msr     pmcr_el0, x0
{program}
        mov     x0, #0x3f
        msr     pmcntenset_el0, x0
        movz    x1, #{low:#x}
        movk    x1, #{high:#x}, lsl #16
        mov     x0, #0x1
        msr     pmcr_el0, x0
loop:
{body}
        subs    x1, x1, #1
        b.ne    loop
done:
        str     xzr, [x9, #8]
        b       .
"""


GUEST_MIX = ("add x2, x2, #1", "eor x3, x3, x2", "ldr x4, [sp, #-16]", "str x4, [sp, #-8]")
GUEST_BLOCKS = (2, 8, 16, 32)  # instructions per loop pass: a body from GUEST_MIX, SUBS, B.NE
GUEST_TARGETS = {2: 0.01, 16: 0.10}


def guest_speed(instructions: int, repeat: int) -> None:
    """The CPU-emulated guest against unicorn alone on the same loop, per block length."""
    print("7. CPU-emulated guest", flush=True)
    try:
        import unicorn
    except ImportError:
        row("CPU-emulated guest", "skipped: the `guest` extra is not installed", ">= 10%", None)
        return
    for size in GUEST_BLOCKS:
        ours, bare = _guest_loop_speed(unicorn, size, instructions, repeat)
        target = GUEST_TARGETS.get(size)
        row(f"CPU-emulated guest, {size}-instruction loop, six counters: speed / unicorn "
            f"without hooks", f"{ours / bare:.1%} ({ours / 1e6:.1f} vs {bare / 1e6:.0f} M "
            "instructions/s)", f">= {target:.0%}" if target else "",
            ours / bare >= target if target else None)


def _guest_loop_speed(unicorn: Any, size: int, instructions: int,
                      repeat: int) -> tuple[float, float]:
    """Instructions per second: our engine with six counters, and unicorn without hooks."""
    from kvmpmu.spec.filterspec import FilterSpec
    from kvmpmu.vmm.emulated.assembler import assemble
    from kvmpmu.vmm.emulated.cpu import EmulatedGuest
    from kvmpmu.vmm.emulated.program import Program
    from kvmpmu.vmm.memmap import RAM_BASE, RAM_SIZE
    from kvmpmu.vmm.session import entered_vcpu

    events = (0x08, 0x21, 0x06, 0x07, 0x13, 0x11)  # six counters
    program = "\n".join(f"        mov x0, #{e:#x}\n        msr pmevtyper{i}_el0, x0"
                         for i, e in enumerate(events))
    body = "\n".join(f"        {GUEST_MIX[i % len(GUEST_MIX)]}" for i in range(size - 2))
    base = 0x40080000

    def loop_code(passes: int) -> bytes:
        return assemble(GUEST_LOOP.format(program=program, body=body, low=passes & 0xFFFF,
                                          high=passes >> 16), base)

    code = loop_code(instructions // size)

    def ours() -> None:
        vcpu = entered_vcpu(FilterSpec(file="bench"))
        guest = EmulatedGuest(vcpu, Program(((base, code),), base), 10 * instructions)
        assert guest.run().reason == "end"
        assert vcpu.vpmu.counter_value(0) >= instructions * 0.99

    # The same loop alone (unicorn's own CPU has only 4 event counters and no kvmpmu behind
    # it), ten times as long, so that its time is well above the noise.
    passes = 10 * instructions // size
    bare_code = assemble(f"movz x1, #{passes & 0xFFFF:#x}\nmovk x1, #{passes >> 16:#x}, lsl #16"
                         f"\nloop:\n{body}\nsubs x1, x1, #1\nb.ne loop\nb .", base)

    def bare() -> None:
        uc = unicorn.Uc(unicorn.UC_ARCH_ARM64, unicorn.UC_MODE_ARM)
        uc.mem_map(RAM_BASE, RAM_SIZE)
        uc.mem_write(base, bare_code)
        uc.reg_write(unicorn.arm64_const.UC_ARM64_REG_SP, RAM_BASE + RAM_SIZE)
        uc.emu_start(base, base + len(bare_code) - 4)

    # Taking turns, the fastest of each: both are CPU-bound and this machine's load swung the
    # 2-instruction row from 0.6% to 1.2% when each was timed apart.
    times = su.interleaved({"ours": partial(elapsed, ours), "bare": partial(elapsed, bare)},
                           repeat, min)
    return instructions / times["ours"], passes * size / times["bare"]


# --- 8. a policy repository ------------------------------------------------------------------

def policy_repository(policies: int, repeat: int) -> None:
    """Folders at once against one process per file, and the pytest plugin's cost where it
    has nothing to do (this repository's own test run)."""
    print("8. a policy repository", flush=True)
    with tempfile.TemporaryDirectory(prefix="kvmpmu-bench-") as tmp:
        folder = Path(tmp)
        work = (ROOT / "configs" / "workload-basic.yaml").read_text()
        for i in range(policies):
            (folder / f"p{i}.yaml").write_text(f"vm: {{vcpus: 2}}\nfilters:\n  - deny: "
                                               f"0x{0x30 + i % 16:x}\n  - deny: 0x{0x4000 + i:x}\n")
            (folder / f"w{i}.yaml").write_text(f"policy: p{i}.yaml\n{work}")
        times = fastest({"one_lint": [*KVMPMU, "lint", str(folder / "p0.yaml")],
                         "all_lint": [*KVMPMU, "lint", str(folder)],
                         "one_run": [*KVMPMU, "run", "--workload", str(folder / "w0.yaml")],
                         "all_run": [*KVMPMU, "run", "--quiet", "--workload", str(folder)]},
                        repeat)
        one_lint, all_lint, one_run, all_run = (times[k] for k in ("one_lint", "all_lint",
                                                                   "one_run", "all_run"))
        row(f"`kvmpmu lint FOLDER` of {policies} policies / {policies} `kvmpmu lint FILE` runs",
            f"{all_lint / (policies * one_lint):.2f}x ({all_lint:.2f} s vs "
            f"{policies * one_lint:.2f} s)", "< 1x", all_lint < policies * one_lint)
        row(f"`kvmpmu run --workload FOLDER` of {policies} workloads / {policies} `kvmpmu run` "
            "runs", f"{all_run / (policies * one_run):.2f}x ({all_run:.2f} s vs "
            f"{policies * one_run:.2f} s)", "< 1x", all_run < policies * one_run)
    collect = [PY, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests"]
    # Two seconds each, equal within this machine's noise: more turns than the rest.
    times = fastest({"with": collect, "without": [*collect, "-p", "no:kvmpmu"]}, repeat + 4)
    with_plugin, without = times["with"], times["without"]
    row("pytest --collect-only of tests/, plugin installed / disabled",
        f"{with_plugin / without:.2f}x ({with_plugin:.2f} s vs {without:.2f} s)", "<= 1.05x",
        with_plugin / without <= 1.05)


# --- 9. many specs in one process ---------------------------------------------------------

def many_specs(count: int, repeat: int, every: int) -> None:
    """`lint`/`validate FOLDER` of `count` specs against a process per file (every `every`th
    file timed, the sum scaled), and the marginal cost per file as the folder grows."""
    print("9. lint and validate of many specs", flush=True)
    with tempfile.TemporaryDirectory(prefix="kvmpmu-bench-") as tmp:
        folder = Path(tmp)
        paths = bt.write_specs(folder, count)
        parts = [[folder / "a"], [folder / "a", folder / "b"], [folder / p for p in "abc"]]
        sizes = [count // 4, count // 2, count]
        for command in ("lint", "validate"):
            runs: dict[int, Callable[[], float]] = {
                size: partial(su.run_piped, [*KVMPMU, command, *map(str, part)], ROOT)
                for size, part in zip(sizes, parts, strict=True)}
            # The fastest of each: growth is a difference of differences, which the median of
            # a few runs on a shared machine leaves to its load (0.85-1.52x for one folder).
            times = su.interleaved(runs, repeat, min)
            one = times[count]
            separate = every * sum(su.run_piped([*KVMPMU, command, str(path)], ROOT)
                                   for path in paths[::every])
            timed = f"{count}" if every == 1 else f"{len(paths[::every])} timed, x{every}"
            row(f"`kvmpmu {command} FOLDER` of {count} specs (20-50 entries): {count} `kvmpmu "
                f"{command} FILE` runs ({timed}) / one", f"{separate / one:.0f}x ({separate:.1f} "
                f"s vs {one:.2f} s)", ">= 20x", separate / one >= 20)
            low = (times[sizes[1]] - times[sizes[0]]) / (sizes[1] - sizes[0])
            high = (times[sizes[2]] - times[sizes[1]]) / (sizes[2] - sizes[1])
            row(f"growth: `{command} FOLDER`, marginal time per file {sizes[1]}->{sizes[2]} / "
                f"{sizes[0]}->{sizes[1]}", f"{high / low:.2f}x ({high * 1e3:.2f} ms vs "
                f"{low * 1e3:.2f} ms)", "<= 1.2x (linear)", high / low <= 1.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    parser.add_argument("--only", type=int, metavar="N", action="append",
                        help="run section N (repeatable)")
    args = parser.parse_args()
    quick = args.quick
    repeat = 3 if quick else 7
    sizes = [1000, 10000] if quick else [1000, 10000, 100000]
    sections: dict[int, Callable[[], None]] = {
        1: partial(startup, repeat * 3),
        2: partial(large_specs, sizes, repeat if quick else 3),
        4: partial(workload_engine, 1_000_000 if not quick else 100_000, 3),
        5: partial(analytic_counting, repeat),
        6: bounded_memory,
        3: partial(filter_application, 100_000 if not quick else 10_000, 3),
        7: partial(guest_speed, 4_000_000 if not quick else 400_000, 5),
        8: partial(policy_repository, 50 if not quick else 10, repeat),
        9: partial(many_specs, 1000 if not quick else 200, 5, 4 if not quick else 10),
    }
    print(f"kvmpmu benchmarks, {time.strftime('%Y-%m-%d')}, Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs", flush=True)
    for number, section in sections.items():
        if not args.only or number in args.only:
            section()
    print("\n| measurement | figure | target | |\n| --- | --- | --- | --- |")
    for what, value, target, verdict in ROWS:
        print(f"| {what} | {value} | {target} | {verdict} |")


if __name__ == "__main__":
    main()
