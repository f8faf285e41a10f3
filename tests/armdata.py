"""Where Arm's public PMU data (ARM-software/data, read-only, not part of the project) lives."""

import os
from pathlib import Path

import pytest

_CANDIDATES = [
    os.environ.get("KVMPMU_ARM_DATA", ""),
    str(Path(__file__).resolve().parents[2] / "shared" / "arm-pmu-data"),  # ../shared beside us
    "/work/shared/arm-pmu-data",
]
ARM_DATA = next((Path(p) for p in _CANDIDATES if p and Path(p).is_dir()), Path(_CANDIDATES[1]))

needs_arm_data = pytest.mark.skipif(
    not ARM_DATA.is_dir(),
    reason="Arm's PMU data (ARM-software/data) not found: set KVMPMU_ARM_DATA to its pmu folder")
