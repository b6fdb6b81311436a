"""The rules of DJ sessions (PROTOCOL.md "DJ modes"): op handlers, the clock, and ``apply`` handlers."""

from __future__ import annotations

import dataclasses
from typing import Any

from actors.commands import Op
from actors.decision import EventBuilder
from actors.room_state import Connection, RoomState
from actors.session import (
    AWAY_GRACE_MS,
    MAX_ROTATION,
    PUBLIC_PER_USER,
    SKIP_ELIGIBLE_MS,
    NowPlaying,
    QueueItem,
    Session,
    next_item,
    next_turn,
    skip_threshold,
)
from protocol.dj import QueueMoveData
from protocol.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NoSession,
    NotDJ,
    NotFound,
    QueueFull,
    RecentlyPlayed,
    SessionActive,
    TrackTooLong,
)
from protocol.ops import (
    ItemRefData,
    MoveDjData,
    QueueAddData,
    SessionStartData,
    SessionUpdateData,
    UserRefData,
    VoteData,
    VoteSkipData,
)

MOD_ROLES = frozenset({"owner", "moderator"})
MAX_PUBLIC_QUEUE = 500  # upcoming items of a public session, everyone's together
TRACK_PLAYED_POINTS = 10
UPVOTE_POINTS = 2
DOWNVOTE_POINTS = -1


def is_mod(conn: Connection) -> bool:
    return conn.role in MOD_ROLES or conn.is_admin


def _session(state: RoomState) -> Session:
    if state.session is None:
        raise NoSession("no DJ session is running in this room")
    return state.session


def _queue_event(
    b: EventBuilder, session: Session, queues: dict[str, list[QueueItem]], **changes: Any
) -> None:
    """``queue.updated`` with the queue in play order; the new queues ride along for replay.
    ``changes``: what the decision's earlier events change that the play order depends on (the
    rotation), since the session is not changed until the decision is applied."""
    preview = dataclasses.replace(session, queues=queues, **changes)
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
    session.configure(data.model_dump(include=set(session.settings())))
    b.durable("session.started", session.wire())
    return {"session_id": command.new_id}


def session_update(b: EventBuilder, conn: Connection, command: Op) -> None:
    data = command.data
    assert isinstance(data, SessionUpdateData)
    session = _session(b.state)
    if not is_mod(conn):
        raise Forbidden("only the room's owner or moderators change the session's settings")
    changes = data.changes()
    if not changes:
        raise BadRequest("name at least one setting to change", field="data")
    settings = {**session.settings(), **changes}
    b.durable("session.updated", {"session_id": session.session_id, "settings": settings})


def session_stop(b: EventBuilder, conn: Connection, command: Op) -> None:
    session = _session(b.state)
    if conn.user_id != session.host_id and not is_mod(conn):
        raise Forbidden("only who started the session or a moderator may stop it")
    end_session(b, session, "stopped")


def end_session(b: EventBuilder, session: Session, reason: str) -> None:
    """``session.ended``; a track still playing goes into the room's history as stopped."""
    playing = session.now_playing
    meta = {"stopped": {"item_id": playing.item.item_id, "votes": playing.votes()}} if playing else None
    b.durable("session.ended", {"session_id": session.session_id, "reason": reason}, meta)


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
        {"djs": djs, "active": session.active, "removed": []},
        {"joined": conn.user_id, "join_no": session.next_join_no},
    )
    if session.queues.get(conn.user_id):  # back in the rotation: their kept queue plays again
        join_no = {**session.join_no, conn.user_id: session.next_join_no}
        _queue_event(b, session, session.queues, djs=djs, join_no=join_no)


def _leave_rotation(
    b: EventBuilder, session: Session, user_id: str, removed: list[dict[str, str]] | None = None, **meta: Any
) -> None:
    """``user_id`` leaves the rotation; their queue stays for the session (rejoining restores
    it), so only the play order clients see changes."""
    djs = [d for d in session.djs if d != user_id]
    data = {"djs": djs, "active": session.active, "removed": removed or []}
    b.durable("dj.rotation", data, {"left": user_id, **meta})
    if session.queues.get(user_id):
        _queue_event(b, session, session.queues, djs=djs)


