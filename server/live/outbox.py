"""The outbox stream: every byte a socket is sent goes through one per-socket outbox.

trio-websocket is given this stream, so it still does the handshake, reading,
ping/pong and close; broadcasts are pre-built frames written with
:meth:`OutboxStream.write_now`, which tries the kernel at once and keeps only
what it refused. Frames never interleave because both paths share the outbox.
"""

from __future__ import annotations

import errno
import os
import struct
from collections import deque

import trio

CLOSE_TOO_SLOW = 4009


def close_frame(code: int, reason: str) -> bytes:
    payload = struct.pack("!H", code) + reason.encode()[:120]
    return struct.pack("!BB", 0x88, len(payload)) + payload


class OutboxStream(trio.abc.HalfCloseableStream):
    def __init__(self, stream: trio.SocketStream, *, limit: int) -> None:
        self._stream = stream
        self._fd = stream.socket.fileno()
        self._limit = limit
        self._chunks: deque[memoryview] = deque()
        self._queued = 0
        self._wake = trio.Event()
        self._drained = trio.Event()
        self._drained.set()
        self._closed = False
        self.broken = False
        self.overflowed = False
        self.bytes_written = 0
        # Set when the client is lost to us (write error or overflow); its connection then ends.
        self.dead = trio.Event()

    @property
    def queued(self) -> int:
        return self._queued

    def write_now(self, data: bytes) -> bool:
        """Queue ``data`` (a whole frame) without blocking; False if the socket is gone or overflowed."""
        if self._closed or self.broken or self.overflowed:
            return False
        view = memoryview(data)
        if not self._chunks:
            written = self._try_write(view)
            if written == len(view):
                return True
            view = view[written:]
        self._chunks.append(view)
        self._queued += len(view)
        if self._drained.is_set():
            self._drained = trio.Event()
        self._wake.set()
        if self._queued > self._limit:
            self._overflow()
        return not self.overflowed

    def _try_write(self, view: memoryview) -> int:
        if self.broken:
            return 0
        try:
            written = os.write(self._fd, view)
        except BlockingIOError:
            return 0
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                return 0
            self._break()
            return 0
        self.bytes_written += written
        return written

    def _break(self) -> None:
        self.dead.set()
        self.broken = True
        self._chunks.clear()
        self._queued = 0
        self._drained.set()
        self._wake.set()

    def _overflow(self) -> None:
        """The client stopped reading: drop what it is owed and say 4009 after the frame in flight."""
        self.overflowed = True
        self.dead.set()
        head = self._chunks[0] if self._chunks else None
        self._chunks.clear()
        self._queued = 0
        if head is not None:
            self._chunks.append(head)  # the rest of a half-written frame, so the close frame parses
            self._queued = len(head)
        tail = memoryview(close_frame(CLOSE_TOO_SLOW, "too slow"))
        self._chunks.append(tail)
        self._queued += len(tail)

    async def drain_loop(self) -> None:
        """Write what the kernel refused once it can take more; run for the socket's life."""
        while not self._closed and not self.broken:
            if not self._chunks:
                self._drained.set()
                await self._wake.wait()
                self._wake = trio.Event()
                continue
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

    # ---- trio.abc.HalfCloseableStream, for trio-websocket ----------------------------

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed:
            raise trio.ClosedResourceError("outbox closed")
        if not self.write_now(bytes(data)) and (self.broken or self.overflowed):
            raise trio.BrokenResourceError("socket gone")
        await self._drained.wait()
        if self.broken:
            raise trio.BrokenResourceError("socket gone")

    async def wait_send_all_might_not_block(self) -> None:
        await self._drained.wait()

    async def send_eof(self) -> None:
        await self._drained.wait()
        await self._stream.send_eof()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self._stream.receive_some(max_bytes)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._chunks.clear()
        self._queued = 0
        self._drained.set()
        self._wake.set()
        await self._stream.aclose()
