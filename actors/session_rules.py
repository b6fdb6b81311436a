"""The rules of DJ sessions (PROTOCOL.md "DJ modes"): op handlers, the clock, and ``apply`` handlers."""

from __future__ import annotations

import dataclasses
from typing import Any

from actors.commands import Op
from actors.decision import EventBuilder
from actors.room_state import Connection, RoomState
from actors.session import (
    AWAY_GRACE_MS,
    MAX_QUEUE,
    MAX_ROTATION,
    PUBLIC_PER_USER,
    NowPlaying,
    QueueItem,
    Session,
    next_item,
    next_turn,
    skip_threshold,
)
from protocol.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NoSession,
    NotDJ,
    NotFound,
    QueueFull,
    SessionActive,
)
from protocol.ops import ItemRefData, QueueAddData, SessionStartData, UserRefData, VoteData

MOD_ROLES = frozenset({"owner", "moderator"})
TRACK_PLAYED_POINTS = 10
UPVOTE_POINTS = 2
DOWNVOTE_POINTS = -1


def is_mod(conn: Connection) -> bool:
    return conn.role in MOD_ROLES or conn.is_admin


def _session(state: RoomState) -> Session:
    if state.session is None:
        raise NoSession("no DJ session is running in this room")
    return state.session


def _queue_event(b: EventBuilder, session: Session, queues: dict[str, list[QueueItem]]) -> None:
    """``queue.updated`` with the queue in play order; the new queues ride along for replay."""
    preview = dataclasses.replace(session, queues=queues)
    b.durable(
        "queue.updated",
        {"session_id": session.session_id, "queue": [i.wire() for i in preview.play_order()]},
        {"queues": {k: [i.to_dict() for i in v] for k, v in queues.items()}},
    )


# ---- ops ---------------------------------------------------------------------------


def session_start(b: EventBuilder, conn: Connection, command: Op) -> dict[str, Any]:
    data = command.data
    assert isinstance(data, SessionStartData) and conn.user_id is not None
    if b.state.session is not None:
        raise SessionActive("a DJ session is already running here")
    if not is_mod(conn):
        raise Forbidden("only the room's owner or moderators may start a session")
    if data.mode == "artist" and not (conn.is_artist or conn.is_admin):
        raise Forbidden("artist sessions are started by a verified artist", field="mode")
    session = Session(command.new_id, data.mode, conn.user_id, data.skip_ratio, b.now)
    b.durable("session.started", session.wire())
    return {"session_id": command.new_id}


def session_stop(b: EventBuilder, conn: Connection, command: Op) -> None:
    session = _session(b.state)
    if conn.user_id != session.host_id and not is_mod(conn):
        raise Forbidden("only who started the session or a moderator may stop it")
    b.durable("session.ended", {"session_id": session.session_id, "reason": "stopped"})


def dj_join(b: EventBuilder, conn: Connection, command: Op) -> None:
    session = _session(b.state)
    assert conn.user_id is not None
    if session.mode != "fan":
        raise BadRequest("the DJ rotation exists in fan mode only", field="op")
    if conn.user_id in session.djs:
        return
    if len(session.djs) >= MAX_ROTATION:
        raise Conflict(f"the rotation is full ({MAX_ROTATION} DJs)")
    djs = [*session.djs, conn.user_id]
    b.durable(
        "dj.rotation",
        {"djs": djs, "active": session.active},
        {"joined": conn.user_id, "join_no": session.next_join_no},
    )


def _leave_rotation(b: EventBuilder, session: Session, user_id: str) -> None:
    djs = [d for d in session.djs if d != user_id]
    b.durable("dj.rotation", {"djs": djs, "active": session.active}, {"left": user_id})
    if session.queues.get(user_id):
        queues = {k: v for k, v in session.queues.items() if k != user_id}
        _queue_event(b, session, queues)


def dj_leave(b: EventBuilder, conn: Connection, command: Op) -> None:
    session = _session(b.state)
    assert conn.user_id is not None
    if conn.user_id not in session.djs:
        raise NotDJ("you are not in the rotation")
    _leave_rotation(b, session, conn.user_id)  # a playing track of theirs plays on


def mod_remove_dj(b: EventBuilder, conn: Connection, command: Op) -> None:
    data = command.data
    assert isinstance(data, UserRefData)
    session = _session(b.state)
    if not is_mod(conn):
        raise Forbidden("only the room's owner or moderators may remove a DJ")
    target = str(data.user_id)
    check_rank(b.state, conn, target, command)
    if target not in session.djs:
        raise NotFound("that user is not in the rotation", field="user_id")
    _leave_rotation(b, session, target)


