"""The guest's result, carried to the host as framed lines on the serial console.

The console also carries kernel messages, so every line starts with a marker and the boot's
nonce (given on the kernel command line: no kernel message contains it), and the frame ends
with the count of lines and a CRC-32: a line torn by a kernel message is detected, not misread.
The result is JSON, zlib-compressed (a corpus's JSON shrinks ~10x) and base64-encoded.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from typing import Any

MARKER = "@realkvm"
NONCE_ENV = "REALKVM_NONCE"
LINE_CHARS = 512


class ChannelError(Exception):
    """The console holds no complete, intact frame for this nonce."""


class NoResult(ChannelError):
    """Not one line of the frame: the guest died or never got to send it."""


class Garbled(ChannelError):
    """Part of the frame, torn, cut short or failing its CRC."""


def encode(result: dict[str, Any], nonce: str) -> str:
    """The frame for `result`: data lines, then an end line with count and CRC."""
    packed = zlib.compress(json.dumps(result).encode(), 6)
    text = base64.b64encode(packed).decode()
    chunks = [text[i : i + LINE_CHARS] for i in range(0, len(text), LINE_CHARS)]
    lines = [f"{MARKER} {nonce} {index} {chunk}" for index, chunk in enumerate(chunks)]
    lines.append(f"{MARKER} {nonce} end {len(chunks)} {zlib.crc32(packed):08x}")
    # Start on a fresh line whatever the console held before.
    return "\n" + "\n".join(lines) + "\n"


def decode(console: str, nonce: str) -> dict[str, Any]:
    """The result in the console output of a boot; ChannelError if absent or damaged."""
    data_line = re.compile(rf"{MARKER} {re.escape(nonce)} (\d+) ([A-Za-z0-9+/=]+)$")
    end_line = re.compile(rf"{MARKER} {re.escape(nonce)} end (\d+) ([0-9a-f]{{8}})$")
    chunks: dict[int, str] = {}
    for raw in console.splitlines():
        line = raw.rstrip("\r")
        end = end_line.search(line)
        if end:
            count, crc = int(end.group(1)), int(end.group(2), 16)
            if sorted(chunks) != list(range(count)):
                raise Garbled(f"result frame has {len(chunks)} intact lines of {count}")
            packed = base64.b64decode("".join(chunks[i] for i in range(count)))
            if zlib.crc32(packed) != crc:
                raise Garbled("result frame fails its CRC (a line was torn)")
            decoded: dict[str, Any] = json.loads(zlib.decompress(packed))
            return decoded
        data = data_line.search(line)
        if data:
            chunks[int(data.group(1))] = data.group(2)
    if chunks:
        raise Garbled("result frame has no end line (output cut short)")
    raise NoResult("no result on the console")
