"""Hostile input on the live protocol, against the real gateway on a real socket (issue 15).

Every case gets its documented answer (PROTOCOL.md, and RFC 6455 below the protocol), and after
each one the server is unharmed: a fresh client in another room is welcomed and answered, REST
answers ``/healthz``, a listener in another room has received nothing, and for the bulk cases
the memory (tracemalloc) and file descriptors the burst took are given back.

How hypothesis runs here: one server per test function (the ``server`` fixture needs a trio run,
a fresh database and free ports; per-example servers would cost seconds each). Hypothesis runs
in a worker thread (``trio.to_thread.run_sync``) and each example is checked back in the test's
trio run with ``trio.from_thread.run``, so shrinking and the falsifying-example report work as
usual while every socket stays in the one trio run. The clients that send the frames are
written by hand (``tests/raw_ws.py``): they hold no task of their own, so a socket can outlive
the example that opened it. Examples are derandomized, without a database.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import itertools
import json
import math
import os
import re
import socket
import struct
import tracemalloc
import types
import typing
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import msgpack
import psutil
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import BaseModel

from protocol.ops import MAX_REF, OP_DATA, ChatSendData
from protocol.tracks import TrackInput
from server.config import Settings
from server.live.gateway import HANDSHAKE_TIMEOUT_S
from server.runtime import Bound
from tests.live_client import Live, Message
from tests.raw_ws import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    RawWs,
    client_frame,
    upgrade_request,
)

T = TypeVar("T")

MAX_FRAME = 64 * 1024
INVALID_LIMIT = Settings().invalid_frame_limit  # 20 within 10 s; the 21st closes 1008
INVALID_WINDOW_S = Settings().invalid_frame_window_s
REF = 4242
PING_REF = 7
INT64 = (-(2**63), 2**63 - 1)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Thousands of frames from one user: the per-user op limits out of the way (not under test here).
    return dataclasses.replace(
        settings, ops_per_second=1_000_000, chat_rate=1_000_000, chat_rate_window_s=1.0
    )


@pytest.fixture
def jump_clock() -> trio.testing.MockClock:
    """Real time, plus ``jump``: a test can let 10 s pass for the server's timers at once."""
    return trio.testing.MockClock(rate=1.0)


# ---- running hypothesis against the server in this trio run -------------------------------------

HYPOTHESIS = hypothesis_settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=(Phase.explicit, Phase.generate, Phase.shrink),
)


async def check_each(
    strategy: st.SearchStrategy[T], check: Callable[[T], Awaitable[None]], examples: int
) -> None:
    """``check`` (async, in this trio run) on ``examples`` values hypothesis draws from ``strategy``."""

    @hypothesis_settings(HYPOTHESIS, max_examples=examples)
    @given(strategy)
    def prop(value: T) -> None:
        trio.from_thread.run(check, value)

    await trio.to_thread.run_sync(prop)


class Failures:
    """Runs each case to its end (hypothesis shrinks each failure on its own) and fails the test
    once, at the end, listing every case that failed, so one report shows all of them."""

    def __init__(self) -> None:
        self.found: list[str] = []

    async def check(
        self, name: str, strategy: st.SearchStrategy[T], check: Callable[[T], Awaitable[None]], examples: int
    ) -> None:
        try:
            await check_each(strategy, check, examples)
        except Exception as exc:  # an assertion, a timeout, a broken socket: that case failed
            notes = " | ".join(n for n in getattr(exc, "__notes__", []) if "Failing test case" not in n)
            leaves = exc.exceptions if isinstance(exc, BaseExceptionGroup) else (exc,)
            summary = "; ".join(f"{type(e).__name__}: {e}"[:600] for e in leaves)
            self.found.append(f"{name}: {summary} [{notes[:600]}]")

    def assert_none(self) -> None:
        assert not self.found, f"{len(self.found)} failing case(s):\n" + "\n".join(self.found)


# ---- the world: a room to attack, a room that must see nothing, a room for fresh clients -------


@dataclass
class World:
    live: Live
    http: httpx.AsyncClient
    port: int
    token: str  # the hostile room's owner: every op is open to them, so a refusal is the frame's fault
    hostile: str
    quiet: str
    probe: str
    listener: RawWs  # another user, in the quiet room

    def path(self, room_id: str, token: str | None = None) -> str:
        return f"/ws/rooms/{room_id}" + (f"?token={token}" if token else "")

    async def attacker(self, encoding: str = "json", *, subprotocol: str | None = "") -> RawWs:
        """The owner's socket in the hostile room, its welcome read."""
        offered = (
            {"json": "seda.v1.json", "msgpack": "seda.v1.msgpack"}[encoding]
            if subprotocol == ""
            else subprotocol
        )
        ws = await RawWs.connect(self.port, self.path(self.hostile, self.token), subprotocol=offered)
        welcome = decode(await ws.recv_data(), encoding)
        assert welcome["type"] == "welcome", welcome
        return ws


@pytest.fixture
async def world(live: Live, http: httpx.AsyncClient, server: Bound) -> AsyncIterator[World]:
    owner, _ = await live.user()
    other, _ = await live.user()
    hostile = (await live.room(owner))["id"]
    quiet = (await live.room(other))["id"]
    probe = (await live.room(owner))["id"]
    listener = await RawWs.connect(
        server.live_port, f"/ws/rooms/{quiet}?token={other}", subprotocol="seda.v1.json"
    )
    assert decode(await listener.recv_data(), "json")["type"] == "welcome"
    yield World(live, http, server.live_port, owner, hostile, quiet, probe, listener)
    await listener.aclose()


def encode(message: Any, encoding: str) -> bytes:
    if encoding == "json":
        return json.dumps(message).encode()
    packed: bytes = msgpack.packb(message, use_bin_type=True)
    return packed


def decode(frame: Any, encoding: str) -> Message:
    assert frame.opcode == (OP_TEXT if encoding == "json" else OP_BINARY), frame
    decoded: Message = json.loads(frame.payload) if encoding == "json" else msgpack.unpackb(frame.payload)
    return decoded


def data_frame(payload: bytes, encoding: str) -> bytes:
    return client_frame(OP_TEXT if encoding == "json" else OP_BINARY, payload)


async def next_reply(ws: RawWs, encoding: str) -> Message:
    """The next reply on ``ws`` (events in between are passed over)."""
    while True:
        message = decode(await ws.recv_data(), encoding)
        if message.get("type") == "reply":
            return message


async def assert_answers_ping(ws: RawWs, encoding: str) -> None:
    await ws.send(data_frame(encode({"op": "ping", "ref": PING_REF}, encoding), encoding))
    pong = await next_reply(ws, encoding)
    assert pong["ok"] is True and pong["ref"] == PING_REF, pong
    assert isinstance(pong["data"]["ts"], int), pong


async def close_cleanly(ws: RawWs) -> None:
    await ws.send(client_frame(OP_CLOSE, struct.pack("!H", 1000)))
    ending = await ws.ending()
    assert ending.code == 1000, ending
    await ws.aclose()


async def assert_unharmed(world: World) -> None:
    """The server goes on: a fresh guest elsewhere is welcomed and answered, REST answers, and the
    listener in the quiet room got nothing at all (its ping's reply is the first thing it reads)."""
    guest = await RawWs.connect(world.port, world.path(world.probe), subprotocol="seda.v1.msgpack")
    welcome = decode(await guest.recv_data(), "msgpack")
    assert welcome["type"] == "welcome" and welcome["data"]["you"]["role"] == "guest", welcome
    await assert_answers_ping(guest, "msgpack")
    await close_cleanly(guest)
    assert (await world.http.get("/healthz")).status_code == 200
    await world.listener.send(data_frame(encode({"op": "ping", "ref": 99}, "json"), "json"))
    first = decode(await world.listener.recv_data(), "json")
    assert first.get("type") == "reply" and first.get("ref") == 99, f"the quiet room's listener saw {first}"


