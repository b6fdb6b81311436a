"""Decoding limits (issue 15): what a client frame may hold, checked before or while parsing.

Nesting deeper than 32 levels, NaN and Infinity, integers outside 64 bits, MessagePack
extension types and map keys that are not strings are a DecodeError (the connection answers
bad_request naming "frame" and stays open); never a RecursionError, whatever the input.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.codec import (
    MAX_DEPTH,
    MAX_INT,
    MIN_INT,
    DecodeError,
    Encoding,
    decode,
    encode,
    json_nests_deeper,
)


def depth(value: Any) -> int:
    """Levels of arrays and maps: a scalar is 0, {"a": 1} is 1, [[1]] is 2."""
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


def nested(levels: int, leaf: Any = 1, *, maps: bool = False) -> Any:
    value = leaf
    for n in range(levels):
        value = {"k": value} if maps and n % 2 else [value]
    return value


def msgpack_nested(levels: int) -> bytes:
    """``levels`` arrays of one, packed by hand (the packer itself would refuse very deep ones)."""
    return b"\x91" * levels + b"\x01"


def wire(message: dict[str, Any], encoding: Encoding) -> str | bytes:
    """What a client of that encoding sends: a text frame's str or a binary frame's bytes."""
    payload = encode(message, encoding)
    return payload.decode() if encoding is Encoding.JSON else payload


def assert_refused(payload: str | bytes, encoding: Encoding, words: str) -> None:
    with pytest.raises(DecodeError) as refused:
        decode(payload, encoding)
    assert words in str(refused.value), str(refused.value)


# ---- nesting --------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", list(Encoding))
@pytest.mark.parametrize("maps", [False, True])
def test_32_levels_decode_and_33_are_refused(encoding: Encoding, maps: bool) -> None:
    deepest = {"op": "ping", "data": nested(MAX_DEPTH - 1, maps=maps)}
    assert depth(deepest) == MAX_DEPTH
    assert (
        decode(
            encode(deepest, encoding).decode() if encoding is Encoding.JSON else encode(deepest, encoding),
            encoding,
        )
        == deepest
    )
    too_deep = {"op": "ping", "data": nested(MAX_DEPTH, maps=maps)}
    payload = encode(too_deep, encoding)
    assert_refused(payload.decode() if encoding is Encoding.JSON else payload, encoding, "deeper than 32")


@pytest.mark.parametrize("levels", [33, 1000, 10_000, 60_000])
def test_the_frame_that_killed_the_process_is_a_decode_error(levels: int) -> None:
    assert_refused("[" * levels + "]" * levels, Encoding.JSON, "deeper than 32")
    assert_refused("[" * levels, Encoding.JSON, "deeper than 32")  # unclosed: bounded all the same
    assert_refused('{"a":' * levels + "1" + "}" * levels, Encoding.JSON, "deeper than 32")
    assert_refused(msgpack_nested(levels), Encoding.MSGPACK, "deeper than 32")


def test_brackets_inside_strings_are_text() -> None:
    text = "[" * 500 + '\\"{' * 100 + "]" * 3
    message = {"op": "chat.send", "data": {"text": text}}
    assert decode(json.dumps(message), Encoding.JSON) == message
    assert decode(json.dumps(message, ensure_ascii=False), Encoding.JSON) == message
    assert decode(encode(message, Encoding.MSGPACK), Encoding.MSGPACK) == message


@pytest.mark.parametrize(
    "tail",
    [
        '"' + '\\"' * 32_000,  # an unterminated string of escaped quotes
        '"' * 64_000,  # quote after quote
        '"\\' * 21_000,  # quotes and lone backslashes
        '["' + "\\u" * 21_000,  # unfinished escapes
    ],
    ids=["escaped-quotes", "quotes", "backslashes", "unicode-escapes"],
)
def test_a_crafted_64_kib_frame_is_scanned_in_linear_time(tail: str) -> None:
    """The depth scan runs on the event loop: one frame must not stall every room.

    A string pattern that had to find its closing quote was retried from each later quote,
    14 s for the first of these frames; linear, each takes milliseconds. The bound is loose
    (a loaded CI core), far below what the quadratic scan took.
    """
    text = "[" * (MAX_DEPTH + 1) + tail
    assert len(text) <= 64 * 1024
    started = time.perf_counter()
    with contextlib.suppress(DecodeError):
        decode(text, Encoding.JSON)
    assert time.perf_counter() - started < 0.5


def test_malformed_json_is_refused_without_recursing() -> None:
    for payload in ['["' + "[" * 1000, "[" * 40 + '"' + "]" * 40, "]" * 50 + "[" * 50, "[{" * 40 + "}]" * 40]:
        with pytest.raises(DecodeError):
            decode(payload, Encoding.JSON)


# A JSON value of any shape, nesting up to about 40 levels.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(MIN_INT, MAX_INT)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=60,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values, wrap=st.integers(0, 40))
def test_json_depth_check_agrees_with_the_real_depth(value: Any, wrap: int) -> None:
    value = nested(wrap, value)
    text = json.dumps(value)
    assert json_nests_deeper(text) == (depth(value) > MAX_DEPTH)
    if depth(value) > MAX_DEPTH:
        assert_refused(text, Encoding.JSON, "deeper than 32")
    else:
        assert decode(text, Encoding.JSON) == json.loads(text)


@settings(max_examples=300, deadline=None)
@given(value=json_values, wrap=st.integers(0, 40))
def test_msgpack_depth_check_agrees_with_the_real_depth(value: Any, wrap: int) -> None:
    value = nested(wrap, value)
    packed = msgpack.packb(value, use_bin_type=True)
    if depth(value) > MAX_DEPTH:
        assert_refused(packed, Encoding.MSGPACK, "deeper than 32")
    else:
        assert decode(packed, Encoding.MSGPACK) == msgpack.unpackb(packed, raw=False)


# Text that looks like JSON: brackets, quotes, escapes and numbers in any order.
jsonish = st.text(alphabet='[]{}",:\\ 0123456789.eE-+aNInfityltrusefn\u00e9\ud800', max_size=400)


@settings(max_examples=500, deadline=None)
@given(text=jsonish | st.text(max_size=200))
def test_any_text_decodes_or_is_a_decode_error(text: str) -> None:
    with contextlib.suppress(DecodeError):
        decode(text, Encoding.JSON)


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=400))
def test_any_bytes_decode_or_are_a_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode(data, Encoding.MSGPACK)


# ---- numbers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1e400"])
def test_nan_and_infinity_are_refused_in_json(literal: str) -> None:
    assert_refused(f'{{"op":"ping","data":{{"x":{literal}}}}}', Encoding.JSON, "NaN or Infinity")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused_in_msgpack(value: float) -> None:
    assert_refused(msgpack.packb({"op": "ping", "data": {"x": [value]}}), Encoding.MSGPACK, "NaN or Infinity")


@pytest.mark.parametrize("literal", [str(MAX_INT + 1), str(MIN_INT - 1), "1" + "0" * 30, "-" + "9" * 5000])
def test_integers_beyond_64_bits_are_refused_in_json(literal: str) -> None:
    assert_refused(f'{{"op":"ping","ref":{literal}}}', Encoding.JSON, "64-bit")


@pytest.mark.parametrize("value", [MAX_INT, MIN_INT, 0, -1, 2**31 - 1])
def test_64_bit_integers_decode_in_both_encodings(value: int) -> None:
    message = {"op": "ping", "ref": value}
    assert decode(json.dumps(message), Encoding.JSON) == message
    assert decode(msgpack.packb(message), Encoding.MSGPACK) == message


# ---- MessagePack's own types ---------------------------------------------------------------------


def test_msgpack_extension_types_are_refused() -> None:
    assert_refused(
        msgpack.packb({"op": "ping", "data": msgpack.ExtType(5, b"x")}), Encoding.MSGPACK, "extension"
    )
    # Extension -1 (a timestamp) is unpacked without the ext hook; it is refused all the same.
    assert_refused(
        msgpack.packb({"op": "ping", "data": msgpack.Timestamp(1, 0)}), Encoding.MSGPACK, "extension"
    )


@pytest.mark.parametrize("key", [1, b"op", 1.5, None, True])
def test_msgpack_map_keys_must_be_strings(key: Any) -> None:
    packed = msgpack.packb({"op": "ping", "data": {key: 1}}, use_bin_type=True, strict_types=False)
    with pytest.raises(DecodeError):
        decode(packed, Encoding.MSGPACK)


def test_each_connection_speaks_its_own_frame_type() -> None:
    assert_refused(b'{"op":"ping"}', Encoding.JSON, "text frames")
    assert_refused('{"op":"ping"}', Encoding.MSGPACK, "binary frames")
