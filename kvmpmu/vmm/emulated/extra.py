"""The optional `guest` extra: unicorn, capstone, keystone-engine, pyelftools."""

from __future__ import annotations

import importlib
from types import ModuleType

from kvmpmu.errors import GuestError

EXTRA_HINT = "install the extra: pip install 'kvmpmu[guest]' (make install does)"


def need(module: str) -> ModuleType:
    """Import a module of the extra, or fail with a message naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise GuestError(f"a guest program needs the Python package providing {module!r}",
                         hint=EXTRA_HINT) from None
