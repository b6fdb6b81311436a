"""The outbox stream: every byte a socket is sent goes through one per-socket outbox.

trio-websocket is given this stream, so it still does the handshake, reading,
ping/pong and close; broadcasts are pre-built frames written with
:meth:`OutboxStream.write_now`, which tries the kernel at once and keeps only
what it refused. Frames never interleave because both paths share the outbox.
A drain task runs only while the kernel is refusing bytes, so an idle socket
costs no task of its own.
"""

from __future__ import annotations

import errno
import os
import struct
from collections import deque
from collections.abc import Callable

import trio

CLOSE_TOO_SLOW = 4009


def close_frame(code: int, reason: str) -> bytes:
    payload = struct.pack("!H", code) + reason.encode()[:120]
    return struct.pack("!BB", 0x88, len(payload)) + payload


class OutboxStream(trio.abc.HalfCloseableStream):
    def __init__(self, stream: trio.SocketStream, nursery: trio.Nursery, *, limit: int) -> None:
        self._stream = stream
        self._nursery = nursery
        self._fd = stream.socket.fileno()
        self._limit = limit
        self._chunks: deque[memoryview] = deque()
        self._queued = 0
        self._draining = False
        self._drained: trio.Event | None = None  # made only when someone waits for a drain
        self._closed = False
        self.broken = False
        self.overflowed = False
        self._direct = True  # write straight to the kernel: nothing queued, socket healthy
        # Called once when the client is lost to us (write error or overflow); its connection then ends.
        self.on_dead: Callable[[], None] | None = None

    @property
    def dead(self) -> bool:
        return self.broken or self.overflowed

    @property
    def queued(self) -> int:
        return self._queued

    def write_now(self, data: bytes) -> bool:
        """Queue ``data`` (whole frames) without blocking; False if the socket is gone or overflowed."""
        if self._direct:  # the hot path: open, healthy, nothing queued ahead
            try:
                written = os.write(self._fd, data)
            except BlockingIOError:
                written = 0
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                    self._break()
                    return False
                written = 0
            if written == len(data):
                return True
            return self._queue(memoryview(data)[written:])
        if self._closed or self.broken or self.overflowed:
            return False
        return self._queue(memoryview(data))

    def _queue(self, view: memoryview) -> bool:
        """Keep what the kernel refused, in order, and make sure a drain task will write it."""
        self._direct = False
        self._chunks.append(view)
        self._queued += len(view)
        if not self._draining:
            try:
                self._nursery.start_soon(self._drain)
            except RuntimeError:  # the socket's nursery is closing: it is on its way out
                self._break()
                return False
            self._draining = True
        if self._queued > self._limit:
            self._overflow()
        return not self.overflowed

    def _try_write(self, view: memoryview) -> int:
        if self.broken:
            return 0
        try:
            return os.write(self._fd, view)
        except BlockingIOError:
            return 0
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                return 0
            self._break()
            return 0

    def _settled(self) -> None:
        """Nothing is queued any more (sent, or dropped with the socket)."""
        if self._drained is not None:
            self._drained.set()
            self._drained = None

    def _break(self) -> None:
        first = not self.dead
        self.broken = True
        self._direct = False
        self._chunks.clear()
        self._queued = 0
        self._settled()
        if first and self.on_dead is not None:
            self.on_dead()

    def _overflow(self) -> None:
        """The client stopped reading: drop what it is owed and say 4009 after the frame in flight."""
        self.overflowed = True
        self._direct = False
        head = self._chunks[0] if self._chunks else None
        self._chunks.clear()
        self._queued = 0
        if head is not None:
            self._chunks.append(head)  # the rest of a half-written frame, so the close frame parses
            self._queued = len(head)
        tail = memoryview(close_frame(CLOSE_TOO_SLOW, "too slow"))
        self._chunks.append(tail)
        self._queued += len(tail)
        if self.on_dead is not None:
            self.on_dead()

    async def _drain(self) -> None:
        """Write what the kernel refused as it takes more; ends when nothing is left."""
        try:
            while self._chunks and not self._closed and not self.broken:
                try:
                    await trio.lowlevel.wait_writable(self._fd)
                except (trio.ClosedResourceError, OSError):
                    return  # the socket was closed under us
                while self._chunks and not self.broken:
                    head = self._chunks[0]
                    written = self._try_write(head)
                    if written == 0:
                        break
                    self._queued -= written
                    if written == len(head):
                        self._chunks.popleft()
                    else:
                        self._chunks[0] = head[written:]
            if not self._chunks and self.overflowed:
                self._break()  # the 4009 frame is out; nothing more goes to this client
        finally:
            self._draining = False
            if not self._chunks:
                self._direct = not (self._closed or self.broken or self.overflowed)
                self._settled()

    async def _wait_drained(self) -> None:
        if self._chunks and not self.broken and not self._closed:
            if self._drained is None:
                self._drained = trio.Event()
            await self._drained.wait()
        else:
            await trio.lowlevel.checkpoint()

    # ---- trio.abc.HalfCloseableStream, for trio-websocket ----------------------------

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed:
            raise trio.ClosedResourceError("outbox closed")
        if not self.write_now(bytes(data)) and (self.broken or self.overflowed):
            raise trio.BrokenResourceError("socket gone")
        await self._wait_drained()
        if self.broken:
            raise trio.BrokenResourceError("socket gone")

    async def wait_send_all_might_not_block(self) -> None:
        await self._wait_drained()

    async def send_eof(self) -> None:
        await self._wait_drained()
        await self._stream.send_eof()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self._stream.receive_some(max_bytes)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._direct = False
        self._chunks.clear()
        self._queued = 0
        self._settled()
        await self._stream.aclose()
