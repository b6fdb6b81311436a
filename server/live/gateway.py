"""The live listener: TCP accept, the WebSocket handshake, who may enter which room."""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import trio
from trio_websocket import WebSocketConnection, WebSocketRequest
from wsproto import ConnectionType, WSConnection

from actors.commands import Join
from actors.registry import RoomRegistry
from actors.room_actor import (
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL,
    CLOSE_RESTART,
    CLOSE_ROOM_DELETED,
    Request,
    RoomActor,
)
from protocol.codec import TOKEN_SUBPROTOCOL_PREFIX, Encoding
from protocol.errors import BadRequest, Forbidden, NotFound, OwnedElsewhere, ProtocolError, Unauthorized
from server.auth import Principal, TokenIssuer
from server.cluster.bus import BusError, BusTimeout
from server.cluster.edge import RoomMoved
from server.cluster.service import Cluster, EdgeLink
from server.cluster.sockets import reuse_port_socket
from server.live.connection import LiveConnection, LocalLink, RoomLink, next_conn_id
from server.live.outbox import CLOSE_FLUSH_S, OutboxStream, Upgraded
from server.live.prepare import stored_for_resume
from server.live.user_sockets import UserSockets
from server.live.websocket import WebSocket
from server.metrics import Metrics
from storage.blocks import Blocks
from storage.rooms import Rooms, is_private
from storage.sanctions import Sanctions
from storage.users import Users

log = logging.getLogger("seda.live")

HANDSHAKE_TIMEOUT_S = 10.0
EDGE_RETRY_S = 0.2
EDGE_JOIN_TIMEOUT_S = 2.0  # an owner that does not answer a join within this is looked for again
ROOM_PATH_PREFIX = "/ws/rooms/"


@dataclass(frozen=True, slots=True)
class Admission:
    """Who is entering which room, as what."""

    room_id: uuid.UUID
    user_id: str | None
    username: str | None
    role: str
    is_admin: bool
    since: int | None
    is_artist: bool = False
    blocked: frozenset[str] = frozenset()  # whom the user blocks: their chat is hidden on this socket


@dataclass(frozen=True)
class GatewayLimits:
    max_frame_bytes: int = 64 * 1024
    outbox_limit_bytes: int = 1 << 20
    invalid_frame_limit: int = 20
    invalid_frame_window_s: float = 10.0


@dataclass(slots=True)
class _Client:
    """Who a socket is, as far as the gateway knows yet (for the log)."""

    room_id: uuid.UUID | None = None
    user_id: str | None = None


async def _refuse(request: WebSocketRequest, status: int, body: bytes = b"") -> None:
    with trio.move_on_after(HANDSHAKE_TIMEOUT_S):
        await request.reject(status, body=body)


async def _handshake(nursery: trio.Nursery, outbox: OutboxStream, max_message_size: int) -> WebSocketRequest:
    """trio-websocket's ``wrap_server_stream``, but its reader task stops at the upgrade
    (:class:`Upgraded`): the socket's own task reads from then on (:class:`WebSocket`)."""
    connection = WebSocketConnection(
        outbox, WSConnection(ConnectionType.SERVER), max_message_size=max_message_size
    )
    nursery.start_soon(_read_handshake, connection)
    return await connection._get_request()


async def _read_handshake(connection: WebSocketConnection) -> None:
    with contextlib.suppress(Upgraded):
        await connection._reader_task()


async def _upgrade(
    request: WebSocketRequest, outbox: OutboxStream, subprotocol: str | None, max_message_size: int
) -> WebSocket:
    """Accept the upgrade, and take the connection over from trio-websocket."""
    accepted = await request.accept(subprotocol=subprotocol)
    proto = accepted._wsproto.connection
    assert proto is not None  # the 101 was sent: wsproto's handshake made the connection
    return WebSocket(proto, outbox, max_message_size=max_message_size)


def _token_of(request: WebSocketRequest, query: dict[str, list[str]]) -> str | None:
    for name, value in request.headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode(errors="replace").strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("Authorization header must be 'Bearer <token>'", field="Authorization")
            return token.strip()
    for offered in request.proposed_subprotocols:
        if offered.startswith(TOKEN_SUBPROTOCOL_PREFIX):
            return offered.removeprefix(TOKEN_SUBPROTOCOL_PREFIX)
    tokens = query.get("token")
    return tokens[-1] if tokens else None


