"""The two encodings of the live protocol, and server-side WebSocket framing.

Server frames are unmasked, so one encoded frame can be written unchanged to
every socket of the same encoding: encode once, frame once, write many.
"""

from __future__ import annotations

import json
import struct
from enum import Enum
from typing import Any

import msgpack

JSON_SUBPROTOCOL = "seda.v1.json"
MSGPACK_SUBPROTOCOL = "seda.v1.msgpack"

_OP_TEXT = 0x1
_OP_BINARY = 0x2


class Encoding(Enum):
    JSON = "json"
    MSGPACK = "msgpack"

    @classmethod
    def negotiate(cls, offered: tuple[str, ...] | list[str]) -> tuple[Encoding, str | None]:
        """The encoding and the subprotocol to answer with, from what the client offered."""
        if MSGPACK_SUBPROTOCOL in offered:
            return cls.MSGPACK, MSGPACK_SUBPROTOCOL
        if JSON_SUBPROTOCOL in offered:
            return cls.JSON, JSON_SUBPROTOCOL
        return cls.JSON, None


class DecodeError(ValueError):
    """The frame is not a message in this connection's encoding."""


def encode(message: dict[str, Any], encoding: Encoding) -> bytes:
    if encoding is Encoding.JSON:
        return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
    packed: bytes = msgpack.packb(message, use_bin_type=True)
    return packed


def decode(payload: str | bytes, encoding: Encoding) -> Any:
    """A client frame's content. JSON connections send text frames, msgpack ones binary."""
    if encoding is Encoding.JSON:
        if isinstance(payload, bytes):
            raise DecodeError("this connection speaks seda.v1.json: send text frames")
        try:
            return json.loads(payload)
        except ValueError:
            raise DecodeError("frame is not valid JSON") from None
    if isinstance(payload, str):
        raise DecodeError("this connection speaks seda.v1.msgpack: send binary frames")
    try:
        return msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except (ValueError, msgpack.UnpackException, msgpack.ExtraData, TypeError):
        raise DecodeError("frame is not valid MessagePack") from None


def frame(payload: bytes, encoding: Encoding) -> bytes:
    """A complete, unmasked, final WebSocket frame carrying ``payload`` (RFC 6455 §5.2)."""
    opcode = _OP_TEXT if encoding is Encoding.JSON else _OP_BINARY
    first = 0x80 | opcode
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", first, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", first, 126, size)
    else:
        header = struct.pack("!BBQ", first, 127, size)
    return header + payload


def encode_frame(message: dict[str, Any], encoding: Encoding) -> bytes:
    return frame(encode(message, encoding), encoding)
