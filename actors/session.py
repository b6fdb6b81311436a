"""DJ sessions: modes, rotation, queues, votes and the playback clock, as data and pure rules.

A room has at most one session. Everything here is plain data plus functions of
(state, command, now); ``apply`` handlers for the session's events live here
too and are registered with :mod:`actors.room_state`.

One rule drives time: :func:`settle_step` looks at the state at ``now`` and
returns the next thing that must happen (the playing track ended, a skip
threshold was reached, a DJ stayed away too long, or nothing plays while
something could). The actor applies it and asks again until nothing is due.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from protocol.events import Event

if TYPE_CHECKING:
    from actors.room_state import RoomState

AWAY_GRACE_MS = 60_000
MAX_PASSES = 3
MAX_ROTATION = 25
PUBLIC_PER_USER = 3
SKIP_ELIGIBLE_MS = 30_000  # a listener counts toward the skip threshold after this long in the room

# Session settings (PROTOCOL.md "Fairness, history and personal blocks") and their defaults;
# their bounds are in protocol/ops.py.
DEFAULT_SETTINGS: dict[str, Any] = {
    "skip_ratio": 0.5,
    "repeat_window_s": 7200,
    "afk_limit_s": 1800,
    "max_track_s": 900,
    "max_queue": 50,
}
SETTING_NAMES = tuple(DEFAULT_SETTINGS)


@dataclass(slots=True)
class QueueItem:
    item_id: str
    track: dict[str, Any]
    added_by: str
    position: int
    votes: dict[str, str] = field(default_factory=dict)  # voter -> "up" | "down"

    def tally(self) -> dict[str, int]:
        ups = sum(1 for v in self.votes.values() if v == "up")
        return {"up": ups, "down": len(self.votes) - ups}

    def score(self) -> int:
        t = self.tally()
        return t["up"] - t["down"]

    def wire(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "track": self.track,
            "added_by": self.added_by,
            "position": self.position,
            "votes": self.tally(),
        }

    def to_dict(self) -> dict[str, Any]:
        """Durable form: votes are ephemeral (PROTOCOL.md: tallies carry no seq) and are left out."""
        return {**self.wire(), "votes": {}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QueueItem:
        votes = d.get("votes", {})
        # wire form carries counts, state form carries voters; only voters are restorable
        voters = {k: v for k, v in votes.items() if v in ("up", "down")}
        return cls(d["item_id"], d["track"], d["added_by"], d["position"], voters)


@dataclass(slots=True)
class NowPlaying:
    item: QueueItem
    dj_id: str
    started_at: int
    ends_at: int
    skips: list[str] = field(default_factory=list)
    skip_reasons: dict[str, str] = field(default_factory=dict)  # voter -> the reason they gave

    def votes(self) -> dict[str, int]:
        return {**self.item.tally(), "skip": len(self.skips)}

    def reason_counts(self) -> dict[str, int]:
        """``track.ended``'s ``skip_reasons``: how many skip votes gave each reason."""
        counts: dict[str, int] = {}
        for voter in self.skips:
            reason = self.skip_reasons.get(voter)
            if reason is not None:
                counts[reason] = counts.get(reason, 0) + 1
        return counts

    def wire(self) -> dict[str, Any]:
        return {
            "item": self.item.wire(),
            "dj_id": self.dj_id,
            "started_at": self.started_at,
            "ends_at": self.ends_at,
            "votes": self.votes(),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "item": self.item.to_dict(),
            "dj_id": self.dj_id,
            "started_at": self.started_at,
            "ends_at": self.ends_at,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NowPlaying:
        return cls(QueueItem.from_dict(d["item"]), d["dj_id"], d["started_at"], d["ends_at"])


@dataclass(slots=True)
class Session:
    session_id: str
    mode: str  # fan | artist | public
    host_id: str
    skip_ratio: float
    started_at: int
    repeat_window_s: int = DEFAULT_SETTINGS["repeat_window_s"]
    afk_limit_s: int = DEFAULT_SETTINGS["afk_limit_s"]
    max_track_s: int = DEFAULT_SETTINGS["max_track_s"]
    max_queue: int = DEFAULT_SETTINGS["max_queue"]
    djs: list[str] = field(default_factory=list)
    active: str | None = None
    passes: dict[str, int] = field(default_factory=dict)
    queues: dict[str, list[QueueItem]] = field(default_factory=dict)  # fan: per DJ; else key ""
    now_playing: NowPlaying | None = None
    played: list[str] = field(default_factory=list)  # item ids that have played, never again
    next_position: int = 1
    join_no: dict[str, int] = field(default_factory=dict)  # rotation order: when each DJ joined
    next_join_no: int = 1
    last_turn_no: int = 0  # join number of the DJ whose turn came last
    away_since: dict[str, int] = field(default_factory=dict)  # ephemeral: DJs with no socket
    last_seen: dict[str, int] = field(default_factory=dict)  # ephemeral: each DJ's last op here (ms)

    def settings(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in SETTING_NAMES}

    def configure(self, settings: dict[str, Any]) -> None:
        for name in SETTING_NAMES:
            if name in settings:
                setattr(self, name, settings[name])

    def queue_limit_for(self, owner: str, user_id: str) -> list[QueueItem]:
        """The items that count against ``user_id``'s ``max_queue`` when they add to ``owner``'s
        queue: their own queue in fan mode, the host's in artist mode, their own adds in public."""
        if self.mode == "public":
            return [i for i in self.queue() if i.added_by == user_id]
        return self.queue(owner)

    # ---- reads -------------------------------------------------------------------

    def queue(self, owner: str = "") -> list[QueueItem]:
        """A queue to read (reading never changes the state)."""
        return self.queues.get(owner, [])

    def all_items(self) -> list[QueueItem]:
        return [item for items in self.queues.values() for item in items]

    def find_item(self, item_id: str) -> tuple[str, QueueItem] | None:
        for owner, items in self.queues.items():
            for item in items:
                if item.item_id == item_id:
                    return owner, item
        return None

    def play_order(self) -> list[QueueItem]:
        """Upcoming items in the order they would play."""
        if self.mode == "public":
            return sorted(self.queue(), key=lambda i: (-i.score(), i.position))
        if self.mode == "artist":
            return list(self.queue())
        order: list[QueueItem] = []
        rounds = [list(self.queue(dj)) for dj in self.turn_order()]
        while any(rounds):
            for items in rounds:
                if items:
                    order.append(items.pop(0))
        return order

    def turn_order(self) -> list[str]:
        """DJs in the order their turns come, starting after the last turn (join order, wrapping)."""
        after = [dj for dj in self.djs if self.join_no[dj] > self.last_turn_no]
        return after + [dj for dj in self.djs if self.join_no[dj] <= self.last_turn_no]

    def rotation_wire(self) -> dict[str, Any]:
        return {"djs": list(self.djs), "active": self.active}

    def wire(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "mode": self.mode,
            "host_id": self.host_id,
            "skip_ratio": self.skip_ratio,
            "started_at": self.started_at,
            "settings": self.settings(),
            "rotation": self.rotation_wire(),
            "now_playing": self.now_playing.wire() if self.now_playing else None,
            "queue": [item.wire() for item in self.play_order()],
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "mode": self.mode,
            "host_id": self.host_id,
            "skip_ratio": self.skip_ratio,
            "started_at": self.started_at,
            "settings": self.settings(),
            "djs": list(self.djs),
            "active": self.active,
            "passes": dict(self.passes),
            "queues": {k: [i.to_dict() for i in v] for k, v in self.queues.items()},
            "now_playing": self.now_playing.to_dict() if self.now_playing else None,
            "played": list(self.played),
            "next_position": self.next_position,
            "join_no": dict(self.join_no),
            "next_join_no": self.next_join_no,
            "last_turn_no": self.last_turn_no,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Session:
        settings = {**DEFAULT_SETTINGS, "skip_ratio": d["skip_ratio"], **d.get("settings", {})}
        return cls(
            session_id=d["session_id"],
            mode=d["mode"],
            host_id=d["host_id"],
            skip_ratio=settings["skip_ratio"],
            started_at=d["started_at"],
            repeat_window_s=settings["repeat_window_s"],
            afk_limit_s=settings["afk_limit_s"],
            max_track_s=settings["max_track_s"],
            max_queue=settings["max_queue"],
            djs=list(d["djs"]),
            active=d["active"],
            passes=dict(d["passes"]),
            queues={k: [QueueItem.from_dict(i) for i in v] for k, v in d["queues"].items()},
            now_playing=NowPlaying.from_dict(d["now_playing"]) if d["now_playing"] else None,
            played=list(d["played"]),
            next_position=d["next_position"],
            join_no=dict(d["join_no"]),
            next_join_no=d["next_join_no"],
            last_turn_no=d["last_turn_no"],
        )


def skip_threshold(skip_ratio: float, listeners: int) -> int:
    """Skip votes needed: ``max(2, ceil(skip_ratio * listeners))`` (PROTOCOL.md)."""
    return max(2, math.ceil(skip_ratio * listeners - 1e-9))


@dataclass(frozen=True, slots=True)
class Turn:
    """What the next turn in fan mode does: who plays what (None: nobody can), the new pass
    counts, and who leaves the rotation on the way (``(user_id, "afk" | "passed")``)."""

    item: QueueItem | None
    dj: str | None
    passes: dict[str, int]
    removed: list[tuple[str, str]]


def is_afk(session: Session, dj: str, now: int) -> bool:
    """No op in the room from ``dj`` for ``afk_limit_s`` (0: never)."""
    limit = session.afk_limit_s * 1000
    return limit > 0 and now - session.last_seen.get(dj, now) >= limit


def next_turn(session: Session, now: int) -> Turn:
    """Fan mode: the next turn.

    Turns go round the rotation in join order from the DJ after the last one. A DJ away from
    the room's ops for ``afk_limit_s`` is removed when their turn comes (no track plays for
    them). A DJ with an empty queue, or away (their last socket closed), is passed over; a third
    pass in a row removes them. When nobody can play, no pass is counted (the away-from-ops are
    still removed).
    """
    passes = dict(session.passes)
    removed: list[tuple[str, str]] = []
    afk: list[tuple[str, str]] = []
    for dj in session.turn_order():
        if is_afk(session, dj, now):
            afk.append((dj, "afk"))
            continue
        queue = session.queues.get(dj, [])
        if queue and dj not in session.away_since:
            passes[dj] = 0
            return Turn(queue[0], dj, passes, afk + removed)
        passes[dj] = passes.get(dj, 0) + 1
        if passes[dj] >= MAX_PASSES:
            removed.append((dj, "passed"))
    return Turn(None, None, dict(session.passes), afk)


def next_item(session: Session) -> QueueItem | None:
    """Artist and public modes: the item that plays next."""
    order = session.play_order()
    return order[0] if order else None


# ---- apply ------------------------------------------------------------------------------


def _apply_session_started(state: RoomState, event: Event) -> None:
    d = event.data
    state.session = Session(d["session_id"], d["mode"], d["host_id"], d["skip_ratio"], d["started_at"])
    state.session.configure(d.get("settings", {}))


def _apply_session_updated(state: RoomState, event: Event) -> None:
    session = state.session
    assert session is not None
    session.configure(event.data["settings"])


def _apply_dj_seen(state: RoomState, event: Event) -> None:
    session = state.session
    if session is not None and event.data["user_id"] in session.djs:
        session.last_seen[event.data["user_id"]] = event.at


def _apply_session_ended(state: RoomState, event: Event) -> None:
    state.session = None


def _apply_rotation(state: RoomState, event: Event) -> None:
    session = state.session
    assert session is not None
    joined = event.meta.get("joined")
    if joined is not None:
        session.join_no[joined] = event.meta["join_no"]
        session.next_join_no = event.meta["join_no"] + 1
        session.passes[joined] = 0
    session.djs = list(event.data["djs"])
    if "passes" in event.meta:
        session.passes = dict(event.meta["passes"])
    renumbered = event.meta.get("renumbered")
    if renumbered is not None:  # mod.move_dj: the new turn order
        session.join_no = dict(renumbered["join_no"])
        session.next_join_no = renumbered["next_join_no"]
        session.last_turn_no = renumbered["last_turn_no"]
    for dj in list(session.join_no):
        if dj not in session.djs:  # their queue stays for the session: rejoining restores it
            del session.join_no[dj]
            session.passes.pop(dj, None)
            session.away_since.pop(dj, None)
            session.last_seen.pop(dj, None)
    if joined is not None:
        session.last_seen[joined] = event.at
    session.active = event.data["active"]


def _apply_queue(state: RoomState, event: Event) -> None:
    session = state.session
    assert session is not None
    votes = {i.item_id: i.votes for i in session.all_items()}  # ephemeral votes survive a reorder
    session.queues = {k: [QueueItem.from_dict(i) for i in v] for k, v in event.meta["queues"].items()}
    for item in session.all_items():
        item.votes = votes.get(item.item_id, {})
        session.next_position = max(session.next_position, item.position + 1)


def _apply_track_started(state: RoomState, event: Event) -> None:
    session = state.session
    assert session is not None
    d = event.data
    item_id = d["item"]["item_id"]
    found = session.find_item(item_id)
    item = found[1] if found else QueueItem.from_dict(event.meta["item"])
    for items in session.queues.values():
        items[:] = [i for i in items if i.item_id != item_id]
    session.now_playing = NowPlaying(item, d["dj_id"], d["started_at"], d["ends_at"])
    session.played.append(item_id)
    state.note_play(item.track["id"], d["started_at"])
    if "passes" in event.meta:
        session.passes = dict(event.meta["passes"])
        session.active = d["dj_id"]
        session.last_turn_no = session.join_no.get(d["dj_id"], session.last_turn_no)


def _apply_track_ended(state: RoomState, event: Event) -> None:
    session = state.session
    assert session is not None
    session.now_playing = None


def _apply_vote(state: RoomState, event: Event) -> None:
    session = state.session
    if session is None:
        return
    item_id, voter, value = event.data["item_id"], event.meta["voter"], event.meta["value"]
    playing = session.now_playing
    if value == "skip":
        if playing is not None and playing.item.item_id == item_id and voter not in playing.skips:
            playing.skips.append(voter)
            reason = event.meta.get("reason")
            if reason is not None:
                playing.skip_reasons[voter] = reason
        return
    item = playing.item if playing is not None and playing.item.item_id == item_id else None
    if item is None:
        found = session.find_item(item_id)
        item = found[1] if found else None
    if item is None:
        return
    if value == "none":
        item.votes.pop(voter, None)
    else:
        item.votes[voter] = value


SESSION_APPLY: dict[str, Callable[[RoomState, Event], None]] = {
    "session.started": _apply_session_started,
    "session.updated": _apply_session_updated,
    "dj.seen": _apply_dj_seen,
    "session.ended": _apply_session_ended,
    "dj.rotation": _apply_rotation,
    "queue.updated": _apply_queue,
    "track.started": _apply_track_started,
    "track.ended": _apply_track_ended,
    "vote.tally": _apply_vote,
}
