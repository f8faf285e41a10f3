"""Assemble each guest's .S into the .bin beside it (load address 0x40080000).

    .venv/bin/python configs/guests/build.py     # needs the `guest` extra (keystone-engine)
"""

from pathlib import Path

from kvmpmu.spec.guestspec import DEFAULT_LOAD
from kvmpmu.vmm.emulated.assembler import assemble

for source in sorted(Path(__file__).parent.glob("*.S")):
    code = assemble(source.read_text(), DEFAULT_LOAD, str(source))
    source.with_suffix(".bin").write_bytes(code)
    print(f"{source.with_suffix('.bin')}: {len(code)} bytes")
