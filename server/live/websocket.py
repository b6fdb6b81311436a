"""A live socket after its handshake: read with wsproto in the socket's own task.

trio-websocket does the opening handshake (and refuses upgrades); once it has sent the 101,
its reader task stops (:meth:`OutboxStream.receive_some` ends it) and :class:`WebSocket`
takes the wsproto connection over. It keeps no task, channel, lock or event of its own: the
socket's one task reads frames when it asks for the next message, and answers pings and the
peer's Close as it meets them. That is what an idle socket costs less for (issue 17).

It behaves as trio-websocket 0.12.2's ``WebSocketConnection`` did for a server after the
upgrade: a message over ``max_message_size`` (``len()``, characters for text) is refused with
Close 1009; a frame that breaks RFC 6455 (1002) or holds invalid UTF-8 (1007) ends the
connection and the stream's owner says that code (:attr:`closed`); the peer's Close is
answered and the stream closed; a stream that ends without a Close is 1006 (nothing said).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Generator

import trio
from trio_websocket import CloseReason, ConnectionClosed, WebSocketConnection
from wsproto.connection import Connection, ConnectionState
from wsproto.events import BytesMessage, CloseConnection, Event, Ping, TextMessage

from actors.room_actor import CLOSE_GOING_AWAY
from server.live.outbox import OutboxStream

RECEIVE_BYTES = 4096  # as trio-websocket reads
_ABNORMAL = 1006
_TOO_BIG = 1009
# Codes that are never sent in a Close frame (RFC 6455 7.4.1): nothing to answer with.
_UNSENDABLE = frozenset({1005, 1006, 1015})


class WebSocket:
    """One server WebSocket, open; :meth:`get_message` reads, :meth:`aclose` closes."""

    __slots__ = ("_fd", "_max_message_size", "_outbox", "_parts", "_pending", "_proto", "_size", "closed")

    def __init__(self, proto: Connection, outbox: OutboxStream, *, max_message_size: int) -> None:
        self._proto = proto
        self._outbox = outbox
        self._fd = outbox.fileno
        self._max_message_size = max_message_size
        self._parts: list[str | bytes | bytearray] = []
        self._size = 0
        # What the handshake left unread (a client's first frames may come with its request).
        self._pending: Generator[Event, None, None] | None = proto.events()
        # Why the connection is closed or closing (None while open): the peer's Close, ours
        # (1000), or 1006 / 1002 / 1007 / 1009.
        self.closed: CloseReason | None = None

    async def get_message(self) -> str | bytes:
        """The next message; raises ConnectionClosed once the connection is closing or closed."""
        while self.closed is None:
            message = await self._next(keep=True)
            if message is not None:
                return message
        raise ConnectionClosed(self.closed)

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        """Send a Close, read on (dropping messages) until the peer's Close or the stream ends,
        then close the stream. Does nothing if the connection is already closing."""
        if self.closed is not None:
            return
        try:
            if self._proto.state is ConnectionState.OPEN:
                self.closed = CloseReason(1000, None)
                await self._send(CloseConnection(code=code, reason=reason))
            while self._pending is not None or self._proto.state is not ConnectionState.CLOSED:
                await self._next(keep=False)
        except ConnectionClosed:
            pass
        finally:
            await self._close_stream()

    def close_owed(self) -> tuple[int, str] | None:
        """What to send when the stream is closed without a Close frame: wsproto failing the
        connection (1007 invalid UTF-8, 1002 protocol error) owes the client that code (RFC 6455
        7.1.7); nothing if the client just went; 1001 if the server is stopping under the socket
        (its task cancelled)."""
        reason = self.closed
        if reason is None:
            return CLOSE_GOING_AWAY, "server shutting down"
        if reason.code in _UNSENDABLE:
            return None
        return reason.code, reason.reason or ""

    # ---- reading -------------------------------------------------------------------------

    async def _next(self, *, keep: bool) -> str | bytes | None:
        """Handle what wsproto has, else read more; a whole message if one came (``keep``).
        Raises ConnectionClosed when reading is over."""
        pending = self._pending
        if pending is None:
            data = await self._receive()
            if not data:  # the stream ended, or failed, without a Close
                self._abort()
                raise ConnectionClosed(self.closed)
            if self._proto.state is ConnectionState.CLOSED:
                return None
            self._proto.receive_data(data)
            pending = self._pending = self._proto.events()
        for event in pending:
            if isinstance(event, (TextMessage, BytesMessage)):
                message = await self._on_message(event, keep)
                if message is not None:
                    return message
            elif isinstance(event, Ping):
                if self._proto.state is ConnectionState.OPEN:
                    # trio-websocket's own handler: it sends the Pong through _send.
                    await WebSocketConnection._handle_ping_event(self, event)  # type: ignore[arg-type]
            elif isinstance(event, CloseConnection):
                await self._on_close(event)
        self._pending = None
        return None

    async def _receive(self) -> bytes:
        """Bytes from the socket (b"" at its end, or when it failed or was closed)."""
        while not self._outbox.closed:
            try:
                return os.read(self._fd, RECEIVE_BYTES)
            except BlockingIOError:
                pass
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                    return b""
            try:
                await trio.lowlevel.wait_readable(self._fd)
            except (trio.ClosedResourceError, OSError):
                return b""
        return b""

    async def _on_message(self, event: TextMessage | BytesMessage, keep: bool) -> str | bytes | None:
        self._size += len(event.data)
        self._parts.append(event.data)
        if self._size > self._max_message_size:
            self._size, self._parts = 0, []
            if self.closed is None:
                err = f"Exceeded maximum message size: {self._max_message_size} bytes"
                self.closed = CloseReason(_TOO_BIG, err)
                await self._send(CloseConnection(code=_TOO_BIG, reason=err))
                raise ConnectionClosed(self.closed)
            return None
        if not event.message_finished:
            return None
        parts, self._size, self._parts = self._parts, 0, []
        if not keep:
            return None
        if isinstance(event, BytesMessage):
            return b"".join(parts)  # type: ignore[arg-type]
        return parts[0] if len(parts) == 1 else "".join(parts)  # type: ignore[arg-type, return-value]

    async def _on_close(self, event: CloseConnection) -> None:
        """The peer's Close (answered, if it began the close), or wsproto failing the connection
        (1002, 1007: its state stays OPEN and nothing is answered; the owner says it)."""
        if self._proto.state is ConnectionState.REMOTE_CLOSING:
            self.closed = CloseReason(event.code, event.reason or None)
            await self._send(event.response())
        self.closed = CloseReason(event.code, event.reason or None)
        self._pending = None
        await self._close_stream()
        raise ConnectionClosed(self.closed)

    # ---- writing and ending ----------------------------------------------------------------

    async def _send(self, event: Event) -> None:
        data = self._proto.send(event)
        try:
            await self._outbox.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._abort()
            assert self.closed is not None
            raise ConnectionClosed(self.closed) from None

    def _abort(self) -> None:
        """The stream is gone without a close handshake: 1006 unless a close was under way."""
        if self._proto.state is ConnectionState.OPEN:
            self._proto.send(CloseConnection(code=_ABNORMAL))
        if self.closed is None:
            self.closed = CloseReason(_ABNORMAL, None)
        self._pending = None

    async def _close_stream(self) -> None:
        self._pending = None
        with contextlib.suppress(trio.BrokenResourceError):
            await self._outbox.aclose()
