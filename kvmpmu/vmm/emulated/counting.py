"""Events counted from the blocks the guest executes.

The block hook is the hot path: one Python call per executed block, which only bumps that
block's count (it is registered through ctypes directly: the binding's own wrapper costs more
than the count). The events reach the vPMU at each flush, with corrections for the blocks the
engine cut short (a trap or an exception abandons the rest of the block: it resumes, if at
all, as a new block)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kvmpmu.kvm.vpmu import Vpmu
from kvmpmu.vmm.emulated.blocks import EVENTS, ZERO, Block, Classifier
from kvmpmu.vmm.emulated.fastcall import BlockHook, FastCalls


class BlockCounter:
    def __init__(self, uc: Any, vpmu: Vpmu, discovered: Callable[[Block], None],
                 fast: FastCalls) -> None:
        self.uc, self.vpmu = uc, vpmu
        self.classifier = Classifier()
        self.blocks: dict[int, Block] = {}
        self.hits: dict[int, int] = {}
        self.current = [0]  # address of the block executing now
        self.adjust = list(ZERO)  # events owed (positive) or not run (negative)
        self.instructions = 0  # retired so far, flushed
        self.el = 1
        self._discovered = discovered
        fast.add_block_hook(self._hot_path())

    def _hot_path(self) -> BlockHook:
        hits, current, discover, uc = self.hits, self.current, self._discover, self.uc

        def fail(err: BaseException) -> None:
            """Raised after the run, as the binding does for its hooks (Ctrl-C too)."""
            if uc._hook_exception is None:
                uc._hook_exception = err
            uc.emu_stop()

        def on_block(_uc: int | None, address: int, size: int, _data: int | None) -> None:
            try:
                current[0] = address
                hits[address] += 1
            except KeyError:
                try:
                    discover(address, size)
                except BaseException as err:
                    fail(err)
            except BaseException as err:
                fail(err)

        return on_block

    def _discover(self, address: int, size: int) -> None:
        block = self.blocks.get(address)
        if block is None or block.size != size:
            block = self.classifier.block(address, bytes(self.uc.mem_read(address, size)))
            self.blocks[address] = block
            self._discovered(block)
        self.hits[address] = self.hits.get(address, 0) + 1

    def forget(self, lo: int, hi: int) -> None:
        """The guest wrote code in [lo, hi): classify the blocks there again when they run."""
        stale = [a for a, b in self.blocks.items() if a < hi and lo < a + b.size]
        if stale:
            self.flush()
            for addr in stale:
                if addr != self.current[0]:
                    del self.blocks[addr]

    # --- corrections and flushing --------------------------------------------------------

    def block(self) -> Block | None:
        return self.blocks.get(self.current[0])

    def cut(self, pc: int) -> None:
        """The executing block stops before `pc`: what follows never runs in this pass."""
        block = self.block()
        if block is not None:
            self.adjust = [a - t for a, t in zip(self.adjust, block.tail(pc), strict=True)]

    def owe(self, pc: int) -> None:
        """The instruction at `pc` (already cut) counts at the next flush."""
        block = self.block()
        if block is not None:
            one = [t - n for t, n in zip(block.tail(pc), block.tail(pc + 4), strict=True)]
            self.adjust = [a + o for a, o in zip(self.adjust, one, strict=True)]

    def flush(self) -> None:
        """Add the counted blocks' events to the vPMU, at the current exception level."""
        totals = self.adjust
        self.adjust = list(ZERO)
        blocks = self.blocks
        for addr, n in self.hits.items():
            for i, v in enumerate(blocks[addr].total):
                if v:
                    totals[i] += v * n
        self.hits.clear()
        # A cut can trail the flush that counted its block: carry what is below zero, so that
        # counters only move forwards and the sum stays exact.
        self.adjust = [min(t, 0) for t in totals]
        totals = [max(t, 0) for t in totals]
        self.instructions += totals[0]
        counts = {event: n for event, n in zip(EVENTS, totals, strict=True) if n}
        if counts:
            self.vpmu.count(self.el, counts)

    def retire(self, block: Block) -> None:
        """Instructions the engine carried out itself count at the next flush."""
        self.adjust = [a + t for a, t in zip(self.adjust, block.total, strict=True)]

    def add(self, block: Block, times: int) -> None:
        """`times` passes of `block` at once (a spin loop fast-forwarded), flushed."""
        self.flush()
        self.adjust = [v * times for v in block.total]
        self.flush()