class Attacker:
    """The owner's socket in the hostile room, replaced before the invalid-frame limit closes it."""

    def __init__(self, world: World, encoding: str, *, subprotocol: str | None = "") -> None:
        self.world = world
        self.encoding = encoding
        self.subprotocol = subprotocol  # "": the encoding's own; None: none offered
        self.ws: RawWs | None = None
        self.invalid = 0

    async def socket(self) -> RawWs:
        if self.ws is not None and self.invalid >= INVALID_LIMIT:
            await close_cleanly(self.ws)
            self.ws = None
        if self.ws is None:
            self.ws = await self.world.attacker(self.encoding, subprotocol=self.subprotocol)
            self.invalid = 0
        return self.ws

    async def expect_bad_request(
        self, frame: bytes, *, refs: Sequence[int | None], field: str | None, what: object
    ) -> None:
        """Send ``frame``: one bad_request reply (its ref one of ``refs``, naming ``field``), and the
        socket stays open (a ping after it is answered)."""
        async with self.fresh_after_failure(what) as ws:
            await ws.send(frame)
            self.invalid += 1
            reply = await next_reply(ws, self.encoding)
            assert reply["ok"] is False and reply["error"]["code"] == "bad_request", (what, reply)
            assert reply["ref"] in refs, (what, reply)
            if field is not None:
                assert names(reply["error"], field), (what, reply)
            await assert_answers_ping(ws, self.encoding)

    async def expect_pong(self, payload: bytes, what: object) -> None:
        """Send ``payload`` in a frame of the socket's type: a ping (with REF) the server must answer."""
        async with self.fresh_after_failure(what) as ws:
            await ws.send(data_frame(payload, self.encoding))
            reply = await next_reply(ws, self.encoding)
            assert reply["ok"] is True and reply["ref"] == REF, (what, reply)

    @asynccontextmanager
    async def fresh_after_failure(self, what: object) -> AsyncIterator[RawWs]:
        """The socket; if the check fails, the next one starts on a new socket (so that hypothesis,
        shrinking, sees each example on its own and not the wreck of the one before)."""
        ws = await self.socket()
        try:
            yield ws
        except BaseException as exc:
            exc.add_note(f"the frame: {what!r}"[:2000])
            self.ws = None
            with trio.CancelScope(shield=True):
                await ws.aclose()
            raise

    async def close(self) -> None:
        if self.ws is not None:
            await close_cleanly(self.ws)


def names(error: Message, field: str) -> bool:
    """The error names ``field``: in details.field (it or a part of it), or in its message."""
    named = (error.get("details") or {}).get("field")
    if isinstance(named, str) and (named == field or named.startswith(field + ".")):
        return True
    return field in str(error.get("message"))


@contextmanager
def memory_watch(slack_bytes: int, fd_slack: int = 8) -> Iterator[None]:
    """What the block allocated (traced by tracemalloc) and the descriptors it opened are freed by
    its end, within ``slack_bytes`` and ``fd_slack``."""
    process = psutil.Process()
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        fds = process.num_fds()
        rss = process.memory_info().rss
        yield
        gc.collect()
        grown, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    detail = (
        f"traced {grown - base} B more than before (peak {peak - base} B), "
        f"fds {fds} -> {process.num_fds()}, rss {rss >> 20} -> {process.memory_info().rss >> 20} MiB"
    )
    assert grown - base < slack_bytes, detail
    assert process.num_fds() <= fds + fd_slack, detail


# ---- 1. every op, each field missing, mistyped or out of bounds ---------------------------------

MISSING = object()


@dataclass(frozen=True)
class FieldSpec:
    """One field of an op's data, as its pydantic model declares it."""

    path: str  # dotted, within data
    kind: str  # str, uuid, literal, int, float, bool, model
    required: bool
    nullable: bool
    choices: tuple[str, ...] = ()
    min_len: int | None = None
    max_len: int | None = None
    ge: float | None = None
    le: float | None = None
    pattern: str | None = None
    trimmed: bool = False
    model: type[BaseModel] | None = None


# What a field validator enforces (and the model's metadata cannot show).
VALIDATOR_BOUNDS: dict[tuple[type[BaseModel], str], dict[str, Any]] = {
    (ChatSendData, "text"): {"min_len": 1, "max_len": 2000, "trimmed": True},
}
# What a model validator needs besides the required fields: a track is given by provider id.
MODEL_BASE: dict[type[BaseModel], dict[str, Any]] = {
    TrackInput: {"provider": "deezer", "provider_id": "3135556"},
}
# Fields given instead of others: a track by url has no provider nor provider_id.
INSTEAD_OF: dict[type[BaseModel], dict[str, tuple[str, ...]]] = {
    TrackInput: {"url": ("provider", "provider_id")},
}
SOME_UUID = "5f0c8e3e-2b7a-4c1e-9a53-6a1d2f8b9c10"
VALID_STR = {"url": "https://www.deezer.com/track/3135556"}  # where "x" is not a valid value