def check_rank(state: RoomState, actor: Connection, target: str, command: Op) -> None:
    """Mods cannot act on the owner; moderators cannot act on other moderators (admins can)."""
    if actor.is_admin:
        return
    role = command.context.get("target_role", "member")
    if target == state.room.owner_id or role == "owner":
        raise Forbidden("nobody but a site admin acts on the room's owner", field="user_id")
    if role == "moderator" and actor.role != "owner":
        raise Forbidden("moderators cannot act on other moderators", field="user_id")


def queue_add(b: EventBuilder, conn: Connection, command: Op) -> dict[str, Any]:
    data = command.data
    assert isinstance(data, QueueAddData) and conn.user_id is not None
    session = _session(b.state)
    owner = ""
    if session.mode == "fan":
        if conn.user_id not in session.djs:
            raise NotDJ("join the rotation (dj.join) to queue tracks")
        owner = conn.user_id
    elif session.mode == "artist":
        if conn.user_id != session.host_id and not is_mod(conn):
            raise Forbidden("only the host and moderators queue tracks in an artist session")
    else:
        mine = sum(1 for i in session.queue() if i.added_by == conn.user_id)
        if mine >= PUBLIC_PER_USER:
            raise QueueFull(f"at most {PUBLIC_PER_USER} upcoming tracks each")
    if len(session.queues.get(owner, [])) >= MAX_QUEUE:
        raise QueueFull("this queue is full")
    item = QueueItem(command.new_id, command.context["track"], conn.user_id, session.next_position)
    queues = {k: list(v) for k, v in session.queues.items()}
    queues.setdefault(owner, []).append(item)
    _queue_event(b, session, queues)
    return {"item_id": item.item_id}


def queue_remove(b: EventBuilder, conn: Connection, command: Op) -> None:
    data = command.data
    assert isinstance(data, ItemRefData)
    session = _session(b.state)
    found = session.find_item(str(data.item_id))
    if found is None:
        raise NotFound("no such item in the queue", field="item_id")
    _, item = found
    if conn.user_id not in (item.added_by, session.host_id) and not is_mod(conn):
        raise Forbidden("only who added it, the host or a moderator may remove it")
    queues = {k: [i for i in v if i.item_id != item.item_id] for k, v in session.queues.items()}
    _queue_event(b, session, queues)


def mod_clear_queue(b: EventBuilder, conn: Connection, command: Op) -> None:
    session = _session(b.state)
    if not is_mod(conn):
        raise Forbidden("only the room's owner or moderators may clear the queue")
    if session.all_items():
        _queue_event(b, session, {})


def vote(b: EventBuilder, conn: Connection, command: Op) -> None:
    data = command.data
    assert isinstance(data, VoteData) and conn.user_id is not None
    session = _session(b.state)
    item_id = str(data.item_id)
    playing = session.now_playing
    if playing is not None and playing.item.item_id == item_id:
        item = playing.item
    else:
        found = session.find_item(item_id) if session.mode == "public" else None
        if found is None:
            raise NotFound(
                "you can vote on the playing track (and queued ones in public mode)", field="item_id"
            )
        item = found[1]
    if item.added_by == conn.user_id:
        raise Forbidden("you cannot vote on your own track", field="item_id")
    if item.votes.get(conn.user_id, "none") == data.value:
        return
    votes = dict(item.votes)
    if data.value == "none":
        votes.pop(conn.user_id, None)
    else:
        votes[conn.user_id] = data.value
    ups = sum(1 for v in votes.values() if v == "up")
    skip = len(playing.skips) if playing is not None and playing.item.item_id == item_id else 0
    b.ephemeral(
        "vote.tally",
        {"item_id": item_id, "up": ups, "down": len(votes) - ups, "skip": skip},
        {"voter": conn.user_id, "value": data.value},
    )


def vote_skip(b: EventBuilder, conn: Connection, command: Op) -> None:
    data = command.data
    assert isinstance(data, ItemRefData) and conn.user_id is not None
    session = _session(b.state)
    playing = session.now_playing
    if playing is None or playing.item.item_id != str(data.item_id):
        raise NotFound("that track is not playing", field="item_id")
    if conn.user_id in playing.skips:
        return
    tally = playing.item.tally()
    b.ephemeral(
        "vote.tally",
        {"item_id": playing.item.item_id, **tally, "skip": len(playing.skips) + 1},
        {"voter": conn.user_id, "value": "skip"},
    )


