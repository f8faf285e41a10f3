"""What the VMM needs of a kernel: the same calls whether the kernel is emulated or /dev/kvm.

A backend makes one ioctl per method and raises KvmError(errno) as the ioctl fails. KVM_RUN
returns a VcpuExit: the exits the VMM itself handles (the guest's requests for `vmm:` steps,
its exits to the VMM, its end) or reports (INTR, FAIL_ENTRY, ...); what a guest reports through
the mailbox (values, console lines, a compiled script's reads) the backend collects itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, Union

from kvmpmu.records import Record

if TYPE_CHECKING:
    from kvmpmu.arch.catalog import Catalog
    from kvmpmu.kvm.host import HostPmu
    from kvmpmu.kvm.profiles import KernelProfile
    from kvmpmu.spec.guestspec import GuestSpec
    from kvmpmu.spec.workload import Step
    from kvmpmu.vmm.emulated.program import Program
    from kvmpmu.vmm.results import VcpuExit, VcpuResult


class ScriptImage(Record):
    """A scripted workload's steps for one vCPU."""

    __slots__ = ("steps",)

    def __init__(self, steps: tuple[Step, ...]) -> None:
        self.steps = steps


class DefaultImage(Record):
    """The default workload: built when the vCPU first runs, for its number of counters."""

    __slots__ = ("named_events",)

    def __init__(self, named_events: tuple[int, ...]) -> None:
        self.named_events = named_events


class ProgramImage(Record):
    """A real AArch64 program (`guest:`), loaded."""

    __slots__ = ("guest", "max_instructions", "program", "timeout")

    def __init__(self, guest: GuestSpec, max_instructions: int, program: Program,
                 timeout: float | None = None) -> None:
        self.guest, self.max_instructions, self.program = guest, max_instructions, program
        self.timeout = timeout  # seconds of wall clock


GuestImage = Union[ScriptImage, DefaultImage, ProgramImage]  # noqa: UP007 - runtime alias


def record(records: list[list[Any]], key: str, value: object, times: int = 1) -> None:
    """Append (key, value) `times` times: one record with a count while it repeats, so that
    memory does not grow with `repeat`."""
    last = records[-1] if records else None
    if last is not None and last[0] == key and last[1] == value:
        last[2] += times
    else:
        records.append([key, value, times])


class GuestOutput(Record):
    """What one vCPU's guest produced, in the records the results use."""

    __slots__ = ("reads", "undefined", "reports", "console", "stats", "state", "finished")

    def __init__(self) -> None:
        self.reads: list[list[Any]] = []  # [register, value|None, count]
        self.undefined: list[list[Any]] = []  # [register, access, count]
        self.reports: list[int] = []
        self.console: list[str] = []
        self.stats: dict[str, int | bool] | None = None  # a CPU-emulated guest's instructions...
        self.state: dict[str, int | None] | None = None  # a script's PMU state at its end
        self.finished = False


class Backend(Protocol):
    """The kernel under the VMM: `emulated` (kvmpmu's model) or `kvm` (/dev/kvm)."""

    name: str
    profile: KernelProfile

    def create_vcpu(self, index: int) -> None: ...

    def vcpu_init(self, index: int, features: int) -> None: ...

    def create_vgic(self, dist: int, redist: int) -> None: ...

    def init_vgic(self) -> None: ...

    def device_attr(self, request: int, index: int, attr: int, payload: bytes) -> bytes:
        """KVM_{SET,GET,HAS}_DEVICE_ATTR; returns the payload buffer after the call."""
        ...

    def one_reg(self, request: int, index: int, reg_id: int, value: int = 0) -> int: ...

    def load_guest(self, index: int, image: GuestImage) -> None: ...

    def run(self, index: int) -> VcpuExit: ...

    def output(self, index: int) -> GuestOutput: ...

    def vcpu_indices(self) -> list[int]:
        """The vCPUs created so far."""
        ...

    def result(self, index: int, catalog: Catalog) -> VcpuResult:
        """What the run shows of one vCPU at its end."""
        ...

    def host_pmu(self) -> HostPmu | None:
        """The host PMU the first vCPU's PMCEID view starts from."""
        ...

    def close(self) -> None:
        """Release the VM (its fds on real KVM)."""
        ...
