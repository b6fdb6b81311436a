"""This node's part in the cluster: the bus, its leases, the owner side and the edge side, and
how sockets and REST calls reach a room that another node owns."""

from __future__ import annotations

import contextlib
import logging
import uuid
from typing import Any

import trio
from pydantic import BaseModel

from actors.moderation_rules import CLOSE_KICKED
from actors.room_actor import CLOSE_RESTART, error_message, reply_message
from actors.room_state import Connection
from protocol.errors import Internal, ServiceUnavailable, error_from_body
from server.cluster.bus import Bus, BusError, BusMessage
from server.cluster.edge import EdgeSide, RoomEdge, RoomMoved
from server.cluster.node import ClusterNode
from server.cluster.owner import OwnerSide
from server.cluster.wire import BLOCKS, SANCTIONS, USERS, pack, unpack, user_subject
from server.live.connection import LiveConnection
from server.live.room_views import View
from server.live.user_sockets import UserSockets
from storage.blocks import Blocks
from storage.sanctions import Sanctions

log = logging.getLogger("seda.cluster")

UNREACHABLE = "the room's node cannot be reached right now; try again"


class EdgeLink:
    """A socket's ops to a room owned by another node: one request each, in order."""

    def __init__(self, edge: RoomEdge, side: EdgeSide) -> None:
        self.edge = edge
        self._side = side

    async def submit(
        self, conn: LiveConnection, op: str, data: BaseModel, raw: Any, ref: int | None, rate_key: str
    ) -> bool:
        body = {
            "k": "op",
            "id": uuid.uuid4().hex,
            "conn": conn.conn_id,
            "op": op,
            "data": raw,
            "user_id": conn.user_id,
            "rate": rate_key,
        }
        try:
            answer = await self._side.request(self.edge.room_id, body)
        except RoomMoved:
            conn.close(CLOSE_RESTART, "room moved to another node")
            return True
        except BusError:
            if await self.edge.owner_gone():  # paused or cut off, and its lease ran out
                self.edge.close_all(CLOSE_RESTART, "room moved to another node")
                return True
            raise Internal(UNREACHABLE) from None
        seq = answer.get("seq", 0)
        if answer.get("ok"):
            if ref is not None:
                self.edge.reply(conn, reply_message(ref, answer.get("data") or {}), seq)
        else:
            self.edge.reply(conn, error_message(ref, error_from_body(answer.get("error") or {})), seq)
        return True

    async def leave(self, conn: LiveConnection) -> None:
        self.edge.remove(conn.conn_id)
        self._side.detach(self.edge)
        body = {"k": "leave", "node": self._side.node_id, "conn": conn.conn_id}
        # If the owner is gone, or misses this, it drops silent members by their missed heartbeats.
        with (
            trio.CancelScope(shield=True),
            trio.move_on_after(2),
            contextlib.suppress(RoomMoved, BusError, ValueError),
        ):
            await self._side.request(self.edge.room_id, body, timeout=2)


def _as_sent(data: BaseModel) -> dict[str, Any]:
    """An op's data as a client would send it, for the owner to validate again. A track given
    by link was resolved to its provider and id when validated here: it goes as the link."""
    raw = data.model_dump(mode="json", exclude_unset=True)  # an explicit null (clear it) stays
    track = raw.get("track")
    if isinstance(track, dict) and track.get("url"):
        track.pop("provider", None)
        track.pop("provider_id", None)
    return raw