class LiveGateway:
    def __init__(
        self,
        *,
        tokens: TokenIssuer,
        users: Users,
        rooms: Rooms,
        blocks: Blocks,
        registry: RoomRegistry,
        user_sockets: UserSockets,
        sanctions: Sanctions,
        metrics: Metrics,
        limits: GatewayLimits,
        cluster: Cluster | None = None,
        retry_s: float = 7.0,
    ) -> None:
        self._tokens = tokens
        self._users = users
        self._rooms = rooms
        self._blocks = blocks
        self._registry = registry
        self._user_sockets = user_sockets
        self._sanctions = sanctions
        self._metrics = metrics
        self._limits = limits
        self._cluster = cluster
        self._retry_s = retry_s  # how long a socket waits for its room's owner to be found (> the lease TTL)
        self._accepting = True
        self._open = 0
        self._all_closed = trio.Event()
        self._all_closed.set()

    async def serve(
        self, host: str, port: int, *, reuse_port: bool = False, task_status: trio.TaskStatus[int]
    ) -> None:
        """Listen until cancelled; reports the bound port through ``task_status``. With
        ``reuse_port``, the port is shared with other workers (SO_REUSEPORT)."""
        listeners: list[trio.SocketListener]
        if reuse_port:
            listeners = [trio.SocketListener(trio.socket.from_stdlib_socket(reuse_port_socket(host, port)))]
        else:
            listeners = await trio.open_tcp_listeners(port, host=host)
        bound = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            task_status.started(bound)
            await trio.serve_listeners(self._handle, listeners, handler_nursery=nursery)

    @property
    def open_sockets(self) -> int:
        return self._open

    def stop_accepting(self) -> None:
        self._accepting = False

    async def wait_closed(self, timeout: float) -> None:
        """Wait (at most ``timeout``) until every socket has finished closing."""
        with trio.move_on_after(timeout):
            await self._all_closed.wait()

    async def _handle(self, stream: trio.SocketStream) -> None:
        """Serve one TCP connection. Nothing that goes wrong in it leaves it: an unexpected error
        closes this socket (1011 once it is a WebSocket), is logged with its room and user, and
        the gateway, its other sockets and the REST API go on."""
        self._open += 1
        self._all_closed = trio.Event()
        outbox: OutboxStream | None = None
        client = _Client()
        try:
            async with trio.open_nursery() as nursery:
                outbox = OutboxStream(stream, nursery, limit=self._limits.outbox_limit_bytes)
                try:
                    await self._session(nursery, outbox, client)
                except Exception:
                    log.exception("live socket failed (room %s, user %s)", client.room_id, client.user_id)
                    outbox.say_close(CLOSE_INTERNAL, "internal error")
                # A Close frame on its way (our own, or the answer to the client's) goes out
                # before the socket does.
                with trio.move_on_after(CLOSE_FLUSH_S):
                    await outbox.wait_close_sent()
                nursery.cancel_scope.cancel()
        except* Exception:  # a task of this socket failed: trio-websocket's reader, a drain
            log.exception("live socket failed (room %s, user %s)", client.room_id, client.user_id)
            if outbox is not None:
                outbox.say_close(CLOSE_INTERNAL, "internal error")
        finally:
            with trio.CancelScope(shield=True):
                try:
                    await (outbox or stream).aclose()
                except Exception:
                    log.exception("closing a live socket failed")
            self._open -= 1
            if self._open == 0:
                self._all_closed.set()

    async def _session(self, nursery: trio.Nursery, outbox: OutboxStream, client: _Client) -> None:
        entry = await self._accept(nursery, outbox, client)
        if entry is None:
            return
        ws, admission, actor, encoding = entry
        outbox.unsent_close = ws.close_owed
        conn_id = next_conn_id()
        conn = LiveConnection(
            ws,
            outbox,
            encoding,
            conn_id=conn_id,
            room_id=admission.room_id,
            user_id=admission.user_id,
            invalid_limit=self._limits.invalid_frame_limit,
            invalid_window_s=self._limits.invalid_frame_window_s,
            max_frame_bytes=self._limits.max_frame_bytes,
        )
        self._metrics.live_connections.inc()
        blocks = self._user_sockets.blocks
        blocks.assign(conn_id, admission.blocked)  # before the join: the welcome already hides them
        try:
            link = await self._enter(actor, admission, conn)
            if link is None:
                return
            if isinstance(link, tuple):
                with trio.move_on_after(HANDSHAKE_TIMEOUT_S):
                    await ws.aclose(*link)
                return
            if admission.user_id is not None:
                self._user_sockets.add(admission.user_id, conn)
            try:
                await conn.serve(link)
            finally:
                if admission.user_id is not None:
                    self._user_sockets.remove(admission.user_id, conn)
        finally:
            blocks.assign(conn_id, frozenset())
            self._metrics.live_connections.dec()

    async def _accept(
        self, nursery: trio.Nursery, outbox: OutboxStream, client: _Client
    ) -> tuple[WebSocket, Admission, RoomActor | None, Encoding] | None:
        """The handshake and admission: the open socket, who it is and its room's actor (None:
        an edge of a room run elsewhere); None if refused (answered here) or never upgraded.
        Nothing of trio-websocket's outlives this call."""
        request: WebSocketRequest | None = None
        with trio.move_on_after(HANDSHAKE_TIMEOUT_S):
            request = await _handshake(nursery, outbox, self._limits.max_frame_bytes)
        if request is None:
            return None
        try:
            admission = await self._admit(request)
            client.room_id, client.user_id = admission.room_id, admission.user_id
            actor: RoomActor | None = None
            remote = False
            try:
                actor = await self._registry.get(str(admission.room_id))
            except OwnedElsewhere:
                remote = self._cluster is not None  # another node runs the room: served here as an edge
                if not remote:
                    raise
        except ProtocolError as error:
            await _refuse(request, error.http_status, json.dumps({"error": error.to_body()}).encode())
            return None
        except Exception:
            log.exception("admitting a live socket failed (room %s, user %s)", client.room_id, client.user_id)
            await _refuse(request, 500)
            return None
        if (actor is None and not remote) or not self._accepting:
            await _refuse(request, 503 if actor is not None or remote or self._registry.closing else 404)
            return None
        encoding, subprotocol = Encoding.negotiate(request.proposed_subprotocols)
        ws = await _upgrade(request, outbox, subprotocol, self._limits.max_frame_bytes)
        return ws, admission, actor, encoding

    async def _enter(
        self, actor: RoomActor | None, admission: Admission, conn: LiveConnection
    ) -> RoomLink | tuple[int, str] | None:
        """Hand the socket to the room: its actor here, or its owner on another node (an edge).

        An actor that stopped meanwhile is replaced; an owner that went is looked for again
        (this node claims the room once its lease is free) until ``retry_s`` has passed.
        Returns the socket's link to the room, or the close to send instead."""
        join = Join(
            conn.conn_id,
            admission.user_id,
            admission.username,
            admission.role,
            admission.is_admin,
            admission.is_artist,
            self._sanctions.muted_until_ms(admission.user_id) if admission.user_id is not None else None,
        )
        room_id = str(admission.room_id)
        unavailable = (
            CLOSE_GOING_AWAY if self._registry.closing else CLOSE_INTERNAL,
            "room unavailable, reconnect",
        )
        deadline = trio.current_time() + self._retry_s
        while trio.current_time() < deadline:
            if actor is not None:
                stored = await stored_for_resume(self._rooms, actor, admission.since)
                try:
                    await actor.send(Request(join, conn=conn, since=admission.since, stored=stored))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
                else:
                    return LocalLink(actor, self._rooms, self._sanctions)
            elif self._cluster is not None:
                try:
                    return await self._enter_edge(self._cluster, join, admission, conn)
                except (RoomMoved, BusTimeout):
                    await trio.sleep(EDGE_RETRY_S)  # its lease runs out, or its owner subscribes
                except BusError:
                    return CLOSE_RESTART, "the room's node cannot be reached, reconnect"
            if self._registry.closing:
                break
            try:
                actor = await self._registry.get(room_id)
            except ProtocolError:
                break
            except OwnedElsewhere:
                actor = None
            else:
                if actor is None:
                    return CLOSE_ROOM_DELETED, "room deleted"
        return unavailable if self._cluster is None else (CLOSE_RESTART, "room unavailable, reconnect")

    async def _enter_edge(
        self, cluster: Cluster, join: Join, admission: Admission, conn: LiveConnection
    ) -> RoomLink | tuple[int, str]:
        edges = cluster.edges
        edge = await edges.attach(str(admission.room_id))
        body = {
            "k": "join",
            "node": edges.node_id,
            "conn": join.conn_id,
            "user_id": join.user_id,
            "username": join.username,
            "role": join.role,
            "is_admin": join.is_admin,
            "is_artist": join.is_artist,
            "muted": join.site_muted_until,
            "since": admission.since,
        }
        try:
            answer = await edges.request(edge.room_id, body, timeout=EDGE_JOIN_TIMEOUT_S)
        except BaseException:
            edges.join_failed(edge)
            raise
        if not answer.get("ok"):
            edges.join_failed(edge)
            close = answer.get("close")
            if isinstance(close, list) and len(close) == 2:
                return int(close[0]), str(close[1])
            raise RoomMoved(edge.room_id)
        edge.welcome(conn, admission.user_id, answer["first"], int(answer["seq"]), int(answer["epoch"]))
        return EdgeLink(edge, edges)

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
        blocked = await self._blocks.blocked_ids(user.id)
        return Admission(
            room_id, str(user.id), user.username, role, principal.is_admin, since, is_artist, blocked
        )
