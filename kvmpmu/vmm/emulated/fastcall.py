"""Unicorn's C API called directly on the two paths that run per block: the block hook goes in
without the binding's per-call Python wrapper, and uc_emu_start is called without releasing
the GIL, so that each callback need not take it back. Both cost more than the counting."""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

from kvmpmu.vmm.emulated.extra import need

BLOCK_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32,
                                  ctypes.c_void_p)
BlockHook = Callable[[int | None, int, int, int | None], None]


class FastCalls:
    def __init__(self, uc: Any) -> None:
        self.uc = uc
        self._unicorn = need("unicorn")
        self._binding = need("unicorn.unicorn_py3.unicorn")
        library = ctypes.PyDLL(self._binding.uclib._name)
        self._emu_start = library.uc_emu_start
        self._emu_start.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64,
                                    ctypes.c_uint64, ctypes.c_size_t]
        self._emu_start.restype = ctypes.c_int
        self._callbacks: list[Any] = []  # kept alive as long as unicorn may call them

    def add_block_hook(self, hook: BlockHook) -> None:
        callback = BLOCK_CALLBACK(hook)
        handle = self._binding.uc_hook_h()
        status = self._binding.uclib.uc_hook_add(
            self.uc._uch, ctypes.byref(handle), self._unicorn.UC_HOOK_BLOCK, callback, None,
            ctypes.c_uint64(1), ctypes.c_uint64(0))
        if status != self._unicorn.UC_ERR_OK:
            raise self._unicorn.UcError(status)
        self._callbacks.append(callback)

    def emu_start(self, begin: int, until: int, count: int) -> None:
        """As Uc.emu_start: an error becomes UcError, an exception a hook raised is raised."""
        self.uc._hook_exception = None
        status = self._emu_start(self.uc._uch, begin, until, 0, count)
        if status != self._unicorn.UC_ERR_OK:
            raise self._unicorn.UcError(status)
        if self.uc._hook_exception is not None:
            raise self.uc._hook_exception
