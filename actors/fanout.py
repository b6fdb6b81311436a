"""A room's flusher: what its publisher shows, written to each socket in as few writes as it can.

Publishing is synchronous (append and wake), so what a socket receives is in
publish order, which is ``seq`` order. The first publish after a quiet spell is
flushed at once; under load, everything published within ``window_s`` of the
previous flush goes to each socket as one write (ARCHITECTURE.md "Coalesce").

One flush, for the common socket (one that was subscribed before the group and
was not joined, left, excluded or closed within it), is the group's broadcast
frames joined once per encoding, plus any frames meant for it alone (replies)
after them. A reply always follows the events it caused, since those were
published before it. The few sockets that subscribed, left, were excluded or
closed within the group get their bytes built by walking the group in order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import trio

from actors.blocks import BlockIndex, author_of, hidden_variant, hide_for
from actors.ports import Subscriber
from protocol.codec import Encoding, encode_frame

_ALL, _ONE, _SUBSCRIBE, _UNSUBSCRIBE, _CLOSE, _CLOSE_ALL = range(6)


@dataclass
class _Publish:
    kind: int
    message: dict[str, Any] | None = None
    conn: Subscriber | None = None
    conn_id: int | None = None  # the one conn this is about (or excluded from an _ALL)
    close: tuple[int, str] | None = None
    frames: dict[Encoding, bytes] = field(default_factory=dict)
    # Personal blocks: the sockets that get ``stub`` instead (None: nothing at all)
    hidden_from: frozenset[int] = frozenset()
    stub: dict[str, Any] | None = None
    stub_frames: dict[Encoding, bytes] = field(default_factory=dict)

    def frame(self, encoding: Encoding) -> bytes:
        found = self.frames.get(encoding)
        if found is None:
            assert self.message is not None
            found = self.frames[encoding] = encode_frame(self.message, encoding)
        return found

    def frame_for(self, conn_id: int, encoding: Encoding) -> bytes:
        """What this broadcast is for one socket: the frame, or (it blocks the author) the stub's
        frame, framed once per event and encoding, or nothing."""
        if conn_id not in self.hidden_from:
            return self.frame(encoding)
        if self.stub is None:
            return b""
        found = self.stub_frames.get(encoding)
        if found is None:
            found = self.stub_frames[encoding] = encode_frame(self.stub, encoding)
        return found


class Fanout:
    def __init__(self, window_s: float, blocks: BlockIndex | None = None) -> None:
        self.window_s = window_s
        self._blocks = blocks  # the process's personal blocks (None: nobody hides anyone)
        # Who will receive what is published from now on (the publisher's view) ...
        self.subscribers: dict[int, Subscriber] = {}
        # ... and who had received everything flushed so far.
        self._flushed: dict[int, Subscriber] = {}
        self._group: list[_Publish] = []
        self._wake = trio.Event()
        self._last_flush = -math.inf
        self._holding = False  # inside publishing(): its end flushes or wakes the flusher
        self.flushes = 0
        self.writes = 0

    # ---- publishing (synchronous; never blocks) ----------------------------------------

    def to_all(self, message: dict[str, Any], *, exclude: int | None = None) -> None:
        publish = _Publish(_ALL, message=message, conn_id=exclude)
        blocks = self._blocks
        if blocks is not None and blocks.active:  # with no blocks anywhere, this is all it costs
            author = author_of(message)
            hiders = blocks.hiders(author) if author is not None else None
            if hiders:
                publish.hidden_from = frozenset(hiders)  # as they stand now: later changes are later
                publish.stub = hidden_variant(message)
        self._add(publish)

    def to_one(self, conn: Subscriber, message: dict[str, Any]) -> None:
        self._add(_Publish(_ONE, message=message, conn=conn, conn_id=conn.conn_id))

    def subscribe(self, conn: Subscriber, first: list[dict[str, Any]]) -> None:
        """``first`` (the welcome and any replay) goes to ``conn`` ahead of every later broadcast."""
        blocked = self._blocks.blocks_of(conn.conn_id) if self._blocks is not None else None
        if blocked:
            first = hide_for(blocked, first)
        for message in first:
            self.to_one(conn, message)
        self.subscribers[conn.conn_id] = conn
        self._add(_Publish(_SUBSCRIBE, conn=conn, conn_id=conn.conn_id))

    def unsubscribe(self, conn_id: int) -> None:
        if self.subscribers.pop(conn_id, None) is not None:
            self._add(_Publish(_UNSUBSCRIBE, conn_id=conn_id))

    def close(self, conn: Subscriber, code: int, reason: str) -> None:
        """Close ``conn`` once what was published before reaches it."""
        self._add(_Publish(_CLOSE, conn=conn, conn_id=conn.conn_id, close=(code, reason)))

    def close_all(self, code: int, reason: str) -> None:
        """Close every subscriber once what was published before reaches it; nothing more goes out."""
        self.subscribers.clear()
        self._add(_Publish(_CLOSE_ALL, close=(code, reason)))

    def abandon(self, code: int, reason: str) -> None:
        """The room is gone (a crash): drop what is unsent and close every socket now."""
        conns = {**self._flushed, **self.subscribers}
        for publish in self._group:
            if publish.kind == _SUBSCRIBE and publish.conn is not None:
                conns[publish.conn.conn_id] = publish.conn
        self._group.clear()
        self.subscribers.clear()
        self._flushed.clear()
        for conn in conns.values():
            conn.close(code, reason)

    def _add(self, publish: _Publish) -> None:
        self._group.append(publish)
        if not self._holding:
            self._wake.set()

    @contextmanager
    def publishing(self) -> Iterator[None]:
        """Publish several things; at the end, flush them here and now if the window allows,
        else leave them to the flusher's task. A publisher that is itself a task (the room's)
        thus costs no wake-up of the flusher when the room is not busy."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
            if self._group:
                if trio.current_time() >= self._last_flush + self.window_s:
                    self.flush()
                else:
                    self._wake.set()

    # ---- flushing -----------------------------------------------------------------------

    async def run(self) -> None:
        """Flush when woken: at once after a quiet spell, else at the end of the window."""
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            due = self._last_flush + self.window_s
            if trio.current_time() < due:
                await trio.sleep_until(due)
            self.flush()

    def flush(self) -> None:
        """Write everything published so far (synchronous: each write is a non-blocking attempt)."""
        group, self._group = self._group, []
        if not group:
            return
        self._last_flush = trio.current_time()
        self.flushes += 1
        special: set[int] = set()
        hiding: set[int] = set()  # sockets that block the author of some broadcast
        extras: dict[int, list[_Publish]] = {}
        broadcasts: list[_Publish] = []
        for publish in group:
            kind = publish.kind
            if kind == _ALL:
                broadcasts.append(publish)
                if publish.conn_id is not None:
                    special.add(publish.conn_id)
                if publish.hidden_from:
                    hiding.update(publish.hidden_from)
            elif kind == _ONE:
                assert publish.conn_id is not None
                extras.setdefault(publish.conn_id, []).append(publish)
            elif kind == _CLOSE_ALL:
                special.update(self._flushed)
                special.update(p.conn_id for p in group if p.kind == _SUBSCRIBE and p.conn_id is not None)
            else:
                assert publish.conn_id is not None
                special.add(publish.conn_id)
        shared: dict[Encoding, bytes] = {}
        # Without broadcasts only the sockets owed a reply are visited: a storm of joins
        # must not walk every socket of the room once per join.
        targets: Iterable[tuple[int, Subscriber]] = (
            self._flushed.items()
            if broadcasts
            else [(i, self._flushed[i]) for i in extras if i in self._flushed]
        )
        for conn_id, conn in targets:
            if conn_id in special:
                continue
            data: bytes
            if conn_id in hiding:
                data = b"".join(p.frame_for(conn_id, conn.encoding) for p in broadcasts)
            elif conn.encoding in shared:
                data = shared[conn.encoding]
            else:
                data = shared[conn.encoding] = b"".join(p.frame(conn.encoding) for p in broadcasts)
            own = extras.get(conn_id)
            if own:
                data = data + b"".join(p.frame(conn.encoding) for p in own)
            if data:
                conn.send_frame(data)
                self.writes += 1
        if special:
            self._flush_special(group, special)

    def _flush_special(self, group: list[_Publish], special: set[int]) -> None:
        """Sockets whose membership changed within the group: walk it in order for each."""
        conns: dict[int, Subscriber] = {i: self._flushed[i] for i in special if i in self._flushed}
        for publish in group:
            if publish.conn is not None and publish.conn_id in special:
                conns.setdefault(publish.conn.conn_id, publish.conn)
        for conn_id, conn in conns.items():
            subscribed = conn_id in self._flushed
            closing: tuple[int, str] | None = None
            parts: list[bytes] = []
            for publish in group:
                kind = publish.kind
                if kind == _ALL:
                    if subscribed and publish.conn_id != conn_id:
                        parts.append(publish.frame_for(conn_id, conn.encoding))
                elif publish.conn_id != conn_id and kind != _CLOSE_ALL:
                    continue
                elif kind == _ONE:
                    if closing is None:
                        parts.append(publish.frame(conn.encoding))
                elif kind == _SUBSCRIBE:
                    subscribed = closing is None
                elif kind == _UNSUBSCRIBE:
                    subscribed = False
                elif kind == _CLOSE or (kind == _CLOSE_ALL and subscribed):
                    closing = closing or publish.close
                    subscribed = False
            if subscribed:
                self._flushed[conn_id] = conn
            else:
                self._flushed.pop(conn_id, None)
            if parts:
                conn.send_frame(b"".join(parts))
                self.writes += 1
            if closing is not None:
                conn.close(*closing)
