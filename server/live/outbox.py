"""The outbox stream: every byte a socket is sent goes through one per-socket outbox.

trio-websocket is given this stream for the handshake; after the upgrade
:class:`server.live.websocket.WebSocket` reads, answers pings and closes through
it (:meth:`OutboxStream.send_all`); broadcasts are pre-built frames written with
:meth:`OutboxStream.write_now`, which tries the kernel at once and keeps only
what it refused. Frames never interleave because both paths share the outbox.
A drain task runs only while the kernel is refusing bytes, so an idle socket
costs no task of its own.

A Close frame does not wait behind the queue: it goes right after the frame
being written (the rest of the queue is dropped, the peer is leaving), nothing
is written after it, and if the peer takes nothing for ``CLOSE_FLUSH_S`` the
socket is given up. Other control frames (pongs) are queued without being
waited for, so the reader keeps reading and always sees a client's Close.
"""

from __future__ import annotations

import errno
import logging
import os
import struct
from collections import deque
from collections.abc import Callable

import trio

log = logging.getLogger("seda.live")

CLOSE_TOO_SLOW = 4009
CLOSE_FLUSH_S = 2.0  # how long a Close frame may wait for the peer to take it
_OP_CLOSE = 0x8
_UPGRADED = b"HTTP/1.1 101 "  # the handshake's answer when it accepts: frames follow


class Upgraded(Exception):
    """Raised into trio-websocket's reader task once the handshake is done: it stops reading,
    and the socket's own task reads from then on (server.live.websocket)."""


# A queue that holds nothing: an idle socket keeps no deque of its own.
_NOTHING: deque[memoryview] = deque(maxlen=0)


def close_frame(code: int, reason: str) -> bytes:
    # At most 123 bytes of payload (RFC 6455 5.5), cut on a character boundary.
    text = reason.encode()[:120].decode(errors="ignore").encode()
    payload = struct.pack("!H", code) + text
    return struct.pack("!BB", 0x88, len(payload)) + payload


def frame_end(data: memoryview, offset: int) -> int:
    """The first frame boundary at or after ``offset`` in ``data`` (whole frames from byte 0);
    the end of ``data`` if what is there does not parse as frames."""
    at = 0
    while at < offset:
        if at + 2 > len(data):
            return len(data)
        size = data[at + 1] & 0x7F
        header = 2
        if size == 126 and at + 4 <= len(data):
            (size,) = struct.unpack_from("!H", data, at + 2)
            header = 4
        elif size == 127 and at + 10 <= len(data):
            (size,) = struct.unpack_from("!Q", data, at + 2)
            header = 10
        if data[at + 1] & 0x80:
            header += 4  # a mask (server frames have none)
        at += header + size
    return min(at, len(data))


