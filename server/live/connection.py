"""One live socket: its reader, its closer, and how the room actor writes to it."""

from __future__ import annotations

import contextlib
import itertools
import logging
import secrets
import uuid
from collections import deque
from typing import Any, Protocol

import trio
from pydantic import BaseModel
from trio_websocket import ConnectionClosed

from actors.commands import Leave, Op
from actors.room_actor import CLOSE_INTERNAL, CLOSE_POLICY, Request, RoomActor, error_message
from protocol.codec import DecodeError, Encoding, decode, encode_frame
from protocol.errors import BadRequest, ProtocolError
from protocol.ops import parse_envelope, parse_op_data, parse_ref
from server.live.admission import admit
from server.live.outbox import OutboxStream
from server.live.prepare import prepare
from server.live.websocket import WebSocket
from storage.rooms import Rooms
from storage.sanctions import Sanctions

log = logging.getLogger("seda.live")

# Connection ids are unique across the nodes of a cluster (an edge's sockets are members of a
# room on another node): each process counts from its own random block of 2**20, below 2**50
# (exact in JSON). Two processes share a block with odds of about 1 in 2**29.
_ids = itertools.count((secrets.randbits(30) << 20) + 1)
CLOSE_GRACE_S = 2.0
CLOSE_TOO_LARGE = 1009


def next_conn_id() -> int:
    return next(_ids)


class RoomLink(Protocol):
    """How a socket's ops reach its room: the actor here, or the owner on another node."""

    async def submit(
        self, conn: LiveConnection, op: str, data: BaseModel, raw: Any, ref: int | None, rate_key: str
    ) -> bool:
        """Send the op on (its reply reaches the socket later); False if the room is gone.
        Raises a ProtocolError to refuse it at once."""
        ...

    async def leave(self, conn: LiveConnection) -> None:
        """The socket is closing: it leaves the room (best effort; never raises)."""


class LocalLink:
    """The room runs here: ops go straight into its actor's inbox."""

    def __init__(self, actor: RoomActor, rooms: Rooms, sanctions: Sanctions) -> None:
        self.actor = actor
        self._rooms = rooms
        self._sanctions = sanctions

    async def submit(
        self, conn: LiveConnection, op: str, data: BaseModel, raw: Any, ref: int | None, rate_key: str
    ) -> bool:
        admit(op, self.actor)
        new_id, context = "", dict[str, Any]()
        if op != "ping":
            new_id, context = await prepare(self._rooms, self.actor, conn.room_id, op, data)
            if op == "chat.send" and conn.user_id is not None:
                site_mute = self._sanctions.muted_until_ms(conn.user_id)
                if site_mute is not None:  # the room's rule refuses it, in the op's turn
                    context["site_muted_until"] = site_mute
        command = Op(conn.conn_id, op, data, new_id, context)
        try:
            await self.actor.send(Request(command, conn=conn, ref=ref, rate_key=rate_key))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True

    async def leave(self, conn: LiveConnection) -> None:
        # If the actor is gone, the socket went with it: nothing to leave.
        with (
            trio.CancelScope(shield=True),
            trio.move_on_after(5),
            contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError),
        ):
            await self.actor.send(Request(Leave(conn.conn_id)))


