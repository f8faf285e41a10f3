"""Files shipped with kvmpmu: the event catalog, scenarios, specs and JSON Schemas."""

import os
from typing import Any


def read_bytes(name: str) -> bytes:
    """A shipped file, read through this package's loader (as pkgutil.get_data does, so that a
    zipped install works too) without importlib.resources' import cost at start-up."""
    loader: Any = __spec__.loader
    data: bytes = loader.get_data(os.path.join(os.path.dirname(__file__), name))
    return data
