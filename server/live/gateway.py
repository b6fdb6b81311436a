"""The live listener: TCP accept, the WebSocket handshake, who may enter which room."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import trio
from trio_websocket import WebSocketRequest, wrap_server_stream

from actors.commands import Join
from actors.registry import RoomRegistry
from actors.room_actor import MAX_REPLAY, Request, RoomActor
from protocol.codec import Encoding
from protocol.errors import BadRequest, Forbidden, NotFound, ProtocolError, Unauthorized
from server.auth import Principal, TokenIssuer
from server.live.connection import LiveConnection, next_conn_id
from server.live.outbox import OutboxStream
from server.live.user_sockets import UserSockets
from server.metrics import Metrics
from storage.rooms import Rooms, is_private
from storage.sanctions import Sanctions
from storage.users import Users

log = logging.getLogger("seda.live")

HANDSHAKE_TIMEOUT_S = 10.0
ROOM_PATH_PREFIX = "/ws/rooms/"


@dataclass(frozen=True)
class Admission:
    """Who is entering which room, as what."""

    room_id: uuid.UUID
    user_id: str | None
    username: str | None
    role: str
    is_admin: bool
    since: int | None
    is_artist: bool = False


@dataclass(frozen=True)
class GatewayLimits:
    max_frame_bytes: int = 64 * 1024
    outbox_limit_bytes: int = 1 << 20
    invalid_frame_limit: int = 20
    invalid_frame_window_s: float = 10.0


def _token_of(request: WebSocketRequest, query: dict[str, list[str]]) -> str | None:
    for name, value in request.headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode(errors="replace").strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("Authorization header must be 'Bearer <token>'", field="Authorization")
            return token.strip()
    tokens = query.get("token")
    return tokens[-1] if tokens else None


class LiveGateway:
    def __init__(
        self,
        *,
        tokens: TokenIssuer,
        users: Users,
        rooms: Rooms,
        registry: RoomRegistry,
        user_sockets: UserSockets,
        sanctions: Sanctions,
        metrics: Metrics,
        limits: GatewayLimits,
    ) -> None:
        self._tokens = tokens
        self._users = users
        self._rooms = rooms
        self._registry = registry
        self._user_sockets = user_sockets
        self._sanctions = sanctions
        self._metrics = metrics
        self._limits = limits
        self._accepting = True
        self._open = 0
        self._all_closed = trio.Event()
        self._all_closed.set()

    async def serve(self, host: str, port: int, *, task_status: trio.TaskStatus[int]) -> None:
        """Listen until cancelled; reports the bound port through ``task_status``."""
        listeners = await trio.open_tcp_listeners(port, host=host)
        bound = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            task_status.started(bound)
            await trio.serve_listeners(self._handle, listeners, handler_nursery=nursery)

    def stop_accepting(self) -> None:
        self._accepting = False

    async def wait_closed(self, timeout: float) -> None:
        """Wait (at most ``timeout``) until every socket has finished closing."""
        with trio.move_on_after(timeout):
            await self._all_closed.wait()

    async def _handle(self, stream: trio.SocketStream) -> None:
        self._open += 1
        self._all_closed = trio.Event()
        outbox: OutboxStream | None = None
        try:
            async with trio.open_nursery() as nursery:
                outbox = OutboxStream(stream, nursery, limit=self._limits.outbox_limit_bytes)
                await self._session(nursery, outbox)
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await (outbox or stream).aclose()
            self._open -= 1
            if self._open == 0:
                self._all_closed.set()

    async def _session(self, nursery: trio.Nursery, outbox: OutboxStream) -> None:
        request: WebSocketRequest | None = None
        with trio.move_on_after(HANDSHAKE_TIMEOUT_S):
            request = await wrap_server_stream(nursery, outbox, max_message_size=self._limits.max_frame_bytes)
        if request is None:
            return
        try:
            admission = await self._admit(request)
            actor = await self._registry.get(str(admission.room_id))
        except ProtocolError as error:
            body = json.dumps({"error": error.to_body()}).encode()
            with trio.move_on_after(HANDSHAKE_TIMEOUT_S):
                await request.reject(error.http_status, body=body)
            return
        if actor is None or not self._accepting:
            status = 503 if actor is not None or self._registry.closing else 404
            with trio.move_on_after(HANDSHAKE_TIMEOUT_S):
                await request.reject(status)
            return
        encoding, subprotocol = Encoding.negotiate(request.proposed_subprotocols)
        ws = await request.accept(subprotocol=subprotocol)
        conn_id = next_conn_id()
        conn = LiveConnection(
            ws,
            outbox,
            encoding,
            conn_id=conn_id,
            room_id=admission.room_id,
            user_id=admission.user_id,
            rooms=self._rooms,
            sanctions=self._sanctions,
            invalid_limit=self._limits.invalid_frame_limit,
            invalid_window_s=self._limits.invalid_frame_window_s,
        )
        self._metrics.live_connections.inc()
        try:
            actor = await self._enter(actor, admission, conn)
            if actor is None:
                with trio.move_on_after(HANDSHAKE_TIMEOUT_S):
                    await ws.aclose(1001 if self._registry.closing else 1011, "room unavailable, reconnect")
                return
            if admission.user_id is not None:
                self._user_sockets.add(admission.user_id, conn)
            try:
                await conn.serve(actor)
            finally:
                if admission.user_id is not None:
                    self._user_sockets.remove(admission.user_id, conn)
        finally:
            self._metrics.live_connections.dec()

    async def _enter(self, actor: RoomActor, admission: Admission, conn: LiveConnection) -> RoomActor | None:
        """Hand the socket to the room. An actor that stopped meanwhile is replaced, a few times at most."""
        join = Join(
            conn.conn_id,
            admission.user_id,
            admission.username,
            admission.role,
            admission.is_admin,
            admission.is_artist,
            self._sanctions.muted_until_ms(admission.user_id) if admission.user_id is not None else None,
        )
        for _ in range(3):
            stored = []
            if admission.since is not None and admission.since + 1 < actor.ring_start():
                stored = await self._rooms.events_after(admission.room_id, admission.since, MAX_REPLAY)
            try:
                await actor.send(Request(join, conn=conn, since=admission.since, stored=stored))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                try:
                    replacement = await self._registry.get(str(admission.room_id))
                except ProtocolError:
                    return None
                if replacement is None:
                    return None
                actor = replacement
                continue
            return actor
        return None

    async def _admit(self, request: WebSocketRequest) -> Admission:
        """Check path, token, room and membership; raise the refusal (401/403/404/400) otherwise."""
        parts = urlsplit(request.path)
        if not parts.path.startswith(ROOM_PATH_PREFIX):
            raise NotFound("live sockets live at /ws/rooms/{room_id}")
        try:
            room_id = uuid.UUID(parts.path.removeprefix(ROOM_PATH_PREFIX).strip("/"))
        except ValueError:
            raise NotFound("no such room") from None
        query = parse_qs(parts.query)
        since: int | None = None
        if "since" in query:
            raw = query["since"][-1]
            if not raw.isdigit() or len(raw) > 18:
                raise BadRequest("since must be a non-negative integer", field="since")
            since = int(raw)
        token = _token_of(request, query)
        principal: Principal | None = self._tokens.verify(token) if token is not None else None
        if principal is not None:
            self._sanctions.refuse_if_banned(str(principal.user_id))
        room = await self._rooms.get(room_id)
        if room is None:
            raise NotFound("no such room")
        if principal is None:
            if is_private(room):
                raise Forbidden("this room is private; log in as a member")
            return Admission(room_id, None, None, "guest", False, since)
        user = await self._users.get(principal.user_id)
        if user is None:
            raise Unauthorized("the token's user no longer exists", field="token")
        role = await self._rooms.enter(room, user.id, is_admin=principal.is_admin)
        is_artist = principal.role == "artist" or user.role == "artist"
        return Admission(room_id, str(user.id), user.username, role, principal.is_admin, since, is_artist)