class OutboxStream(trio.abc.HalfCloseableStream):
    __slots__ = (
        "_chunks",
        "_closed",
        "_direct",
        "_drained",
        "_draining",
        "_fd",
        "_handshake_read",
        "_head_sent",
        "_limit",
        "_nursery",
        "_queued",
        "_stream",
        "broken",
        "close_after_queue",
        "close_queued",
        "on_dead",
        "overflowed",
        "unsent_close",
        "upgraded",
    )

    def __init__(self, stream: trio.SocketStream, nursery: trio.Nursery, *, limit: int) -> None:
        self._stream = stream
        self._nursery = nursery
        self._fd = stream.socket.fileno()
        self._limit = limit
        # Writes the kernel refused, in order; the first is sent up to _head_sent. After the
        # upgrade every chunk starts at a frame boundary, so the frame in flight can be found.
        self._chunks = _NOTHING  # a deque of its own only while something is queued
        self._head_sent = 0
        self._queued = 0  # bytes not yet sent
        self._draining = False
        self._drained: trio.Event | None = None  # made only when someone waits for a drain
        self._closed = False
        self._handshake_read: trio.CancelScope | None = None  # trio-websocket's reader, waiting
        self.broken = False
        self.overflowed = False
        self.upgraded = False  # the handshake accepted: every byte from now on is a frame
        self.close_queued = False  # a Close frame is on its way: nothing goes after it
        # Set when the server closes for a reason of its own (room deleted, kicked, shutting
        # down): its Close goes after everything queued, since the events before it (room.deleted,
        # user.kicked) explain it. Unset, a Close answers the peer's and skips the queue.
        self.close_after_queue = False
        self._direct = True  # write straight to the kernel: nothing queued, socket healthy
        # Called once when the client is lost to us (write error or overflow); its connection then ends.
        self.on_dead: Callable[[], None] | None = None
        # Asked when the stream is closed after the upgrade without a Close frame sent: the code
        # and reason to send (trio-websocket fails a connection on a protocol error, e.g. 1007
        # for invalid UTF-8, by closing the stream), or None to send nothing.
        self.unsent_close: Callable[[], tuple[int, str] | None] | None = None

    @property
    def dead(self) -> bool:
        return self.broken or self.overflowed

    @property
    def queued(self) -> int:
        return self._queued

    @property
    def fileno(self) -> int:
        return self._fd

    @property
    def closed(self) -> bool:
        """Closed by us: its file descriptor may already belong to another socket."""
        return self._closed

    def _append(self, view: memoryview) -> None:
        if self._chunks is _NOTHING:
            self._chunks = deque()
        self._chunks.append(view)

    def write_now(self, data: bytes) -> bool:
        """Queue ``data`` (whole frames) without blocking; False if the socket is gone or closing."""
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
            return self._queue(memoryview(data), written)
        if self._closed or self.broken or self.overflowed or self.close_queued:
            return False
        return self._queue(memoryview(data))

    def _queue(self, view: memoryview, sent: int = 0) -> bool:
        """Keep what the kernel refused, in order, and make sure a drain task will write it."""
        self._direct = False
        if not self._chunks:
            self._head_sent = sent
        self._append(view)
        self._queued += len(view) - sent
        if not self._start_drain():
            self._break()
            return False
        if self._queued > self._limit:
            self._overflow()
        return not self.overflowed

    def _start_drain(self) -> bool:
        if not self._draining:
            try:
                self._nursery.start_soon(self._drain)
            except RuntimeError:  # the socket's nursery is closing: it is on its way out
                return False
            self._draining = True
        return True

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

    def _write_queued(self) -> None:
        """Write from the head of the queue until the kernel refuses or nothing is left."""
        while self._chunks and not self.broken:
            head = self._chunks[0]
            written = self._try_write(head[self._head_sent :])
            if written == 0:
                return
            self._queued -= written
            self._head_sent += written
            if self._head_sent == len(head):
                self._chunks.popleft()
                self._head_sent = 0
        if not self._chunks:
            self._chunks = _NOTHING

    def _settled(self) -> None:
        """Nothing is queued any more (sent, or dropped with the socket)."""
        if self._drained is not None:
            self._drained.set()
            self._drained = None

    def _clear(self) -> None:
        self._chunks = _NOTHING
        self._head_sent = 0
        self._queued = 0

    def _break(self) -> None:
        first = not self.dead
        self.broken = True
        self._direct = False
        self._clear()
        self._settled()
        if first and self.on_dead is not None:
            self.on_dead()

    def _drop_unsent(self) -> None:
        """Drop every queued frame not yet begun; keep the rest of the one half written, so that
        what follows it parses."""
        if not self._chunks:
            return
        head, sent = self._chunks[0], self._head_sent
        self._clear()
        if sent:
            end = frame_end(head, sent) if self.upgraded else len(head)
            if end > sent:
                self._append(head[:end])
                self._head_sent = sent
                self._queued = end - sent

    def _put_close(self, frame: bytes, *, after_queue: bool = False) -> None:
        """Send ``frame`` (a Close) right after the frame in flight, or after everything queued
        with ``after_queue``; nothing more after it. Either way ``_flush_close`` bounds the wait."""
        if not after_queue:
            self._drop_unsent()
        self.close_queued = True
        self._direct = False
        view = memoryview(frame)
        if self._chunks:
            self._append(view)
            self._queued += len(view)
            if not self._start_drain():
                self._write_queued()  # the socket is on its way out: what the kernel takes now
            return
        written = self._try_write(view)
        if written < len(view) and not self.broken:
            self._append(view)
            self._head_sent = written
            self._queued = len(view) - written
            if not self._start_drain():
                self._write_queued()

    def _overflow(self) -> None:
        """The client stopped reading: drop what it is owed and say 4009 after the frame in flight."""
        self.overflowed = True
        self._put_close(close_frame(CLOSE_TOO_SLOW, "too slow"))
        if self.on_dead is not None:
            self.on_dead()

    def say_close(self, code: int, reason: str) -> None:
        """Close the WebSocket from our side without trio-websocket (a failure in serving it):
        a Close frame after the frame in flight, if the upgrade happened and none was sent."""
        if self.upgraded and not self.close_queued and not self.dead and not self._closed:
            self._put_close(close_frame(code, reason))

    async def wait_close_sent(self) -> None:
        """Wait until a queued Close frame has gone to the kernel (or the socket is gone)."""
        if self.close_queued:
            await self._wait_drained()
        else:
            await trio.lowlevel.checkpoint()

    async def _drain(self) -> None:
        """Write what the kernel refused as it takes more; ends when nothing is left."""
        try:
            while self._chunks and not self._closed and not self.broken:
                try:
                    await trio.lowlevel.wait_writable(self._fd)
                except (trio.ClosedResourceError, OSError):
                    return  # the socket was closed under us
                self._write_queued()
            if not self._chunks and self.overflowed:
                self._break()  # the 4009 frame is out; nothing more goes to this client
        except Exception:  # a fault of ours: this client is lost, the server is not
            log.exception("outbox drain failed on fd %s", self._fd)
            self._break()
        finally:
            self._draining = False
            if not self._chunks:
                self._direct = not (self._closed or self.broken or self.overflowed or self.close_queued)
                self._settled()

    async def _wait_drained(self) -> None:
        if self._chunks and not self.broken and not self._closed and self._start_drain():
            if self._drained is None:
                self._drained = trio.Event()
            await self._drained.wait()
        else:
            await trio.lowlevel.checkpoint()

    async def _flush_close(self) -> None:
        """Wait, at most CLOSE_FLUSH_S, for a queued Close frame to go; give the peer up after."""
        with trio.move_on_after(CLOSE_FLUSH_S):
            await self._wait_drained()
        if self._chunks and not self._closed:
            self._break()  # it took nothing for that long: it is not reading

    # ---- trio.abc.HalfCloseableStream, for trio-websocket ----------------------------

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed:
            raise trio.ClosedResourceError("outbox closed")
        if self.close_queued or self.dead:
            if not self.dead:
                await self._flush_close()
            raise trio.BrokenResourceError("socket closing")
        frame = bytes(data)
        if self.upgraded:
            if frame and frame[0] & 0x0F == _OP_CLOSE:
                self._put_close(frame, after_queue=self.close_after_queue)
                await self._flush_close()
                if self.broken:
                    raise trio.BrokenResourceError("socket gone")
                return
            # Another control frame (a pong): queued in order, not waited for, so the reader
            # goes on reading and sees the peer's Close whatever the outbox holds.
            if not self.write_now(frame):
                raise trio.BrokenResourceError("socket gone")
            await trio.lowlevel.checkpoint()
            return
        if frame.startswith(_UPGRADED):
            self.upgraded = True
            if self._handshake_read is not None:
                self._handshake_read.cancel()
        if not self.write_now(frame) and self.dead:
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
        """For trio-websocket's reader, during the handshake only: once the 101 is sent, it gets
        :class:`Upgraded` instead of bytes (none read after the upgrade), and stops."""
        while True:
            if self._closed:
                raise trio.ClosedResourceError("outbox closed")
            with trio.CancelScope() as self._handshake_read:
                if not self.upgraded:
                    await trio.lowlevel.wait_readable(self._fd)
            self._handshake_read = None
            if self.upgraded:
                raise Upgraded
            if self._closed:
                raise trio.ClosedResourceError("outbox closed")
            try:
                return os.read(self._fd, max_bytes or 65536)
            except BlockingIOError:
                continue
            except OSError as exc:
                raise trio.BrokenResourceError(exc) from exc

    async def aclose(self) -> None:
        if self._closed:
            return
        if self.upgraded and not self.close_queued and not self.dead and self.unsent_close is not None:
            said = self.unsent_close()
            if said is not None:
                self._put_close(close_frame(*said))
                await self._flush_close()
        self._write_queued()  # last chance, without waiting (a Close frame said on the way out)
        self._closed = True
        self._direct = False
        self._clear()
        self._settled()
        await self._stream.aclose()