def dj_leave(b: EventBuilder, conn: Connection, command: Op) -> None:
    session = _session(b.state)
    assert conn.user_id is not None
    if conn.user_id not in session.djs:
        raise NotDJ("you are not in the rotation")
    _leave_rotation(b, session, conn.user_id)  # a playing track of theirs plays on


def _dj_target(b: EventBuilder, conn: Connection, command: Op, verb: str) -> tuple[Session, str]:
    """A moderator's act on a DJ in the rotation: the session and the DJ, once allowed."""
    data = command.data
    assert isinstance(data, UserRefData | MoveDjData)
    session = _session(b.state)
    if not is_mod(conn):
        raise Forbidden(f"only the room's owner or moderators may {verb} a DJ")
    target = str(data.user_id)
    check_rank(b.state, conn, target, command)
    if target not in session.djs:
        raise NotFound("that user is not in the rotation", field="user_id")
    return session, target


def mod_remove_dj(b: EventBuilder, conn: Connection, command: Op) -> None:
    session, target = _dj_target(b, conn, command, "remove")
    modlog = {"action": "remove_dj", "actor_id": conn.user_id, "target_user_id": target}
    _leave_rotation(b, session, target, modlog=modlog)


def mod_move_dj(b: EventBuilder, conn: Connection, command: Op) -> None:
    """Move a DJ to ``position`` in the turn order (1 = the next turn after the active DJ's)."""
    session, target = _dj_target(b, conn, command, "move")
    data = command.data
    assert isinstance(data, MoveDjData)
    order = [dj for dj in session.turn_order() if dj != target]
    active = session.active if session.active in order else None
    upcoming = [dj for dj in order if dj != active]  # the active DJ's turn comes round last
    upcoming.insert(min(data.position, len(upcoming) + 1) - 1, target)
    order = upcoming + ([active] if active is not None else [])
    # New join numbers in the new turn order, all after the last turn: turns then go round it.
    base = session.next_join_no
    join_no = {dj: base + i for i, dj in enumerate(order)}
    renumbered = {"join_no": join_no, "next_join_no": base + len(order), "last_turn_no": base - 1}
    modlog = {
        "action": "move_dj",
        "actor_id": conn.user_id,
        "target_user_id": target,
        "details": {"position": data.position},
    }
    b.durable(
        "dj.rotation",
        {"djs": order, "active": session.active, "removed": []},
        {"renumbered": renumbered, "modlog": modlog},
    )
    if any(session.queues.get(dj) for dj in order):
        _queue_event(b, session, session.queues, djs=order, join_no=join_no, last_turn_no=base - 1)


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
    if data.force and not is_mod(conn):
        raise Forbidden("only a moderator may force a track past the repeat guard", field="force")
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
        if len(session.queue()) >= MAX_PUBLIC_QUEUE:
            raise QueueFull("this queue is full")
    if len(session.queue_limit_for(owner, conn.user_id)) >= session.max_queue:
        raise QueueFull(f"at most {session.max_queue} queued tracks each (max_queue)")
    track = command.context["track"]
    if session.max_track_s and int(track["duration_ms"]) > session.max_track_s * 1000:
        raise TrackTooLong(
            f"tracks here are at most {session.max_track_s} s long (max_track_s)", field="track.duration_ms"
        )
    last = b.state.last_played_at(track["id"])
    window = session.repeat_window_s * 1000
    if last is not None and window and b.now - last < window and not data.force:
        raise RecentlyPlayed(
            f"this track played here within the last {session.repeat_window_s} s", last_played_at=last
        )
    item = QueueItem(command.new_id, track, conn.user_id, session.next_position)
    queues = {k: list(v) for k, v in session.queues.items()}
    queues.setdefault(owner, []).append(item)
    _queue_event(b, session, queues)
    return {"item_id": item.item_id, "last_played_at": last}


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