def mod_skip(b: EventBuilder, conn: Connection, command: Op) -> None:
    session = _session(b.state)
    playing = session.now_playing
    if playing is None:
        raise NotFound("nothing is playing")
    if not is_mod(conn) and conn.user_id != playing.dj_id:
        raise Forbidden("only a moderator or the playing DJ may skip")
    _end_track(b, playing, "mod_skip")


SESSION_OPS = {
    "session.start": session_start,
    "session.stop": session_stop,
    "dj.join": dj_join,
    "dj.leave": dj_leave,
    "queue.add": queue_add,
    "queue.remove": queue_remove,
    "vote": vote,
    "vote.skip": vote_skip,
    "mod.skip": mod_skip,
    "mod.remove_dj": mod_remove_dj,
    "mod.clear_queue": mod_clear_queue,
}


# ---- the clock ------------------------------------------------------------------------


def listeners(state: RoomState, exclude: str | None) -> int:
    """Authenticated users with a socket here, the playing DJ excluded."""
    return sum(1 for uid in state.presence if uid != exclude)


def track_awards(playing: NowPlaying, reason: str) -> list[list[Any]]:
    """Points a finished track earns its DJ (PRODUCT.md), as ledger rows
    ``[user, event_type, points, source_id, voter]``. Votes count as they finally stand,
    so a flip from up to down is worth -1, never +2 and -1."""
    dj, item_id = playing.dj_id, playing.item.item_id
    awards: list[list[Any]] = []
    if reason == "completed":
        awards.append([dj, "track_played", TRACK_PLAYED_POINTS, item_id, ""])
    for voter, value in sorted(playing.item.votes.items()):
        if value == "up":
            awards.append([dj, "upvote_received", UPVOTE_POINTS, item_id, voter])
        elif value == "down":
            awards.append([dj, "downvote_received", DOWNVOTE_POINTS, item_id, voter])
    return awards


def _end_track(b: EventBuilder, playing: NowPlaying, reason: str) -> None:
    b.durable(
        "track.ended",
        {"item_id": playing.item.item_id, "reason": reason, "votes": playing.votes()},
        {"awards": track_awards(playing, reason)},
    )


def settle_step(b: EventBuilder) -> None:
    """The one next thing that is due at ``b.now``, if any (see the module docstring)."""
    state = b.state
    session = state.session
    if session is None:
        return
    playing = session.now_playing
    if playing is not None:
        if b.now >= playing.ends_at:
            _end_track(b, playing, "completed")
            return
        needed = skip_threshold(session.skip_ratio, listeners(state, playing.dj_id))
        if len(playing.skips) >= needed:
            _end_track(b, playing, "skipped")
            return
    for dj in session.djs:
        away = session.away_since.get(dj)
        if away is not None and b.now - away >= AWAY_GRACE_MS:
            _leave_rotation(b, session, dj)
            return
    if playing is not None:
        return
    if session.mode == "fan":
        turn = next_turn(session)
        if turn is None:
            return
        item, dj, passes, removed = turn
        if removed:
            djs = [d for d in session.djs if d not in removed]
            b.durable("dj.rotation", {"djs": djs, "active": dj}, {"passes": passes, "removed": removed})
            if any(session.queues.get(d) for d in removed):
                # their queued tracks leave with them: clients are told, as on dj.leave
                _queue_event(b, session, {k: v for k, v in session.queues.items() if k not in removed})
        _start_track(b, session, item, dj, dj, passes)
        return
    upcoming = next_item(session)
    if upcoming is not None:
        _start_track(b, session, upcoming, upcoming.added_by, None, None)


def _start_track(
    b: EventBuilder,
    session: Session,
    item: QueueItem,
    dj: str,
    active: str | None,
    passes: dict[str, int] | None,
) -> None:
    meta: dict[str, Any] = {"item": item.to_dict()}
    if passes is not None:
        meta["passes"] = passes
    b.durable(
        "track.started",
        {
            "item": item.wire(),
            "dj_id": dj,
            "started_at": b.now,
            "ends_at": b.now + int(item.track["duration_ms"]),
        },
        meta,
    )


def next_deadline(state: RoomState) -> int | None:
    """When (ms) :func:`settle_step` next has something to do on its own, if ever."""
    session = state.session
    if session is None:
        return None
    times = [away + AWAY_GRACE_MS for dj, away in session.away_since.items() if dj in session.djs]
    if session.now_playing is not None:
        times.append(session.now_playing.ends_at)
    return min(times) if times else None
