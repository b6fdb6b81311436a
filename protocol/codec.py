"""The two encodings of the live protocol, and server-side WebSocket framing.

Server frames are unmasked, so one encoded frame can be written unchanged to
every socket of the same encoding: encode once, frame once, write many.
"""

from __future__ import annotations

import json
import math
import re
import struct
from enum import Enum
from itertools import accumulate
from typing import Any

import msgpack

JSON_SUBPROTOCOL = "seda.v1.json"
MSGPACK_SUBPROTOCOL = "seda.v1.msgpack"
# A browser cannot set headers on a WebSocket upgrade: it may offer its bearer token as the
# subprotocol ``seda.token.<JWT>`` beside an encoding (never chosen by the server), which keeps the
# token out of URLs and so out of logs.
TOKEN_SUBPROTOCOL_PREFIX = "seda.token."

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


# What a client frame may hold (PROTOCOL.md "Errors": anything else is a bad_request, and the
# socket stays open). The limits are checked before or while parsing, never by catching a
# RecursionError: a cheap scan bounds the nesting before json.loads recurses at all.
MAX_DEPTH = 32
MIN_INT = -(1 << 63)
MAX_INT = (1 << 64) - 1  # what MessagePack itself can carry (uint64)
_MAX_INT_DIGITS = 20  # len(str(MIN_INT)): a longer literal is out of range before int() is tried

_TOO_DEEP = f"frame nests deeper than {MAX_DEPTH} levels"
_INT_RANGE = "frame holds an integer outside the 64-bit range"
_NOT_FINITE = "frame holds NaN or Infinity"

# JSON strings (escapes included) are cut out, then every byte that is not a bracket; the depth is
# the highest running count of openers minus closers. An unterminated string runs to the end of
# the text: every match attempt succeeds, so the scan stays linear (a pattern that had to find the
# closing quote failed from each later quote in turn: quadratic, 14 s for one crafted 64 KiB frame).
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1


def json_nests_deeper(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON text nests deeper than ``limit``.

    In C but for one step per bracket: a text with at most ``limit`` brackets in all cannot
    nest deeper (the common frame: two counts). Otherwise strings are cut out and the highest
    running count of open brackets is the depth. For invalid JSON it bounds how deep a parser
    recurses before it fails (an unterminated string's brackets count too, which can only
    overstate it).
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    brackets = _JSON_STRING.sub("", text).encode(errors="surrogatepass").translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > limit


def _json_int(literal: str) -> int:
    value = int(literal) if len(literal) <= _MAX_INT_DIGITS else MAX_INT + 1
    if len(literal) > 18 and not MIN_INT <= value <= MAX_INT:  # 18 digits always fit
        raise DecodeError(_INT_RANGE)
    return value


def _json_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):  # 1e999 overflows to inf
        raise DecodeError(_NOT_FINITE)
    return value


def _json_constant(name: str) -> Any:
    raise DecodeError(_NOT_FINITE)


_JSON_DECODER = json.JSONDecoder(parse_int=_json_int, parse_float=_json_float, parse_constant=_json_constant)


def _no_ext(code: int, data: bytes) -> Any:
    raise DecodeError("frame holds a MessagePack extension type")


_PLAIN = frozenset({str, int, bool, type(None), bytes})


def _check_unpacked(value: Any, depth: int = 1) -> None:
    """Nesting, map keys and floats of an unpacked MessagePack value. It recurses, but never
    past MAX_DEPTH + 1 calls (the C unpacker itself stops at 1024 levels)."""
    kind = type(value)
    if kind is dict:
        if depth > MAX_DEPTH:
            raise DecodeError(_TOO_DEEP)
        for key, child in value.items():
            if type(key) is not str:
                raise DecodeError("frame has a map key that is not a string")
            if type(child) not in _PLAIN:
                _check_unpacked(child, depth + 1)
    elif kind is list:
        if depth > MAX_DEPTH:
            raise DecodeError(_TOO_DEEP)
        for child in value:
            if type(child) not in _PLAIN:
                _check_unpacked(child, depth + 1)
    elif kind is float:
        if not math.isfinite(value):
            raise DecodeError(_NOT_FINITE)
    elif kind not in _PLAIN:  # msgpack.Timestamp: extension -1 does not go through ext_hook
        raise DecodeError("frame holds a MessagePack extension type")


def encode(message: dict[str, Any], encoding: Encoding) -> bytes:
    if encoding is Encoding.JSON:
        return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
    packed: bytes = msgpack.packb(message, use_bin_type=True)
    return packed


def decode(payload: str | bytes, encoding: Encoding) -> Any:
    """A client frame's content. JSON connections send text frames, msgpack ones binary.

    Raises DecodeError for anything PROTOCOL.md does not allow in a message: nesting deeper
    than MAX_DEPTH, NaN or Infinity, integers outside 64 bits, MessagePack extension types
    and map keys that are not strings.
    """
    if encoding is Encoding.JSON:
        if isinstance(payload, bytes):
            raise DecodeError("this connection speaks seda.v1.json: send text frames")
        if json_nests_deeper(payload):
            raise DecodeError(_TOO_DEEP)
        try:
            return _JSON_DECODER.decode(payload)
        except DecodeError:
            raise
        except ValueError:
            raise DecodeError("frame is not valid JSON") from None
    if isinstance(payload, str):
        raise DecodeError("this connection speaks seda.v1.msgpack: send binary frames")
    try:
        value = msgpack.unpackb(payload, raw=False, strict_map_key=True, ext_hook=_no_ext)
    except DecodeError:
        raise
    except msgpack.StackError:
        raise DecodeError(_TOO_DEEP) from None
    except (ValueError, msgpack.UnpackException, msgpack.ExtraData, TypeError):
        raise DecodeError("frame is not valid MessagePack") from None
    _check_unpacked(value)
    return value


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