def queue_move(b: EventBuilder, conn: Connection, command: Op) -> None:
    """Move an upcoming item within its queue (REST-only): by the DJ whose queue it is, the host
    or a mod. A public session's order is the votes', so nothing there is moved by hand."""
    data = command.data
    assert isinstance(data, QueueMoveData)
    session = _session(b.state)
    if session.mode == "public":
        raise Conflict("in a public session the votes decide the order", field="position")
    owner = next(
        (k for k, items in session.queues.items() if any(i.item_id == data.item_id for i in items)), None
    )
    if owner is None:
        raise NotFound("no such item in the queue", field="item_id")
    if conn.user_id not in (owner, session.host_id) and not is_mod(conn):
        raise Forbidden("only the DJ whose queue it is, the host or a moderator may reorder it")
    items = list(session.queues[owner])
    index = next(n for n, i in enumerate(items) if i.item_id == data.item_id)
    item = items.pop(index)
    items.insert(min(data.position, len(items) + 1) - 1, item)
    if items == session.queues[owner]:
        return
    _queue_event(b, session, {**session.queues, owner: items})


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
    assert isinstance(data, VoteSkipData) and conn.user_id is not None
    session = _session(b.state)
    playing = session.now_playing
    if playing is None or playing.item.item_id != str(data.item_id):
        raise NotFound("that track is not playing", field="item_id")
    if conn.user_id in playing.skips:
        return
    tally = playing.item.tally()
    meta: dict[str, Any] = {"voter": conn.user_id, "value": "skip"}
    if data.reason is not None:
        meta["reason"] = data.reason
    b.ephemeral(
        "vote.tally", {"item_id": playing.item.item_id, **tally, "skip": len(playing.skips) + 1}, meta
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
    "session.update": session_update,
    "session.stop": session_stop,
    "dj.join": dj_join,
    "dj.leave": dj_leave,
    "queue.add": queue_add,
    "queue.remove": queue_remove,
    "vote": vote,
    "vote.skip": vote_skip,
    "mod.skip": mod_skip,
    "mod.remove_dj": mod_remove_dj,
    "mod.move_dj": mod_move_dj,
    "mod.clear_queue": mod_clear_queue,
}


# ---- the clock ------------------------------------------------------------------------


def listeners(state: RoomState, exclude: str | None, now: int) -> int:
    """Who counts toward the skip threshold: authenticated users with a socket here for at
    least 30 s, the playing DJ excluded."""
    return state.settled_listeners(exclude, now, SKIP_ELIGIBLE_MS)


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
    data: dict[str, Any] = {"item_id": playing.item.item_id, "reason": reason, "votes": playing.votes()}
    if reason == "skipped":
        data["skip_reasons"] = playing.reason_counts()
    b.durable("track.ended", data, {"awards": track_awards(playing, reason)})


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
        needed = skip_threshold(session.skip_ratio, listeners(state, playing.dj_id, b.now))
        if len(playing.skips) >= needed:
            _end_track(b, playing, "skipped")
            return
    for dj in session.djs:
        away = session.away_since.get(dj)
        if away is not None and b.now - away >= AWAY_GRACE_MS:  # dropped off for 60 s
            _leave_rotation(b, session, dj, [{"user_id": dj, "reason": "away"}])
            return
    if playing is not None:
        return
    if session.mode == "fan":
        turn = next_turn(session, b.now)
        gone = [user_id for user_id, _ in turn.removed]
        if gone:
            djs = [d for d in session.djs if d not in gone]
            active = turn.dj if turn.dj is not None else session.active
            removed = [{"user_id": user_id, "reason": why} for user_id, why in turn.removed]
            b.durable(
                "dj.rotation", {"djs": djs, "active": active, "removed": removed}, {"passes": turn.passes}
            )
            if any(session.queues.get(d) for d in gone):
                # their queues stay for the session, but leave the play order: clients are told
                _queue_event(b, session, session.queues, djs=djs)
        if turn.item is not None and turn.dj is not None:
            _start_track(b, session, turn.item, turn.dj, turn.dj, turn.passes)
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
