"""Reading unmasked server frames back, for tests that stand in for a socket."""

from __future__ import annotations

import struct


def unframe(data: bytes) -> list[bytes]:
    """The payloads of the whole WebSocket frames in ``data``, in order (one write may hold many)."""
    payloads: list[bytes] = []
    at = 0
    while at < len(data):
        length = data[at + 1] & 0x7F
        at += 2
        if length == 126:
            (length,) = struct.unpack_from("!H", data, at)
            at += 2
        elif length == 127:
            (length,) = struct.unpack_from("!Q", data, at)
            at += 8
        payloads.append(data[at : at + length])
        at += length
    return payloads