class LiveConnection:
    """A socket in a room. The actor calls ``send_frame``/``close``; neither ever blocks."""

    __slots__ = (
        "_close",
        "_invalid",
        "_invalid_limit",
        "_invalid_window_s",
        "_max_frame_bytes",
        "_outbox",
        "_reading",
        "_ws",
        "conn_id",
        "encoding",
        "room_id",
        "user_id",
    )

    def __init__(
        self,
        ws: WebSocket,
        outbox: OutboxStream,
        encoding: Encoding,
        *,
        conn_id: int,
        room_id: uuid.UUID,
        user_id: str | None,
        invalid_limit: int,
        invalid_window_s: float,
        max_frame_bytes: int,
    ) -> None:
        self.conn_id = conn_id
        self.encoding = encoding
        self.room_id = room_id
        self.user_id = user_id
        self._ws = ws
        self._outbox = outbox
        self._invalid: deque[float] | None = None  # when its invalid frames came (made at the first)
        self._invalid_limit = invalid_limit
        self._invalid_window_s = invalid_window_s
        self._max_frame_bytes = max_frame_bytes
        self._close: tuple[int, str] | None = None
        self._reading: trio.CancelScope | None = None
        outbox.on_dead = self._lost

    # ---- Subscriber -------------------------------------------------------------------

    def send_frame(self, frame: bytes) -> None:
        self._outbox.write_now(frame)

    def close(self, code: int, reason: str = "") -> None:
        """Stop reading and close with ``code`` (the first close asked for wins)."""
        if self._close is None:
            self._close = (code, reason)
            if self._reading is not None:
                self._reading.cancel()

    def _lost(self) -> None:
        """The outbox gave up on the client (write error, or overflow with 4009 queued)."""
        if self._reading is not None:
            self._reading.cancel()

    # ---- the socket's life -----------------------------------------------------------

    async def serve(self, link: RoomLink) -> None:
        """Read ops until the client goes or the room closes the socket; then leave the room.

        One task per socket, which reads (server.live.websocket): a close from the room (or the
        outbox losing the client) cancels the read, and the close handshake runs here.
        """
        try:
            try:
                with trio.CancelScope() as self._reading:
                    if self._close is not None or self._outbox.dead:
                        self._reading.cancel()
                    await self._read(link)
            except Exception:  # a fault of ours in serving this socket: it closes, nothing else does
                log.exception(
                    "live socket %s failed (room %s, user %s)", self.conn_id, self.room_id, self.user_id
                )
                self.close(CLOSE_INTERNAL, "internal error")
            if self._close is not None:
                # Our close, not an answer to the client's: the events before it go first.
                self._outbox.close_after_queue = True
                with trio.move_on_after(CLOSE_GRACE_S):
                    await self._ws.aclose(*self._close)
            elif self._outbox.dead:
                with trio.move_on_after(CLOSE_GRACE_S):
                    await self._outbox.wait_send_all_might_not_block()  # the 4009 frame, if any
        finally:
            await link.leave(self)

    async def _read(self, link: RoomLink) -> None:
        rate_key = self.user_id or f"guest:{self.conn_id}"
        while True:
            try:
                payload = await self._ws.get_message()
            except ConnectionClosed:
                return
            if self._too_large(payload):
                self.close(CLOSE_TOO_LARGE, "frame too large")
                return
            ref = None
            try:
                try:
                    message = decode(payload, self.encoding)
                except DecodeError as exc:
                    raise BadRequest(str(exc), field="frame") from None
                if isinstance(message, dict):
                    ref = parse_ref(message.get("ref"))
                envelope = parse_envelope(message)
                data = parse_op_data(envelope.op, envelope.data)
            except BadRequest as error:
                self._reply_error(ref, error)
                if self._count_invalid():
                    self.close(CLOSE_POLICY, "too many invalid frames")
                    return
                continue
            try:
                sent = await link.submit(self, envelope.op, data, envelope.data, envelope.ref, rate_key)
            except ProtocolError as error:
                self._reply_error(envelope.ref, error)
                continue
            if not sent:
                self.close(CLOSE_INTERNAL, "room restarting")
                return

    def _reply_error(self, ref: int | None, error: ProtocolError) -> None:
        self.send_frame(encode_frame(error_message(ref, error), self.encoding))

    def _too_large(self, payload: str | bytes) -> bool:
        """Over the frame limit in bytes. trio-websocket refuses (1009) a message over the limit
        as it arrives, but counts a text message in characters, which may be 4 bytes each."""
        if isinstance(payload, bytes) or len(payload) * 4 <= self._max_frame_bytes:
            return False  # bytes were counted already; or too few characters to be over
        return len(payload.encode()) > self._max_frame_bytes

    def _count_invalid(self) -> bool:
        """Record an invalid frame; True once more than the limit came within the window."""
        now = trio.current_time()
        if self._invalid is None:
            self._invalid = deque()
        invalid = self._invalid
        invalid.append(now)
        while invalid and invalid[0] < now - self._invalid_window_s:
            invalid.popleft()
        return len(invalid) > self._invalid_limit
