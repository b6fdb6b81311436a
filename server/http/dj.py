"""DJ sessions over REST (seed section 1).

Every change is an op sent to the same room actor the sockets use, by a caller
who has no socket; the reply comes once its events have committed, and every
socket in the room has seen them live.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel
from quart import Blueprint, Response
from quart_schema import security_scheme_blueprint, validate_request, validate_response

from protocol.dj import (
    QueueAddBody,
    QueueAddedOut,
    QueueMoveBody,
    QueueMoveData,
    QueueOut,
    RotationOut,
    SessionDetailsOut,
    SessionOut,
    SessionStartedOut,
    SessionStoppedOut,
    StartSessionBody,
    VoteBody,
    VoteOut,
)
from protocol.errors import NotFound
from protocol.ops import ItemRefData, NoData, QueueAddData, SessionStartData, VoteData
from server.http.errors import NoContent, documents, no_content
from server.http.params import path_uuid
from server.http.principal import app_context, require_principal
from server.http.room_ops import read_committed, run_op, run_op_showing
from server.http.rooms_access import visible_room
from server.live.room_views import View

blueprint = Blueprint("dj", __name__, url_prefix="/api/v1")
security_scheme_blueprint(blueprint, [{"bearer": []}])


def _uuid(raw: str, field: str) -> uuid.UUID:
    return path_uuid(raw, field, field.removesuffix("_id"))


# Views of the room a response shows: taken by the actor at the op (or the read), handed over
# once committed (``run_op_showing``, ``read_committed``), never read from the live state after.


_session_of: View[dict[str, Any] | None] = View("session")
_rotation: View[dict[str, Any]] = View("rotation")
_queue: View[list[dict[str, Any]]] = View("queue")


def _votes_on(item_id: str) -> View[dict[str, Any]]:
    return View("votes", (item_id,))


async def _open_elsewhere(session_id: str) -> bool:
    """Whether the session has not ended (so the node that owns its room runs it)."""
    row = await app_context().db.fetchrow(
        "SELECT ended_at FROM dj_sessions WHERE id = $1", _uuid(session_id, "session_id")
    )
    return row is not None and row["ended_at"] is None


async def _room_with_item(item_id: str) -> str | None:
    """The live room whose session holds the queue item: here, or asked of the rooms with a live
    session that other nodes run."""
    ctx = app_context()
    registry = ctx.registry
    actor = registry.with_item(item_id) if registry is not None else None
    if actor is not None:
        return actor.room_id
    if ctx.cluster is None or registry is None:
        return None
    rows = await ctx.db.fetch("SELECT DISTINCT room_id::text FROM dj_sessions WHERE ended_at IS NULL")
    for row in rows:
        if registry.running(row[0]) is None and await read_committed(
            row[0], View[bool]("has_item", (item_id,))
        ):
            return str(row[0])
    return None


async def _session_room(session_id: str) -> uuid.UUID:
    registry = app_context().registry
    actor = registry.with_session(session_id) if registry is not None else None
    if actor is not None:
        return uuid.UUID(actor.room_id)
    row = await app_context().db.fetchrow(
        "SELECT room_id FROM dj_sessions WHERE id = $1", _uuid(session_id, "session_id")
    )
    if row is None:
        raise NotFound("no such session", field="session_id")
    return uuid.UUID(str(row["room_id"]))


async def _live_session_room(session_id: str) -> uuid.UUID:
    room_id = await _session_room(session_id)
    session = await read_committed(str(room_id), _session_of)
    if session is None or session["session_id"] != session_id:
        raise NotFound("that session has ended", field="session_id")
    return room_id


@blueprint.post("/rooms/<room_id>/dj/start")
@validate_request(StartSessionBody)
@validate_response(SessionStartedOut, 201)
async def start(room_id: str, data: StartSessionBody) -> tuple[dict[str, Any], int]:
    """Start a DJ session in the room (owner or moderators; one session at a time)."""
    reply, session = await run_op_showing(
        _uuid(room_id, "room_id"),
        "session.start",
        SessionStartData(mode=data.mode, skip_ratio=data.skip_ratio),
        _session_of,
    )
    return {"session_id": reply["session_id"], "session": session}, 201


@blueprint.post("/rooms/<room_id>/dj/stop")
@validate_response(SessionStoppedOut, 200)
async def stop(room_id: str) -> dict[str, Any]:
    """End the room's session (who started it, or a moderator)."""
    await run_op(_uuid(room_id, "room_id"), "session.stop", NoData())
    return {}


@blueprint.get("/rooms/<room_id>/dj")
@validate_response(SessionOut, 200)
async def current(room_id: str) -> dict[str, Any]:
    """The room's live session in the shape of the welcome's ``session``; 404 if none."""
    rid = _uuid(room_id, "room_id")
    principal = require_principal()
    await visible_room(rid, principal)
    session = await read_committed(str(rid), _session_of)
    if session is None:
        raise NotFound("no DJ session is running in this room")
    return session