class RemoteRoom:
    """A live room another node owns, as REST calls on this node use it."""

    def __init__(self, side: EdgeSide, room_id: str) -> None:
        self._side = side
        self.room_id = room_id

    async def run_op(
        self, op: str, data: BaseModel, caller: Connection, view: View[Any] | None
    ) -> tuple[dict[str, Any], Any]:
        body = {
            "k": "rest",
            "id": uuid.uuid4().hex,
            "op": op,
            "data": _as_sent(data),
            "caller": [caller.user_id, caller.username, caller.role, caller.is_admin, caller.is_artist],
            "view": [view.name, list(view.args)] if view is not None else None,
        }
        return await self._ask(body)

    async def read(self, view: View[Any]) -> Any:
        _, seen = await self._ask({"k": "rest", "op": None, "view": [view.name, list(view.args)]})
        return seen

    async def _ask(self, body: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        try:
            answer = await self._side.request(self.room_id, body)
        except BusError:
            raise ServiceUnavailable(UNREACHABLE) from None
        if not answer.get("ok"):
            raise error_from_body(answer.get("error") or {}, answer.get("status"))
        return answer.get("data") or {}, answer.get("seen")


class Cluster:
    def __init__(
        self,
        bus: Bus,
        node: ClusterNode,
        owner: OwnerSide,
        edges: EdgeSide,
        user_sockets: UserSockets,
        sanctions: Sanctions,
        blocks: Blocks,
    ) -> None:
        self.bus = bus
        self._blocks = blocks
        self.node = node
        self.owner = owner
        self.edges = edges
        self._user_sockets = user_sockets
        self._sanctions = sanctions
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            runner = getattr(self.bus, "run", None)
            if runner is not None:
                await nursery.start(runner)
            await nursery.start(self.owner.run)
            await nursery.start(self.edges.run)
            await self.bus.subscribe(USERS, self._to_user)
            await self.bus.subscribe(SANCTIONS, self._sanction_changed)
            await self.bus.subscribe(BLOCKS, self._blocks_changed_elsewhere)
            await nursery.start(self.node.run)
            task_status.started()

    # ---- per-user and site-wide state ---------------------------------------------------

    def notify(self, user_id: str, message: dict[str, Any]) -> None:
        """A private event to every socket of the user: here, and through the bus elsewhere."""
        self._user_sockets.notify(user_id, message)
        self.bus.publish(user_subject(user_id), pack(message))

    def _to_user(self, message: BusMessage) -> None:
        user_id = message.subject.split(".", 1)[1]
        try:
            self._user_sockets.notify(user_id, unpack(message.data))
        except ValueError:
            log.warning("an undecodable message for a user was dropped")

    def announce_sanction(self, user_id: str) -> None:
        """A ban or mute was committed: every other node reloads it (and closes a banned user's
        sockets there)."""
        self.bus.publish(SANCTIONS, pack({"user_id": user_id}))

    def _sanction_changed(self, message: BusMessage) -> None:
        try:
            user_id = str(unpack(message.data)["user_id"])
        except (ValueError, KeyError):
            return
        if self._nursery is not None:
            self._nursery.start_soon(self._reload_sanction, user_id)

    def blocks_changed(self, user_id: str, blocked: frozenset[str]) -> None:
        """A user's blocks were committed as ``blocked``: their sockets here hide exactly those
        from now on, and every other node reloads them for its sockets."""
        self._user_sockets.set_blocks(user_id, blocked)
        self.bus.publish(BLOCKS, pack({"user_id": user_id}))

    def _blocks_changed_elsewhere(self, message: BusMessage) -> None:
        try:
            user_id = str(uuid.UUID(str(unpack(message.data)["user_id"])))
        except (ValueError, KeyError, TypeError):
            return
        if self._nursery is not None:
            self._nursery.start_soon(self._reload_blocks, user_id)

    async def _reload_blocks(self, user_id: str) -> None:
        try:
            blocked = await self._blocks.blocked_ids(uuid.UUID(user_id))
        except Exception:
            log.warning("reloading the blocks of %s failed", user_id, exc_info=True)
            return
        self._user_sockets.set_blocks(user_id, blocked)

    async def _reload_sanction(self, user_id: str) -> None:
        try:
            await self._sanctions.reload(user_id)
        except Exception:
            log.warning("reloading the sanctions of %s failed", user_id, exc_info=True)
            return
        if self._sanctions.ban_of(user_id) is not None:
            self._user_sockets.close_all(user_id, CLOSE_KICKED, "banned from seda.fm")