def _constraints(items: Sequence[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in items:
        inner = getattr(item, "metadata", None)
        if isinstance(inner, list) and not hasattr(item, "min_length"):  # a FieldInfo inside Annotated
            found.update(_constraints(inner))
            continue
        for attr, key in (("min_length", "min_len"), ("max_length", "max_len"), ("ge", "ge"), ("le", "le")):
            if getattr(item, attr, None) is not None:
                found[key] = getattr(item, attr)
        if getattr(item, "pattern", None) is not None:
            found["pattern"] = item.pattern
    return found


def fields_of(model: type[BaseModel], prefix: str = "") -> list[FieldSpec]:
    """Every field of ``model``, nested models' fields included, from its pydantic declaration."""
    specs: list[FieldSpec] = []
    for name, info in model.model_fields.items():
        annotation: Any = info.annotation
        metadata: list[Any] = list(info.metadata)
        nullable = False
        if typing.get_origin(annotation) in (typing.Union, types.UnionType):
            args = typing.get_args(annotation)
            nullable = type(None) in args
            (annotation,) = [a for a in args if a is not type(None)]
        if typing.get_origin(annotation) is typing.Annotated:
            annotation, *extra = typing.get_args(annotation)
            metadata += extra
        found = _constraints(metadata) | VALIDATOR_BOUNDS.get((model, name), {})
        path = f"{prefix}{name}"
        required = info.is_required()
        if typing.get_origin(annotation) is typing.Literal:
            specs.append(FieldSpec(path, "literal", required, nullable, typing.get_args(annotation), **found))
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            specs.append(FieldSpec(path, "model", required, nullable, model=annotation))
            specs += fields_of(annotation, f"{path}.")
        else:
            kind = {str: "str", uuid.UUID: "uuid", int: "int", float: "float", bool: "bool"}[annotation]
            specs.append(FieldSpec(path, kind, required, nullable, **found))
    return specs


def base_of(model: type[BaseModel]) -> dict[str, Any]:
    """A valid data map for ``model`` with only its required fields (and what its validator needs)."""
    base: dict[str, Any] = dict(MODEL_BASE.get(model, {}))
    for spec in fields_of(model):
        if not spec.required or "." in spec.path:
            continue
        if spec.kind == "model":
            assert spec.model is not None
            base[spec.path] = base_of(spec.model)
        else:
            base[spec.path] = {
                "str": "x" * (spec.min_len or 1),
                "uuid": SOME_UUID,
                "literal": spec.choices[0] if spec.choices else "",
                "int": int(spec.ge) if spec.ge is not None else 1,
                "float": float(spec.ge) if spec.ge is not None else 0.5,
                "bool": False,
            }[spec.kind]
    return base


def with_field(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``data`` with ``path`` set to ``value`` (or removed, for MISSING)."""
    head, _, rest = path.partition(".")
    out = dict(data)
    if rest:
        out[head] = with_field(dict(out.get(head) or {}), rest, value)
    elif value is MISSING:
        out.pop(head, None)
    else:
        out[head] = value
    return out


def numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


scalars = (
    st.none()
    | st.booleans()
    | st.integers(*INT64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
lists = st.lists(json_values, max_size=3)
dicts = st.dictionaries(st.text(max_size=6), json_values, max_size=3)
non_numeric_text = st.text(max_size=12).filter(lambda s: not numeric(s))
finite = st.floats(allow_nan=False, allow_infinity=False)
non_integral = st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not x.is_integer())


def repeated(min_len: int, max_len: int, *, ascii: bool = False) -> st.SearchStrategy[str]:
    """Strings of a length in [min_len, max_len], of non-space characters, made by repetition
    (hypothesis would not draw thousands of characters one by one)."""
    chars = (
        st.characters(min_codepoint=0x21, max_codepoint=0x7E)
        if ascii
        else st.characters(categories=("L", "N", "P", "S"))
    )
    unit = st.text(chars, min_size=1, max_size=4)
    return st.tuples(unit, st.integers(min_len, max_len)).map(lambda t: (t[0] * t[1])[: t[1]])


def faults(spec: FieldSpec, encoding: str) -> dict[str, st.SearchStrategy[Any]]:
    """Values that make ``spec`` wrong, by kind of fault (never a value of a lookalike type, below)."""
    out: dict[str, st.SearchStrategy[Any]] = {}
    none = st.nothing() if spec.nullable else st.none()
    if spec.required:
        out["missing"] = st.just(MISSING)
    if spec.kind in ("str", "uuid", "literal"):
        out["mistyped"] = (
            none
            | st.booleans()
            | st.integers(*INT64)
            | st.floats(allow_nan=False, allow_infinity=False)
            | lists
            | dicts
        )
        bad_chars = ["\x00", "\ud800", "\udfff"] if encoding == "json" else ["\x00"]
        out["unstorable"] = st.tuples(
            st.text(max_size=4), st.sampled_from(bad_chars), st.text(max_size=4)
        ).map("".join)
    elif spec.kind == "int":
        out["mistyped"] = none | non_numeric_text | non_integral | lists | dicts
    elif spec.kind == "float":
        out["mistyped"] = none | non_numeric_text | lists | dicts
    elif spec.kind == "bool":
        out["mistyped"] = (
            none | st.integers(*INT64).filter(lambda n: n not in (0, 1)) | non_numeric_text | lists | dicts
        )
    elif spec.kind == "model":
        out["mistyped"] = none | st.booleans() | st.integers(*INT64) | st.text(max_size=12) | lists
        assert spec.model is not None
        if spec.model.model_config.get("extra") == "forbid":
            known = set(spec.model.model_fields)
            base = base_of(spec.model)
            out["unknown_key"] = st.dictionaries(
                st.text(min_size=1, max_size=8).filter(lambda k: k not in known),
                scalars,
                min_size=1,
                max_size=2,
            ).map(lambda extra: {**base, **extra})
    if spec.kind == "uuid":
        out["malformed"] = st.text(max_size=40).filter(lambda s: not is_uuid(s))
    if spec.kind == "literal":
        out["malformed"] = st.text(max_size=16).filter(lambda s: s not in spec.choices)
    if spec.pattern is not None:
        pattern = re.compile(spec.pattern)
        out["malformed"] = (st.text(max_size=30) | st.just("http://example.com/a.png")).filter(
            lambda s: not pattern.search(s)
        )
    if spec.max_len is not None:
        out["oversized"] = repeated(spec.max_len + 1, spec.max_len + 300)
    if spec.min_len:
        out["undersized"] = (
            st.text(" \t\n\r\u3000\u2003", max_size=8) if spec.trimmed else st.just("x" * (spec.min_len - 1))
        )
    if spec.kind == "int" and spec.le is not None:
        out["above"] = st.integers(int(spec.le) + 1, INT64[1])
    if spec.kind == "int" and spec.ge is not None:
        out["below"] = st.integers(INT64[0], int(spec.ge) - 1)
    if spec.kind == "float" and spec.le is not None:
        out["above"] = st.floats(min_value=spec.le, exclude_min=True, allow_infinity=False)
    if spec.kind == "float" and spec.ge is not None:
        out["below"] = st.floats(max_value=spec.ge, exclude_max=True, allow_infinity=False)
    return out


def lookalikes(spec: FieldSpec, encoding: str) -> dict[str, st.SearchStrategy[Any]]:
    """Values of another type that look like a valid one: a number in a string, a whole number as
    a float, a boolean for a number, MessagePack bytes for a string. Ill-typed all the same."""
    out: dict[str, st.SearchStrategy[Any]] = {}
    if spec.kind == "int":
        lo, hi = int(spec.ge if spec.ge is not None else 1), int(spec.le if spec.le is not None else 1000)
        out["numeric_string"] = st.integers(lo, hi).map(str)
        out["integral_float"] = st.integers(lo, hi).map(float)
        out["boolean"] = st.just(True) if lo <= 1 <= hi else st.booleans()
    if spec.kind == "float":
        lo_f, hi_f = spec.ge if spec.ge is not None else 0.0, spec.le if spec.le is not None else 1.0
        out["numeric_string"] = st.floats(lo_f, hi_f).map(str)
        out["boolean"] = st.just(True) if lo_f <= 1 <= hi_f else st.booleans()
    if spec.kind == "bool":
        out["number"] = st.sampled_from([0, 1])
        out["string"] = st.sampled_from(["true", "false", "1", "0"])
    if spec.kind == "str" and encoding == "msgpack" and spec.pattern is None:
        valid = VALID_STR.get(spec.path.rpartition(".")[2], "x" * max(spec.min_len or 1, 1))
        out["bytes"] = st.just(valid.encode())
    return out


@dataclass(frozen=True)
class Case:
    label: str
    field: str | None
    refs: tuple[int | None, ...]
    message: st.SearchStrategy[Any]


def message_with(op: str, base: dict[str, Any], path: str) -> Callable[[Any], dict[str, Any]]:
    """The message for ``op`` whose data is ``base`` with ``path`` set to (or, MISSING, without) a value."""
    return lambda value: {"op": op, "ref": REF, "data": with_field(base, path, value)}


def field_cases(
    encoding: str, which: Callable[[FieldSpec, str], dict[str, st.SearchStrategy[Any]]]
) -> list[Case]:
    cases: list[Case] = []
    for op, model in OP_DATA.items():
        specs = fields_of(model)
        models = {s.path: s.model for s in specs if s.model is not None}
        for spec in specs:
            base = base_of(model)
            parent = spec.path.rpartition(".")[0]
            if parent and parent not in base:  # an optional track, say: present, so its field can be wrong
                base[parent] = base_of(models[parent])
            if parent:  # a field given instead of others: those others go
                name = spec.path.rpartition(".")[2]
                for other in INSTEAD_OF.get(models[parent] or BaseModel, {}).get(name, ()):
                    base = with_field(base, f"{parent}.{other}", MISSING)
            for fault, values in which(spec, encoding).items():
                message = values.map(message_with(op, base, spec.path))
                cases.append(Case(f"{op} data.{spec.path} {fault}", spec.path, (REF,), message))
    return cases


def envelope_cases() -> list[Case]:
    ops = st.sampled_from(sorted(OP_DATA))
    bases = ops.map(lambda op: {"op": op, "ref": REF, "data": base_of(OP_DATA[op])})
    not_an_op = st.text(max_size=30).filter(lambda s: s not in OP_DATA)
    return [
        Case("op missing", "op", (REF,), bases.map(lambda m: with_field(m, "op", MISSING))),
        Case(
            "op mistyped",
            "op",
            (REF,),
            st.tuples(bases, st.none() | st.booleans() | st.integers(*INT64) | lists | dicts).map(
                lambda t: {**t[0], "op": t[1]}
            ),
        ),
        Case("op unknown", "op", (REF,), st.tuples(bases, not_an_op).map(lambda t: {**t[0], "op": t[1]})),
        Case(
            "op oversized",
            "op",
            (REF,),
            st.tuples(bases, repeated(10_000, 60_000, ascii=True)).map(lambda t: {**t[0], "op": t[1]}),
        ),
        Case(
            "ref mistyped",
            "ref",
            (None,),
            st.tuples(
                bases,
                st.booleans()
                | st.text(max_size=8)
                | non_integral
                | st.integers(1, 9).map(float)
                | lists
                | dicts,
            ).map(lambda t: {**t[0], "ref": t[1]}),
        ),
        Case(
            "ref out of range",
            "ref",
            (None,),
            st.tuples(bases, st.integers(INT64[0], 0) | st.integers(MAX_REF + 1, INT64[1])).map(
                lambda t: {**t[0], "ref": t[1]}
            ),
        ),
        Case(
            "data mistyped",
            "data",
            (REF,),
            st.tuples(bases, st.booleans() | st.integers(*INT64) | finite | st.text(max_size=8) | lists).map(
                lambda t: {**t[0], "data": t[1]}
            ),
        ),
    ]


def test_the_generated_bases_are_valid() -> None:
    """Each fault case changes one field of a valid message: the bases themselves must pass."""
    for model in OP_DATA.values():
        model.model_validate(base_of(model))
    assert {s.path for s in fields_of(OP_DATA["queue.add"])} >= {"track", "track.title", "track.duration_ms"}


async def run_cases(
    world: World, encoding: str, cases: Sequence[Case], examples: int, failures: Failures
) -> None:
    attacker = Attacker(world, encoding)

    async def check(pair: tuple[Case, Any]) -> None:
        case, message = pair
        frame = data_frame(encode(message, encoding), encoding)
        what = (case.label, encoding, message if len(frame) < 2000 else f"{len(frame)}-byte frame")
        await attacker.expect_bad_request(frame, refs=case.refs, field=case.field, what=what)

    for case in cases:
        await failures.check(
            f"{encoding} {case.label}", st.tuples(st.just(case), case.message), check, examples
        )
    await attacker.close()


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
async def test_every_op_with_a_field_missing_mistyped_or_out_of_bounds_is_a_bad_request(
    world: World, encoding: str
) -> None:
    cases = envelope_cases() + field_cases(encoding, faults)
    assert len(cases) > 150
    failures = Failures()
    await run_cases(world, encoding, cases, 3, failures)
    await assert_unharmed(world)
    failures.assert_none()


async def test_values_of_a_lookalike_type_are_bad_requests_too(world: World) -> None:
    """A number in a string ("60"), a whole float (60.0), true for a number, bytes for a string:
    ill-typed all the same, so an error reply (PROTOCOL.md "Errors"), not a coerced value."""
    failures = Failures()
    for encoding in ("json", "msgpack"):
        await run_cases(world, encoding, field_cases(encoding, lookalikes), 2, failures)
    await assert_unharmed(world)
    failures.assert_none()


# ---- 2. arbitrary values as whole frames -----------------------------------------------------

PING_HEAD = {"op": "ping", "ref": REF}


def not_a_message(value: Any) -> bool:
    """True unless ``value`` names a known op (anything else is refused whatever its fields)."""
    return not (isinstance(value, dict) and value.get("op") in OP_DATA)


def refs_of(value: Any) -> tuple[int | None, ...]:
    """The refs an error reply to ``value`` may carry: null, or its ref if it has a valid one."""
    ref = value.get("ref") if isinstance(value, dict) else None
    valid = isinstance(ref, int) and not isinstance(ref, bool) and 1 <= ref <= MAX_REF
    return (None, ref) if valid else (None,)


def json_with(poison: str, where: str) -> bytes:
    """A ping that would be answered, with ``poison`` (raw JSON text) put at ``where``."""
    inner = {
        "data": f'{{"x": {poison}}}',
        "envelope": None,
        "list": f'{{"x": [1, {poison}, "y"]}}',
    }[where]
    if inner is None:
        return f'{{"op": "ping", "ref": {REF}, "x": {poison}}}'.encode()
    return f'{{"op": "ping", "ref": {REF}, "data": {inner}}}'.encode()


def nested_json(depth: int, shape: str) -> str:
    if shape == "array":
        return "[" * depth + "]" * depth
    if shape == "object":
        return '{"a": ' * depth + "0" + "}" * depth
    return '[{"a": ' * (depth // 2) + "0" + "}]" * (depth // 2)  # mixed: depth rounded down to even


wheres = st.sampled_from(["data", "envelope", "list"])
deep = st.integers(33, 10_000)


async def test_arbitrary_json_frames_are_bad_requests_and_the_socket_stays_open(world: World) -> None:
    attacker = Attacker(world, "json")

    async def refused(pair: tuple[str, bytes, tuple[int | None, ...]]) -> None:
        label, frame, refs = pair
        what = (label, frame if len(frame) < 300 else frame[:300] + b"...")
        await attacker.expect_bad_request(data_frame(frame, "json"), refs=refs, field=None, what=what)

    # The control: a ping with extra fields is answered, so the poison alone is what is refused.
    benign = st.recursive(
        scalars,
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
        max_leaves=6,
    )
    await check_each(
        st.tuples(benign, wheres), lambda t: attacker.expect_pong(json_with(json.dumps(t[0]), t[1]), t), 5
    )
    await check_each(
        st.tuples(st.integers(1, 24), st.sampled_from(["array", "object"]), wheres),
        lambda t: attacker.expect_pong(json_with(nested_json(t[0], t[1]), t[2]), t),
        3,
    )
    values = st.recursive(
        scalars | st.integers(),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
    ).filter(not_a_message)
    categories: list[tuple[str, st.SearchStrategy[tuple[str, bytes, tuple[int | None, ...]]]]] = [
        ("json: arbitrary values", values.map(lambda v: ("value", json.dumps(v).encode(), refs_of(v)))),
        (
            "json: not JSON",
            st.text(max_size=40)
            .filter(lambda s: not parses_as_json(s))
            .map(lambda s: ("not json", s.encode(), (None,))),
        ),
        (
            "json: nesting deeper than 32 inside a ping",
            st.tuples(deep, st.sampled_from(["array", "object", "mixed"]), wheres).map(
                lambda t: (
                    f"nesting {t[0]} {t[1]} at {t[2]}",
                    json_with(nested_json(t[0], t[1]), t[2]),
                    (None, REF),
                )
            ),
        ),
        (
            "json: a whole frame nested deeper than 32",
            st.tuples(deep, st.sampled_from(["array", "object"])).map(
                lambda t: (f"a whole frame nested {t[0]}", nested_json(t[0], t[1]).encode(), (None,))
            ),
        ),
        (
            "json: NaN and Infinity inside a ping",
            st.tuples(st.sampled_from(["NaN", "Infinity", "-Infinity", "-NaN"]), wheres).map(
                lambda t: (f"{t[0]} at {t[1]}", json_with(t[0], t[1]), (None, REF))
            ),
        ),
        (
            "json: integers beyond 64 bits inside a ping",
            st.tuples(st.integers(20, 6000), st.booleans(), wheres).map(
                lambda t: (
                    f"{t[0]}-digit integer at {t[2]}",
                    json_with(("-" if t[1] else "") + "9" * t[0], t[2]),
                    (None, REF),
                )
            ),
        ),
    ]
    failures = Failures()
    for name, category in categories:
        await failures.check(name, category, refused, 8)
    await attacker.close()
    await assert_unharmed(world)
    failures.assert_none()
    await refused_in_bulk(world, "json", json_with(nested_json(10_000, "array"), "data"))


async def refused_in_bulk(world: World, encoding: str, payload: bytes, count: int = 100) -> None:
    """``count`` copies of a refused frame, over fresh sockets as the invalid-frame limit needs:
    each refused, and what they took given back."""
    attacker = Attacker(world, encoding)
    frame = data_frame(payload, encoding)
    with memory_watch(slack_bytes=1 << 20):
        for _ in range(count):
            await attacker.expect_bad_request(frame, refs=(None, REF), field=None, what="bulk")
        await attacker.close()
    await assert_unharmed(world)


def parses_as_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def mp(value: Any) -> bytes:
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def msgpack_with(poison: bytes, where: str) -> bytes:
    """A ping that would be answered, with ``poison`` (one packed value) put at ``where``."""
    head = mp("op") + mp("ping") + mp("ref") + mp(REF)
    if where == "envelope":
        return b"\x83" + head + mp("x") + poison
    if where == "list":
        return b"\x83" + head + mp("data") + b"\x81" + mp("x") + b"\x93" + mp(1) + poison + mp("y")
    return b"\x83" + head + mp("data") + b"\x81" + mp("x") + poison


def ext(code: int, data: bytes) -> bytes:
    """A packed ext value of any type code, the reserved negative ones included (ext 8 format)."""
    return struct.pack(">BBb", 0xC7, len(data), code) + data


def nested_msgpack(depth: int, shape: str) -> bytes:
    if shape == "array":
        return b"\x91" * depth + b"\xc0"
    if shape == "map":
        return (b"\x81" + mp("a")) * depth + b"\xc0"
    return (b"\x91\x81" + mp("a")) * (depth // 2) + b"\xc0"


def unpacks(raw: bytes) -> bool:
    try:
        msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except Exception:  # anything the decoder refuses
        return False
    return True


mp_scalars = (
    st.none()
    | st.booleans()
    | st.integers(*INT64)
    | st.floats()
    | st.text(max_size=12)
    | st.binary(max_size=12)
    | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=12))
)
mp_keys = (
    st.text(max_size=6)
    | st.integers(*INT64)
    | st.binary(max_size=6)
    | st.none()
    | st.booleans()
    | st.floats()
)
NON_STRING_KEYS = st.integers(*INT64) | st.binary(max_size=6) | st.none() | st.booleans() | st.floats()
TIMESTAMPS = st.sampled_from([b"\x00" * 4, b"\x00" * 8, b"\x00" * 12]) | st.binary(min_size=4, max_size=4)


async def test_arbitrary_msgpack_frames_are_bad_requests_and_the_socket_stays_open(world: World) -> None:
    attacker = Attacker(world, "msgpack")

    async def refused(pair: tuple[str, bytes, tuple[int | None, ...]]) -> None:
        label, frame, refs = pair
        what = (label, frame if len(frame) < 300 else frame[:300] + b"...")
        await attacker.expect_bad_request(data_frame(frame, "msgpack"), refs=refs, field=None, what=what)

    benign = st.recursive(
        st.none() | st.booleans() | st.integers(*INT64) | finite | st.text(max_size=8),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
        max_leaves=6,
    )
    await check_each(
        st.tuples(benign, wheres), lambda t: attacker.expect_pong(msgpack_with(mp(t[0]), t[1]), t), 5
    )
    await check_each(
        st.tuples(st.integers(1, 24), st.sampled_from(["array", "map"]), wheres),
        lambda t: attacker.expect_pong(msgpack_with(nested_msgpack(t[0], t[1]), t[2]), t),
        3,
    )
    values = st.recursive(
        mp_scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(mp_keys, c, max_size=4), max_leaves=12
    ).filter(not_a_message)
    categories: list[tuple[str, st.SearchStrategy[tuple[str, bytes, tuple[int | None, ...]]]]] = [
        ("msgpack: arbitrary values", values.map(lambda v: ("value", mp(v), refs_of(v)))),
        (
            "msgpack: not MessagePack",
            st.binary(max_size=40)
            .filter(lambda b: not unpacks(b))
            .map(lambda b: ("not msgpack", b, (None,))),
        ),
        (
            "msgpack: bytes after the message",
            st.binary(min_size=1, max_size=8).map(
                lambda b: ("trailing bytes", mp(PING_HEAD) + b, (None, REF))
            ),
        ),
        (
            "msgpack: nesting deeper than 32 inside a ping",
            st.tuples(deep, st.sampled_from(["array", "map", "mixed"]), wheres).map(
                lambda t: (
                    f"nesting {t[0]} {t[1]} at {t[2]}",
                    msgpack_with(nested_msgpack(t[0], t[1]), t[2]),
                    (None, REF),
                )
            ),
        ),
        (
            "msgpack: a whole frame nested deeper than 32",
            st.tuples(deep, st.sampled_from(["array", "map"])).map(
                lambda t: (f"a whole frame nested {t[0]}", nested_msgpack(t[0], t[1]), (None,))
            ),
        ),
        (
            "msgpack: ext types inside a ping",
            st.tuples(st.integers(-128, 127), st.binary(max_size=20), wheres).map(
                lambda t: (f"ext type {t[0]} at {t[2]}", msgpack_with(ext(t[0], t[1]), t[2]), (None, REF))
            ),
        ),
        (
            "msgpack: timestamps (ext -1) inside a ping",
            st.tuples(TIMESTAMPS, wheres).map(
                lambda t: (f"timestamp ext at {t[1]}", msgpack_with(ext(-1, t[0]), t[1]), (None, REF))
            ),
        ),
        (
            "msgpack: non-string map keys inside a ping",
            st.tuples(NON_STRING_KEYS, wheres).map(
                lambda t: (f"map key {t[0]!r} at {t[1]}", msgpack_with(mp({t[0]: 1}), t[1]), (None, REF))
            ),
        ),
        (
            "msgpack: a non-string key in the envelope",
            NON_STRING_KEYS.map(
                lambda k: (
                    f"envelope key {k!r}",
                    b"\x83" + mp("op") + mp("ping") + mp("ref") + mp(REF) + mp(k) + mp(1),
                    (None, REF),
                )
            ),
        ),
        (
            "msgpack: NaN and infinities inside a ping",
            st.tuples(
                st.sampled_from([math.nan, math.inf, -math.inf]), st.sampled_from([">Bd", ">Bf"]), wheres
            ).map(
                lambda t: (
                    f"{t[0]} ({t[1]}) at {t[2]}",
                    msgpack_with(struct.pack(t[1], 0xCB if t[1] == ">Bd" else 0xCA, t[0]), t[2]),
                    (None, REF),
                )
            ),
        ),
        (
            "msgpack: a str that is not UTF-8 inside a ping",
            st.tuples(
                st.sampled_from([b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"a\xe2\x82"]),
                wheres,
            ).map(
                lambda t: (
                    f"str holding {t[0]!r} at {t[1]}",
                    msgpack_with(bytes([0xA0 | len(t[0])]) + t[0], t[1]),
                    (None, REF),
                )
            ),
        ),
    ]
    failures = Failures()
    for name, category in categories:
        await failures.check(name, category, refused, 8)
    await attacker.close()
    await assert_unharmed(world)
    failures.assert_none()
    await refused_in_bulk(world, "msgpack", msgpack_with(nested_msgpack(10_000, "map"), "data"))


# ---- 3. the other encoding's frame type ------------------------------------------------------


async def test_a_binary_frame_on_json_and_a_text_frame_on_msgpack_are_bad_requests(world: World) -> None:
    ping = {"op": "ping", "ref": REF}
    for encoding, subprotocol, opcode, payloads in [
        (
            "json",
            "seda.v1.json",
            OP_BINARY,
            st.sampled_from([mp(ping), json.dumps(ping).encode()]) | st.binary(max_size=40),
        ),
        (
            "json",
            None,
            OP_BINARY,
            st.sampled_from([mp(ping), json.dumps(ping).encode()]) | st.binary(max_size=40),
        ),
        (
            "msgpack",
            "seda.v1.msgpack",
            OP_TEXT,
            st.sampled_from([json.dumps(ping)]).map(str.encode) | st.text(max_size=40).map(str.encode),
        ),
    ]:
        attacker = Attacker(world, encoding, subprotocol=subprotocol)

        async def refused(payload: bytes, attacker: Attacker = attacker, opcode: int = opcode) -> None:
            await attacker.expect_bad_request(
                client_frame(opcode, payload), refs=(None,), field=None, what=payload
            )

        await check_each(payloads, refused, 10)
        # The socket's own frame type still works, after all of that.
        await attacker.expect_pong(encode(ping, encoding), (encoding, subprotocol))
        await attacker.close()
    await assert_unharmed(world)


# ---- 4. protocol errors below the live protocol: each closes the socket with its code -----------


async def expect_closed_with(
    world: World, code: int, frames: bytes, what: object, encoding: str = "json"
) -> None:
    """On a fresh socket, ``frames`` make the server close with ``code`` (RFC 6455 §7.1.7: a close
    frame with the status code, then the end of the TCP connection), answering nothing before."""
    ws = await world.attacker(encoding)
    try:
        with contextlib.suppress(trio.BrokenResourceError):  # it may close before reading it all
            await ws.send(frames)
        first = await ws.recv_frame()
        assert first is None or first.opcode == OP_CLOSE, f"{what}: answered instead of closed: {first}"
        assert first is not None, f"{what}: the TCP connection ended without a close frame (expected {code})"
        assert first.close_code == code, (what, first)
        await ws.answer_close(first)
        assert await ws.recv_frame() is None, f"{what}: a frame after the close frame"
    finally:
        await ws.aclose()


BAD_UTF8 = [
    b"\xff",
    b"\xfe",
    b"\x80",
    b"\xc0\x80",
    b"\xc1\xbf",
    b"\xed\xa0\x80",
    b"\xed\xbf\xbf",
    b"\xf4\x90\x80\x80",
    b"\xf8\x88\x80\x80\x80",
]


async def test_malformed_utf8_in_a_text_frame_closes_1007(world: World) -> None:
    def text_frames(t: tuple[str, bytes, str, int, bool]) -> bytes:
        before, bad, after, split, truncated = t
        payload = before.encode() + (b"\xe2\x82" if truncated else bad + after.encode())
        if split <= 0 or split >= len(payload):
            return client_frame(OP_TEXT, payload)
        return client_frame(OP_TEXT, payload[:split], fin=False) + client_frame(
            OP_CONTINUATION, payload[split:]
        )

    cases = st.tuples(
        st.text(max_size=20).map(lambda s: '{"op": "ping", "x": "' + s),
        st.sampled_from(BAD_UTF8),
        st.text(max_size=20),
        st.integers(-5, 60),
        st.booleans(),
    )
    failures = Failures()
    for encoding in ("json", "msgpack"):  # a text frame on msgpack is refused, but UTF-8 is checked first

        async def closes(t: tuple[str, bytes, str, int, bool], encoding: str = encoding) -> None:
            await expect_closed_with(world, 1007, text_frames(t), t, encoding)

        await failures.check(f"invalid UTF-8 on {encoding}", cases, closes, 8)
    await assert_unharmed(world)
    failures.assert_none()


PING_TEXT = json.dumps({"op": "ping", "ref": REF}).encode()
RESERVED_OPCODES = [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF]
CONTROL = st.sampled_from([OP_PING, OP_PONG, OP_CLOSE])
# Close codes a peer may not send (RFC 6455 §7.4): below 1000, 1004-1006, 1015, unassigned 1016-2999, 5000+.
BAD_CLOSE_CODES = st.sampled_from([0, 999, 1004, 1005, 1006, 1015, 1016, 2999]) | st.integers(5000, 65535)


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


RFC_VIOLATIONS: list[tuple[str, int, st.SearchStrategy[bytes]]] = [
    ("RSV bits set", 1002, st.integers(1, 7).map(lambda rsv: client_frame(OP_TEXT, PING_TEXT, rsv=rsv))),
    ("an unmasked client frame", 1002, st.just(client_frame(OP_TEXT, PING_TEXT, mask=False))),
    (
        "a reserved opcode",
        1002,
        st.tuples(st.sampled_from(RESERVED_OPCODES), st.binary(max_size=20), st.booleans()).map(
            lambda t: client_frame(t[0], t[1], fin=t[2])
        ),
    ),
    (
        "a fragmented control frame",
        1002,
        st.tuples(CONTROL, st.binary(max_size=20)).map(
            lambda t: client_frame(t[0], close_payload(1000) if t[0] == OP_CLOSE else t[1], fin=False)
        ),
    ),
    (
        "a control frame over 125 bytes",
        1002,
        st.tuples(CONTROL, st.integers(126, 2000)).map(
            lambda t: client_frame(
                t[0], close_payload(1000, b"r" * (t[1] - 2)) if t[0] == OP_CLOSE else b"p" * t[1]
            )
        ),
    ),
    (
        "a continuation without a start",
        1002,
        st.tuples(st.binary(max_size=20), st.booleans()).map(
            lambda t: client_frame(OP_CONTINUATION, t[0], fin=t[1])
        ),
    ),
    (
        "a new message inside a fragmented one",
        1002,
        st.sampled_from([OP_TEXT, OP_BINARY]).map(
            lambda op: client_frame(OP_TEXT, PING_TEXT[:5], fin=False) + client_frame(op, PING_TEXT[5:])
        ),
    ),
    (
        "a length in more bytes than it needs",
        1002,
        st.tuples(st.integers(0, 200), st.sampled_from([126, 127])).map(
            lambda t: client_frame(
                OP_BINARY, b"x" * t[0], length_form=t[1] if t[0] < 126 or t[1] == 127 else 127
            )
        ),
    ),
    (
        "a 64-bit length with its top bit set",
        1002,
        st.integers(2**63, 2**64 - 1).map(
            lambda n: client_frame(OP_TEXT, b"x", declared_length=n, length_form=127)
        ),
    ),
    (
        "a close frame with a 1-byte body",
        1002,
        st.binary(min_size=1, max_size=1).map(lambda b: client_frame(OP_CLOSE, b)),
    ),
    (
        "a close frame with a code no peer may send",
        1002,
        BAD_CLOSE_CODES.map(lambda c: client_frame(OP_CLOSE, close_payload(c))),
    ),
    (
        "a close reason that is not UTF-8",
        1007,
        st.sampled_from(BAD_UTF8).map(lambda b: client_frame(OP_CLOSE, close_payload(1000, b"bye " + b))),
    ),
]


async def test_rfc6455_violations_close_the_socket_with_their_code_and_nothing_else(world: World) -> None:
    """RFC 6455 §7.1.7: a protocol error fails the connection; an established one SHOULD be sent a
    close frame with the code first (1002, or 1007 for text that is not UTF-8, §7.4.1)."""
    failures = Failures()
    for name, code, frames in RFC_VIOLATIONS:

        async def closes(f: bytes, code: int = code, name: str = name) -> None:
            await expect_closed_with(world, code, f, name)

        await failures.check(f"{name} (expect {code})", frames, closes, 3)
    await assert_unharmed(world)
    failures.assert_none()


async def test_a_close_frame_from_the_client_is_answered_with_its_code(world: World) -> None:
    """The control for the above: a well-formed close (valid code, UTF-8 reason) gets its echo."""
    codes = st.sampled_from([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 3000, 4000, 4999])

    async def closes(pair: tuple[int, str]) -> None:
        code, reason = pair
        ws = await world.attacker()
        await ws.send(client_frame(OP_CLOSE, close_payload(code, reason.encode())))
        ending = await ws.ending()
        await ws.aclose()
        assert ending.code == code, (pair, ending)

    await check_each(st.tuples(codes, st.text(max_size=20)), closes, 6)
    await assert_unharmed(world)


# ---- 5. frames over 64 KiB ---------------------------------------------------------------------


def padded_ping(size: int, encoding: str, char: str = "x") -> bytes:
    """A ping (ref REF) padded in data.pad with ``char`` to ``size`` bytes: exactly, or (where the
    character's width or a length header in between forbids it) the fewest bytes over ``size``."""
    width = len(char.encode())
    n = 0
    over: list[bytes] = []
    for _ in range(8):
        message = {"op": "ping", "ref": REF, "data": {"pad": char * n}}
        payload = json.dumps(message, ensure_ascii=False).encode() if encoding == "json" else mp(message)
        if len(payload) == size:
            return payload
        if size < len(payload) < size + 8:
            over.append(payload)
        n = max(0, n + math.ceil((size - len(payload)) / width) - (len(payload) > size))
    assert over, f"cannot pad a ping to {size} bytes with {char!r}"
    return min(over, key=len)


def fragmented(payload: bytes, opcode: int, cuts: list[int]) -> bytes:
    """``payload`` as one message in several frames, cut at ``cuts``."""
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(payload)}), len(payload)]
    parts = [payload[a:b] for a, b in itertools.pairwise(bounds)]
    return b"".join(
        client_frame(opcode if i == 0 else OP_CONTINUATION, part, fin=i == len(parts) - 1)
        for i, part in enumerate(parts)
    )


OVER = st.integers(MAX_FRAME + 1, 4 * MAX_FRAME)


async def test_a_frame_over_64_kib_closes_1009_and_one_of_64_kib_is_served(world: World) -> None:
    attacker = {e: Attacker(world, e) for e in ("json", "msgpack")}
    # Exactly 64 KiB is served, in one frame or in several.
    for encoding, opcode in (("json", OP_TEXT), ("msgpack", OP_BINARY)):
        await attacker[encoding].expect_pong(padded_ping(MAX_FRAME, encoding), f"{encoding} frame of 64 KiB")
        ws = await attacker[encoding].socket()
        await ws.send(fragmented(padded_ping(MAX_FRAME, encoding), opcode, [1000, 30_000, 60_000]))
        reply = await next_reply(ws, encoding)
        assert reply["ok"] is True and reply["ref"] == REF, reply
        await attacker[encoding].close()

    def text(size: int) -> tuple[bytes, str]:
        return client_frame(OP_TEXT, padded_ping(size, "json")), "json"

    def binary(size: int) -> tuple[bytes, str]:
        return client_frame(OP_BINARY, padded_ping(size, "msgpack")), "msgpack"

    def in_pieces(t: tuple[int, list[int], str]) -> tuple[bytes, str]:
        size, cuts, encoding = t
        opcode = OP_TEXT if encoding == "json" else OP_BINARY
        return fragmented(
            padded_ping(size, encoding), opcode, list(range(MAX_FRAME, size, MAX_FRAME)) + cuts
        ), encoding

    def announced(opcode: int) -> tuple[bytes, str]:
        return client_frame(
            opcode, b"x" * 70_000, declared_length=2**40
        ), "json" if opcode == OP_TEXT else "msgpack"

    cases: list[tuple[str, st.SearchStrategy[Any], Callable[[Any], tuple[bytes, str]]]] = [
        ("a text frame over 64 KiB", OVER, text),
        ("a binary frame over 64 KiB", OVER, binary),
        (
            "a message over 64 KiB in frames under it",
            st.tuples(
                OVER,
                st.lists(st.integers(1, 4 * MAX_FRAME), max_size=5),
                st.sampled_from(["json", "msgpack"]),
            ),
            in_pieces,
        ),
        (
            "a header announcing 2^40 bytes, 70 KB of them sent",
            st.sampled_from([OP_TEXT, OP_BINARY]),
            announced,
        ),
    ]
    failures = Failures()
    for name, params, build in cases:

        async def closes(p: Any, name: str = name, build: Callable[[Any], tuple[bytes, str]] = build) -> None:
            frames, encoding = build(p)
            await expect_closed_with(world, 1009, frames, (name, p), encoding)

        await failures.check(name, params, closes, 4)
    await assert_unharmed(world)
    failures.assert_none()

    # A burst of them gives back what it took: memory and sockets.
    big = client_frame(OP_TEXT, padded_ping(4 * MAX_FRAME, "json"))
    with memory_watch(slack_bytes=2 << 20):
        for _ in range(48):
            await expect_closed_with(world, 1009, big, "burst")
    await assert_unharmed(world)


async def test_a_text_frame_over_64_kib_in_bytes_but_not_in_characters_closes_1009(world: World) -> None:
    """The limit is on bytes: 40,000 "é" are 80,000 bytes (trio-websocket counts a text message
    in characters, after decoding)."""

    async def closes(t: tuple[str, int]) -> None:
        char, size = t
        payload = padded_ping(size, "json", char)
        assert len(payload.decode()) <= MAX_FRAME < len(payload), t  # over in bytes, not in characters
        await expect_closed_with(world, 1009, client_frame(OP_TEXT, payload), t)

    characters = st.sampled_from(["é", "€", "😀"])
    await check_each(st.tuples(characters, st.integers(MAX_FRAME + 1, MAX_FRAME + 40_000)), closes, 4)
    await assert_unharmed(world)


# ---- 6. more than 20 invalid frames within 10 s -------------------------------------------------


async def test_more_than_20_invalid_frames_within_10_s_close_1008(
    world: World, jump_clock: trio.testing.MockClock
) -> None:
    invalid = [
        client_frame(OP_TEXT, b"not json"),
        client_frame(OP_TEXT, b'{"op": "no.such.op", "ref": 1}'),
        client_frame(OP_TEXT, b'{"op": "chat.send", "ref": 2, "data": {"text": 5}}'),
        client_frame(OP_BINARY, mp({"op": "ping"})),
        client_frame(OP_TEXT, b"[1, 2]"),
    ]

    async def send_invalid(ws: RawWs, count: int) -> None:
        for i in range(count):
            await ws.send(invalid[i % len(invalid)])
            reply = await next_reply(ws, "json")
            assert reply["ok"] is False and reply["error"]["code"] == "bad_request", reply

    ws = await world.attacker()
    await send_invalid(ws, INVALID_LIMIT)
    await assert_answers_ping(ws, "json")  # 20 are allowed; valid frames do not count
    jump_clock.jump(INVALID_WINDOW_S + 0.5)  # the window slides: those 20 are forgotten
    await send_invalid(ws, INVALID_LIMIT)
    await assert_answers_ping(ws, "json")
    jump_clock.jump(INVALID_WINDOW_S / 2)
    await ws.send(invalid[0])  # the 21st within 10 s
    ending = await ws.ending()
    await ws.aclose()
    assert ending.code == 1008, ending
    replies = [decode(f, "json") for f in ending.frames]
    assert all(r["type"] == "reply" and r["error"]["code"] == "bad_request" for r in replies), replies
    await assert_unharmed(world)


# ---- 7. slow and half-open upgrades --------------------------------------------------------------


async def wait_dropped(stream: trio.SocketStream) -> bytes:
    """Everything the server sends on ``stream`` until it ends the connection."""
    received = bytearray()
    while True:
        try:
            chunk = await stream.receive_some(4096)
        except trio.BrokenResourceError:
            return bytes(received)
        if not chunk:
            return bytes(received)
        received += chunk


async def test_an_upgrade_trickled_a_byte_a_second_is_dropped_at_the_handshake_timeout(
    world: World, jump_clock: trio.testing.MockClock
) -> None:
    """One byte per second: each read is quick, the whole handshake is not. The server's clock is
    this test's MockClock, jumped one second per byte, so the 10 s take no real time."""
    request, _ = upgrade_request(world.port, world.path(world.probe, world.token), subprotocol="seda.v1.json")
    stream = await trio.open_tcp_stream("127.0.0.1", world.port)
    started = trio.current_time()
    dropped_at: list[float] = []
    answered: list[bytes] = []
    dropped = trio.Event()

    async def watch() -> None:
        answered.append(await wait_dropped(stream))
        dropped_at.append(trio.current_time() - started)
        dropped.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        for i, byte in enumerate(request):
            try:
                await stream.send_all(bytes([byte]))
            except trio.BrokenResourceError:
                break
            if i == int(HANDSHAKE_TIMEOUT_S) // 2:
                await assert_unharmed(world)  # meanwhile, the server serves everyone else
            jump_clock.jump(1.0)
            # Let the server act on the new time (and the drop, if it came, reach the watcher).
            await trio.testing.wait_all_tasks_blocked(cushion=0.01)
            if dropped.is_set():
                break
        with trio.fail_after(5):
            await dropped.wait()
    await stream.aclose()
    (elapsed,) = dropped_at
    assert HANDSHAKE_TIMEOUT_S <= elapsed <= HANDSHAKE_TIMEOUT_S + 2, (elapsed, answered)
    assert not answered[0].startswith(b"HTTP/1.1 101"), answered
    await assert_unharmed(world)


def still_open(stream: trio.SocketStream) -> bool:
    """Nothing to read and no end of stream, right now (a peek that does not wait)."""
    with socket.socket(fileno=os.dup(stream.socket.fileno())) as sock:
        try:
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
        except BlockingIOError:
            return True
        except OSError:
            return False


async def test_500_half_open_upgrades_hang_without_harm_and_are_freed(
    world: World, jump_clock: trio.testing.MockClock
) -> None:
    """500 connections that never finish their upgrade: the server serves a normal client and REST
    meanwhile, drops every one of them at its handshake timeout, and gives back what they took."""
    request, _ = upgrade_request(world.port, world.path(world.probe, world.token))
    partials = [
        b"",  # connected, nothing sent
        b"G",
        request[: len(request) // 2],  # the request line and some headers
        request[:-2],  # all but the blank line that ends the headers
    ]

    async def half_open(count: int) -> list[trio.SocketStream]:
        streams = []
        for i in range(count):
            stream = await trio.open_tcp_stream("127.0.0.1", world.port)
            if partials[i % len(partials)]:
                await stream.send_all(partials[i % len(partials)])
            streams.append(stream)
        return streams

    async def all_dropped(streams: list[trio.SocketStream]) -> list[bytes]:
        """Jump past the handshake timeout; every stream is then ended by the server."""
        jump_clock.jump(HANDSHAKE_TIMEOUT_S + 1)
        answers: list[bytes] = []
        with trio.fail_after(30):
            for stream in streams:
                answers.append(await wait_dropped(stream))
                await stream.aclose()
        return answers

    await all_dropped(await half_open(8))  # warm-up: what the first connections allocate once
    await assert_unharmed(world)

    with memory_watch(slack_bytes=2 << 20):
        streams = await half_open(500)
        # They were accepted before anything that connects after them; the server serves it.
        await assert_unharmed(world)
        ws = await world.attacker()
        await assert_answers_ping(ws, "json")
        r = await world.http.get(f"/api/v1/rooms/{world.probe}")
        assert r.status_code == 200, r.text
        jump_clock.jump(HANDSHAKE_TIMEOUT_S / 2)  # half the timeout on: they still hang, it still serves
        await assert_answers_ping(ws, "json")
        assert all(still_open(s) for s in streams), "dropped before the handshake timeout"
        await close_cleanly(ws)
        answers = await all_dropped(streams)
        assert not [a for a in answers if a.startswith(b"HTTP/1.1 101")], "an unfinished upgrade was accepted"
    await assert_unharmed(world)


# ---- 8. well-formed ops whose ids name nothing ---------------------------------------------------

DOCUMENTED_CODES = {
    "bad_request", "unauthorized", "forbidden", "not_found", "conflict", "rate_limited", "muted",
    "no_session", "session_active", "not_dj", "queue_full", "recently_played", "track_too_long",
}  # fmt: skip


async def test_ops_naming_ids_that_do_not_exist_are_refused_and_the_room_goes_on(world: World) -> None:
    """Every op with an id field, from the room's owner, each id a fresh UUID no row has: an error
    reply with a documented code (not internal), and neither the socket nor the room closes."""
    attacker = Attacker(world, "json")
    id_ops = [(op, spec) for op, model in OP_DATA.items() for spec in fields_of(model) if spec.kind == "uuid"]
    assert {op for op, _ in id_ops} >= {"chat.delete", "vote", "mod.mute", "mod.ban", "mod.kick", "mod.unban"}

    async def refused(t: tuple[str, FieldSpec, uuid.UUID]) -> None:
        op, spec, nobody = t
        message = {"op": op, "ref": REF, "data": with_field(base_of(OP_DATA[op]), spec.path, str(nobody))}
        async with attacker.fresh_after_failure(message) as ws:
            await ws.send(data_frame(encode(message, "json"), "json"))
            reply = await next_reply(ws, "json")
            assert reply["ref"] == REF, reply
            assert reply["ok"] is False and reply["error"]["code"] in DOCUMENTED_CODES, reply
            await assert_answers_ping(ws, "json")

    failures = Failures()
    for op, spec in id_ops:
        await failures.check(
            f"{op} {spec.path}", st.tuples(st.just(op), st.just(spec), st.uuids()), refused, 2
        )
    await attacker.close()
    await assert_unharmed(world)
    failures.assert_none()