@blueprint.get("/dj/sessions/<session_id>")
@validate_response(SessionDetailsOut, 200)
async def session_details(session_id: str) -> dict[str, Any]:
    """A session, live or ended; its live ``state`` while it runs."""
    require_principal()
    room_id = await _session_room(session_id)
    await visible_room(room_id, require_principal())
    registry = app_context().registry
    actor = registry.with_session(session_id) if registry is not None else None
    state = None
    if actor is not None:
        state = await read_committed(actor, _session_of)
    elif app_context().cluster is not None and await _open_elsewhere(session_id):
        state = await read_committed(str(room_id), _session_of)
    if state is not None and state["session_id"] != session_id:
        state = None
    # Read after the live state: if the session ended since, the row says so.
    row = await app_context().db.fetchrow(
        "SELECT room_id, mode, started_by, started_at, ended_at, end_reason FROM dj_sessions WHERE id = $1",
        uuid.UUID(session_id),
    )
    if row is not None and row["ended_at"] is not None:
        state = None
    details: dict[str, Any] = {"session_id": session_id, "room_id": str(room_id), "live": state is not None}
    if state is not None:
        details["state"] = state
    if row is not None:
        details.update(
            mode=row["mode"],
            host_id=str(row["started_by"]),
            started_at=row["started_at"].isoformat(),
            ended_at=row["ended_at"].isoformat() if row["ended_at"] else None,
            end_reason=row["end_reason"],
        )
    return details


@blueprint.post("/dj/sessions/<session_id>/rotation/join")
@validate_response(RotationOut, 200)
async def rotation_join(session_id: str) -> dict[str, Any]:
    """Join the DJ rotation (fan mode)."""
    _, rotation = await run_op_showing(await _live_session_room(session_id), "dj.join", NoData(), _rotation)
    return rotation


@blueprint.delete("/dj/sessions/<session_id>/rotation/leave")
@validate_response(RotationOut, 200)
async def rotation_leave(session_id: str) -> dict[str, Any]:
    """Leave the DJ rotation."""
    _, rotation = await run_op_showing(await _live_session_room(session_id), "dj.leave", NoData(), _rotation)
    return rotation


@blueprint.post("/dj/sessions/<session_id>/rotation/advance")
@validate_response(SessionOut, 200)
async def rotation_advance(session_id: str) -> dict[str, Any]:
    """End the playing track now (a moderator or the playing DJ); the next turn starts."""
    _, session = await run_op_showing(await _live_session_room(session_id), "mod.skip", NoData(), _session_of)
    if session is None:
        raise NotFound("that session has ended", field="session_id")
    return session


@blueprint.post("/dj/sessions/<session_id>/queue")
@validate_request(QueueAddBody)
@validate_response(QueueAddedOut, 201)
async def queue_add(session_id: str, data: QueueAddBody) -> tuple[dict[str, Any], int]:
    """Queue a track (fan mode: your own queue, as a DJ in the rotation)."""
    reply, queue = await run_op_showing(
        await _live_session_room(session_id),
        "queue.add",
        QueueAddData.model_construct(track=data.track),
        _queue,
    )
    return {"item_id": reply["item_id"], "queue": queue}, 201


@blueprint.get("/dj/sessions/<session_id>/queue")
@validate_response(QueueOut, 200)
async def queue_get(session_id: str) -> dict[str, Any]:
    room_id = await _live_session_room(session_id)
    await visible_room(room_id, require_principal())
    return {"session_id": session_id, "queue": await read_committed(str(room_id), _queue)}


@blueprint.delete("/dj/sessions/<session_id>/queue/<item_id>")
@documents(NoContent, 204)
async def queue_remove(session_id: str, item_id: str) -> Response:
    """Remove a queued item (who added it, or a moderator)."""
    data = ItemRefData(item_id=_uuid(item_id, "item_id"))
    await run_op(await _live_session_room(session_id), "queue.remove", data)
    return no_content()


@blueprint.patch("/dj/queue/<item_id>")
@validate_request(QueueMoveBody)
@validate_response(QueueOut, 200)
async def queue_move(item_id: str, data: QueueMoveBody) -> dict[str, Any]:
    """Move an upcoming item within its DJ's queue (1 = first): the DJ whose queue it is, the
    session's host or a moderator. Everyone in the room sees it as ``queue.updated``. A public
    session's order is the votes' (409)."""
    item = _uuid(item_id, "item_id")
    room_id = await _room_with_item(str(item))
    if room_id is None:
        raise NotFound("no such queue item", field="item_id")
    _, session = await run_op_showing(
        uuid.UUID(room_id),
        "queue.move",
        QueueMoveData(item_id=str(item), position=data.position),
        _session_of,
    )
    if session is None:
        raise NotFound("that session has ended", field="item_id")
    return {"session_id": session["session_id"], "queue": session["queue"]}


@blueprint.post("/dj/queue/<item_id>/vote")
@validate_request(VoteBody)
@validate_response(VoteOut, 200)
async def vote(item_id: str, data: VoteBody) -> dict[str, Any]:
    """Vote up/down/none on a queued or playing item, or ``skip`` the playing one."""
    item = _uuid(item_id, "item_id")
    room_id = await _room_with_item(str(item))
    if room_id is None:
        raise NotFound("no such queue item", field="item_id")
    op_data: BaseModel = (
        ItemRefData(item_id=item) if data.value == "skip" else VoteData(item_id=item, value=data.value)
    )
    op = "vote.skip" if data.value == "skip" else "vote"
    _, votes = await run_op_showing(uuid.UUID(room_id), op, op_data, _votes_on(str(item)))
    return votes
