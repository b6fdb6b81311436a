"""The journal writer: group commit of durable room events and the rows they imply.

One writer, one dedicated connection, one batch in flight. ``submit`` is
synchronous: it appends to the open batch and wakes the writer; the caller
awaits its ticket, which is settled when the batch that holds it has
committed (or failed). Batches grow with load by themselves: everything
submitted while one batch commits goes into the next.

Presence (who came into and left which room, and when) rides along: the actors
note it with ``record_presence``, nobody waits for it, and it is written in the
transaction of the batch it lands in (a batch of its own when nothing durable
is pending), so it never delays an event and never holds up a room.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import trio

from protocol.errors import OwnershipLost
from protocol.events import Event
from storage.database import aio, connect_one
from storage.notifications import NoteRow, create_notifications
from storage.progression import Award, Progress, apply_awards

log = logging.getLogger("seda.journal")

# The journal's connection is named so operators (and fault-injection tests) can find it.
JOURNAL_APPLICATION_NAME = "seda-journal"


class JournalFailed(RuntimeError):
    """The batch holding these events did not commit; nothing in it may be shown."""


class JournalClosed(RuntimeError):
    """The writer is shutting down and takes no more work."""


class LeaseLost(JournalFailed, OwnershipLost):
    """The room's lease is no longer this writer's epoch: another node took the room over.
    Nothing of the batch was written for it, and nothing more ever will be from this actor."""


class _Fenced(Exception):
    def __init__(self, rooms: set[str]) -> None:
        super().__init__(f"lease lost for {len(rooms)} room(s)")
        self.rooms = rooms


class Ticket:
    """Settled once the batch holding a submission commits or fails."""

    __slots__ = ("_done", "error", "notes", "results")

    def __init__(self) -> None:
        self._done = trio.Event()
        self.error: BaseException | None = None
        self.results: dict[tuple[str, int], list[Progress]] = {}
        self.notes: dict[tuple[str, int], list[tuple[str, dict[str, Any]]]] = {}

    def results_for(self, room_id: str, seq: int) -> list[Progress]:
        """What the event's point awards changed, per user (empty if nothing new was awarded)."""
        return self.results.get((room_id, seq), [])

    def notes_for(self, room_id: str, seq: int) -> list[tuple[str, dict[str, Any]]]:
        """The notifications the event created (mentions, replies), as (user id, Notification)."""
        return self.notes.get((room_id, seq), [])

    @property
    def settled(self) -> bool:
        return self._done.is_set()

    def _settle(self, error: BaseException | None) -> None:
        self.error = error
        self._done.set()

    async def wait(self) -> None:
        await self._done.wait()
        if isinstance(self.error, LeaseLost):
            raise LeaseLost(str(self.error)) from self.error
        if self.error is not None:
            raise JournalFailed(str(self.error)) from self.error


# One presence change: (room id, user id, at ms, present). A user id of None with
# present False is everyone at once: the room's actor stopped.
PresenceChange = tuple[str, str | None, int, bool]


@dataclass
class _Batch:
    events: list[tuple[str, Event]] = field(default_factory=list)
    snapshots: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    tickets: list[Ticket] = field(default_factory=list)
    rooms: list[str] = field(default_factory=list)  # the room of each ticket, in order
    presence: list[PresenceChange] = field(default_factory=list)  # in the order the rooms noted it

    @property
    def empty(self) -> bool:
        return not self.tickets and not self.presence

    def only(self, room_id: str) -> _Batch:
        """This batch's durable work of one room (its presence goes on with the next batch)."""
        part = _Batch()
        part.events = [(r, e) for r, e in self.events if r == room_id]
        part.snapshots = {r: snap for r, snap in self.snapshots.items() if r == room_id}
        for room, ticket in zip(self.rooms, self.tickets, strict=True):
            if room == room_id:
                part.tickets.append(ticket)
                part.rooms.append(room)
        return part

    def followed_by(self, later: _Batch) -> _Batch:
        """This batch's work, then ``later``'s, as one batch (in order)."""
        joined = _Batch(
            events=self.events + later.events,
            snapshots={**self.snapshots, **later.snapshots},
            tickets=self.tickets + later.tickets,
            rooms=self.rooms + later.rooms,
            presence=self.presence + later.presence,
        )
        return joined

    def without(self, poisoned: set[str], error: BaseException) -> _Batch:
        """This batch minus the work of ``poisoned`` rooms, whose tickets fail with ``error``."""
        kept = _Batch(presence=self.presence)  # presence is not sequenced: a failed room's stays
        kept.events = [(r, e) for r, e in self.events if r not in poisoned]
        kept.snapshots = {r: s for r, s in self.snapshots.items() if r not in poisoned}
        for room_id, ticket in zip(self.rooms, self.tickets, strict=True):
            if room_id in poisoned:
                ticket._settle(error)
            else:
                kept.tickets.append(ticket)
                kept.rooms.append(room_id)
        return kept


def _ts(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _presence_rows(changes: list[PresenceChange]) -> dict[str, list[tuple[Any, ...]]]:
    """Presence changes, in order, as three statements' rows run in this order: close the
    intervals opened by earlier batches that a leave ends (``presence_closes``), close all of a
    room's still-open ones when its actor stopped (``presence_resets``), then insert the
    intervals this batch opened (``presence_opens``, closed already if they also ended in it).

    Folding the batch's own joins and leaves together first is what makes that order right:
    every close left for the first two statements is of an interval from an earlier batch.
    A leave then a join of the same user at the same millisecond is one interval, not two."""
    opens: list[list[Any]] = []
    opened: dict[tuple[str, str], int] = {}  # (room, user) -> index in opens of the interval still open
    ended: dict[tuple[str, str], int] = {}  # (room, user) -> index in opens of the last one closed
    closes: list[tuple[Any, ...]] = []
    resets: list[tuple[Any, ...]] = []
    for room_id, user_id, at, present in changes:
        if user_id is None:
            for key in [k for k in opened if k[0] == room_id]:
                opens[opened.pop(key)][3] = at
            for key in [k for k in ended if k[0] == room_id]:
                del ended[key]  # a new actor's join is a new interval
            resets.append((room_id, _ts(at)))
            continue
        key = (room_id, user_id)
        if present:
            if key in opened:  # a join without a leave (cannot happen in one actor's life): the later wins
                opens[opened.pop(key)][3] = at
            last = ended.get(key)
            if last is not None and opens[last][3] == at:
                opens[last][3] = None
                opened[key] = last
            else:
                opened[key] = len(opens)
                opens.append([room_id, user_id, at, None])
        elif key in opened:
            ended[key] = opened.pop(key)
            opens[ended[key]][3] = at
        else:
            closes.append((room_id, user_id, _ts(at)))
    return {
        "presence_closes": closes,
        "presence_resets": resets,
        "presence_opens": [(r, u, _ts(j), None if left is None else _ts(left)) for r, u, j, left in opens],
    }


class _Rows:
    """A batch's rows being gathered, per statement, plus what folds several events into one row."""

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[Any, ...]]] = {
            kind: [] for kind in (*_STATEMENTS, *_AFTER_STATEMENTS)
        }
        self.reactions: OrderedDict[tuple[str, str, str], tuple[bool, int]] = OrderedDict()
        self.pins: dict[str, list[str]] = {}
        self.room_updates: dict[str, dict[str, Any]] = {}

    def add(self, kind: str, row: tuple[Any, ...]) -> None:
        self.rows[kind].append(row)


def _chat_message(out: _Rows, room_id: str, e: Event) -> None:
    d = e.data
    track = d["track"]
    out.add(
        "messages",
        (
            d["id"],
            room_id,
            d["user_id"],
            d["text"],
            d["reply_to"],
            track["id"] if track else None,
            ",".join(d["mentions"]),  # ragged arrays cannot be unnested; joined, split in SQL
            e.meta.get("nonce"),
            e.seq,
            _ts(e.at),
        ),
    )
    out.rows["mentions"].extend((d["id"], uid, room_id, _ts(e.at)) for uid in d["mentions"])
    about = {"room_id": room_id, "message_id": d["id"]}
    out.rows["mention_notes"].extend((room_id, e.seq, uid, d["user_id"], about) for uid in d["mentions"])
    if d["reply_to"]:
        out.add(
            "reply_notes",
            (room_id, e.seq, d["reply_to"], d["user_id"], {**about, "parent_id": d["reply_to"]}),
        )


def _chat_deleted(out: _Rows, room_id: str, e: Event) -> None:
    out.add("deletes", (e.data["id"], e.data["by"], _ts(e.at)))


def _chat_reaction(out: _Rows, room_id: str, e: Event) -> None:
    d = e.data
    out.reactions[(d["message_id"], d["user_id"], d["emoji"])] = (d["added"], e.at)


def _reactions_cleared(out: _Rows, room_id: str, e: Event) -> None:
    message_id = e.data["message_id"]
    for key in [k for k in out.reactions if k[0] == message_id]:
        del out.reactions[key]
    out.add("reaction_clears", (message_id,))


def _room_updated(out: _Rows, room_id: str, e: Event) -> None:
    out.room_updates[room_id] = e.data["room"]


def _room_deleted(out: _Rows, room_id: str, e: Event) -> None:
    out.add("room_deletes", (room_id, _ts(e.at)))


def _session_started(out: _Rows, room_id: str, e: Event) -> None:
    d = e.data
    out.add("sessions_started", (d["session_id"], room_id, d["mode"], d["host_id"], _ts(d["started_at"])))


def _session_ended(out: _Rows, room_id: str, e: Event) -> None:
    out.add("sessions_ended", (e.data["session_id"], _ts(e.at), e.data["reason"]))
    stopped = e.meta.get("stopped")
    if stopped is not None:  # a track was playing: it goes into the room's history as stopped
        out.add("track_ends", (stopped["item_id"], _ts(e.at), "stopped", json.dumps(stopped["votes"])))


def _track_started(out: _Rows, room_id: str, e: Event) -> None:
    d = e.data
    item = d["item"]
    out.add("track_plays", (item["item_id"], room_id, d["dj_id"], item["track"]["id"], _ts(e.at)))
    out.add("dj_live_notes", (room_id, e.seq, d["dj_id"], item["item_id"]))


def _track_ended(out: _Rows, room_id: str, e: Event) -> None:
    d = e.data
    out.add("track_ends", (d["item_id"], _ts(e.at), d["reason"], json.dumps(d["votes"])))


def _user_banned(out: _Rows, room_id: str, e: Event) -> None:
    d = e.data
    until = _ts(d["until"]) if d["until"] is not None else None
    out.add("bans", (room_id, d["user_id"], until, d["reason"], e.meta["modlog"]["actor_id"]))


def _user_unbanned(out: _Rows, room_id: str, e: Event) -> None:
    out.add("unbans", (room_id, e.data["user_id"]))


# What each durable event writes besides its room_events row (and its meta's modlog, awards and
# pins, which any event may carry). Durable events not named here write nothing more; a test
# (tests/test_event_catalog.py) proves every name here is a durable event.
ROW_MAKERS: dict[str, Callable[[_Rows, str, Event], None]] = {
    "chat.message": _chat_message,
    "chat.deleted": _chat_deleted,
    "chat.reaction": _chat_reaction,
    "chat.reactions_cleared": _reactions_cleared,
    "room.updated": _room_updated,
    "room.deleted": _room_deleted,
    "session.started": _session_started,
    "session.ended": _session_ended,
    "track.started": _track_started,
    "track.ended": _track_ended,
    "user.banned": _user_banned,
    "user.unbanned": _user_unbanned,
}


def _rows(batch: _Batch) -> dict[str, list[tuple[Any, ...]]]:
    """The rows every statement of the batch writes, derived from the events alone."""
    out = _Rows()
    rows = out.rows
    for room_id, e in batch.events:
        rows["events"].append((room_id, e.seq, e.name, json.dumps(e.to_journal()), _ts(e.at)))
        maker = ROW_MAKERS.get(e.name)
        if maker is not None:
            maker(out, room_id, e)
        log_entry = e.meta.get("modlog")
        if log_entry is not None:
            rows["modlog"].append(
                (
                    room_id,
                    log_entry["actor_id"],
                    log_entry["action"],
                    log_entry.get("target_user_id"),
                    log_entry.get("target_message_id"),
                    log_entry.get("reason"),
                    json.dumps(log_entry.get("details", {})),
                    _ts(e.at),
                )
            )
        if e.meta.get("awards"):
            rows["awards"].append((room_id, e.seq, e.meta["awards"], _ts(e.at)))
        if "pinned_message_ids" in e.meta:
            out.pins[room_id] = e.meta["pinned_message_ids"]
    for (message_id, user_id, emoji), (added, at) in out.reactions.items():
        if added:
            rows["reaction_adds"].append((message_id, user_id, emoji, _ts(at)))
        else:
            rows["reaction_removes"].append((message_id, user_id, emoji))
    rows["pins"] = [(room_id, ids) for room_id, ids in out.pins.items()]
    rows["room_updates"] = [
        (
            room_id,
            r["name"],
            r.get("description"),
            r["visibility"],
            r["owner_id"],
            json.dumps(r.get("genres", [])),
            json.dumps(r.get("tags", [])),
            json.dumps(r["pinned_track"]) if r.get("pinned_track") is not None else None,
        )
        for room_id, r in out.room_updates.items()
    ]
    rows["snapshots"] = [
        (room_id, seq, json.dumps(state)) for room_id, (seq, state) in batch.snapshots.items()
    ]
    rows.update(_presence_rows(batch.presence))
    return rows


def _columns(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    return [list(col) for col in zip(*rows, strict=True)]


# One statement per kind of row; each runs only when it has rows.
_STATEMENTS: dict[str, str] = {
    "events": """INSERT INTO room_events (room_id, seq, name, payload, at)
                 SELECT r, s, n, p::jsonb, a
                 FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::timestamptz[])
                      AS t(r, s, n, p, a)""",
    "messages": """INSERT INTO messages (id, room_id, user_id, text, parent_id, track_ref_id, mentions, nonce,
                                         seq, created_at)
                   SELECT i, r, u, t, p, tr, string_to_array(m, ',')::uuid[], n, s, c
                   FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::uuid[], $6::uuid[],
                               $7::text[], $8::text[], $9::bigint[], $10::timestamptz[])
                        AS x(i, r, u, t, p, tr, m, n, s, c)""",
    "mentions": """INSERT INTO message_mentions (message_id, user_id, room_id, created_at)
                   SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[])
                   ON CONFLICT DO NOTHING""",
    "deletes": """UPDATE messages m SET deleted_at = x.a, deleted_by = x.b
                  FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[]) AS x(i, b, a) WHERE m.id = x.i""",
    "reaction_clears": "DELETE FROM message_reactions WHERE message_id = ANY($1::uuid[])",
    "reaction_removes": """DELETE FROM message_reactions r
                           USING unnest($1::uuid[], $2::uuid[], $3::text[]) AS x(m, u, e)
                           WHERE r.message_id = x.m AND r.user_id = x.u AND r.emoji = x.e""",
    "reaction_adds": """INSERT INTO message_reactions (message_id, user_id, emoji, created_at)
                        SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[])
                        ON CONFLICT DO NOTHING""",
    "room_updates": """UPDATE rooms r SET name = x.n, description = x.d, visibility = x.v, owner_id = x.o,
                           genres = ARRAY(SELECT jsonb_array_elements_text(x.g::jsonb)),
                           tags = ARRAY(SELECT jsonb_array_elements_text(x.t::jsonb)),
                           pinned_track = x.p::jsonb, updated_at = now()
                       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::uuid[], $6::text[],
                                   $7::text[], $8::text[]) AS x(i, n, d, v, o, g, t, p)
                       WHERE r.id = x.i""",
    "room_deletes": """UPDATE rooms r SET deleted_at = x.a, updated_at = now()
                       FROM unnest($1::uuid[], $2::timestamptz[]) AS x(i, a) WHERE r.id = x.i""",
    "sessions_started": """INSERT INTO dj_sessions (id, room_id, mode, started_by, started_at)
                           SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[],
                                                $5::timestamptz[])
                           ON CONFLICT (id) DO NOTHING""",
    "sessions_ended": """UPDATE dj_sessions s SET ended_at = x.a, end_reason = x.r
                         FROM unnest($1::uuid[], $2::timestamptz[], $3::text[]) AS x(i, a, r)
                         WHERE s.id = x.i""",
    "track_plays": """INSERT INTO track_plays (item_id, room_id, dj_id, track_ref_id, started_at)
                      SELECT * FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::uuid[], $5::timestamptz[])
                      ON CONFLICT (item_id) DO NOTHING""",
    "track_ends": """UPDATE track_plays p SET ended_at = x.a, end_reason = x.r, votes = x.v::jsonb
                     FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[]) AS x(i, a, r, v)
                     WHERE p.item_id = x.i AND p.ended_at IS NULL""",
    "bans": """INSERT INTO room_bans (room_id, user_id, until, reason, banned_by)
               SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[], $5::uuid[])
               ON CONFLICT (room_id, user_id) DO UPDATE
               SET until = excluded.until, reason = excluded.reason, banned_by = excluded.banned_by,
                   created_at = now()""",
    "unbans": """DELETE FROM room_bans b USING unnest($1::uuid[], $2::uuid[]) AS x(r, u)
                 WHERE b.room_id = x.r AND b.user_id = x.u""",
    "modlog": """INSERT INTO moderation_log (room_id, actor_id, action, target_user_id, target_message_id,
                                             reason, details, created_at)
                 SELECT r, a, act, t, m, rs, d::jsonb, c
                 FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::uuid[], $6::text[],
                             $7::text[], $8::timestamptz[]) AS x(r, a, act, t, m, rs, d, c)""",
    "snapshots": """INSERT INTO room_snapshots (room_id, seq, state)
                    SELECT r, s, st::jsonb FROM unnest($1::uuid[], $2::bigint[], $3::text[]) AS x(r, s, st)
                    ON CONFLICT (room_id) DO UPDATE
                    SET seq = excluded.seq, state = excluded.state, taken_at = now()
                    WHERE room_snapshots.seq <= excluded.seq""",
}
# Presence, in this order (see _presence_rows), inside a savepoint of the batch's transaction.
_PRESENCE_STATEMENTS: dict[str, str] = {
    "presence_closes": """UPDATE room_presence p SET left_at = greatest(p.joined_at, x.a)
                          FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[]) AS x(r, u, a)
                          WHERE p.room_id = x.r AND p.user_id = x.u AND p.left_at IS NULL""",
    "presence_resets": """UPDATE room_presence p SET left_at = greatest(p.joined_at, x.a)
                          FROM unnest($1::uuid[], $2::timestamptz[]) AS x(r, a)
                          WHERE p.room_id = x.r AND p.left_at IS NULL""",
    # A user or room deleted meanwhile has no presence to keep: such rows are skipped, not refused.
    "presence_opens": """INSERT INTO room_presence (room_id, user_id, joined_at, left_at)
                         SELECT x.r, x.u, x.j, x.l
                         FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::timestamptz[])
                              AS x(r, u, j, l)
                         WHERE EXISTS (SELECT 1 FROM users WHERE id = x.u)
                           AND EXISTS (SELECT 1 FROM rooms WHERE id = x.r)
                         ON CONFLICT DO NOTHING""",
}
# A server that stopped without closing them (killed, or its journal gone first) left intervals
# open; at start nobody is in any room, so each ends at what is known of it: its room's last
# journaled event if that came after the join, else the join itself.
_CLOSE_STALE_PRESENCE = """
    UPDATE room_presence p SET left_at = greatest(p.joined_at, coalesce(
        (SELECT e.at FROM room_events e WHERE e.room_id = p.room_id ORDER BY e.seq DESC LIMIT 1),
        p.joined_at))
    WHERE p.left_at IS NULL"""
# Rows that are not written by a statement of _STATEMENTS but by the code after them in _write.
_AFTER_STATEMENTS = ("awards", "pins", "mention_notes", "reply_notes", "dj_live_notes")


@dataclass
class _Committed:
    """What a batch's commit produced for the actors to tell: progress and notifications by event."""

    progress: dict[tuple[str, int], list[Progress]] = field(default_factory=dict)
    notes: dict[tuple[str, int], list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)


async def _notify_chat(
    conn: asyncpg.Connection, rows: dict[str, list[tuple[Any, ...]]], out: _Committed
) -> None:
    """Mention and reply notifications of the batch's chat messages, in its transaction."""
    authors: dict[str, str] = {}
    if rows["reply_notes"]:
        parents = [uuid.UUID(r[2]) for r in rows["reply_notes"]]
        found = await conn.fetch("SELECT id, user_id FROM messages WHERE id = ANY($1::uuid[])", parents)
        authors = {str(r["id"]): str(r["user_id"]) for r in found}
    wanted: list[NoteRow] = [
        (uid, "mention", actor, about) for _, _, uid, actor, about in rows["mention_notes"]
    ]
    wanted += [
        (authors[parent], "reply", actor, about)
        for _, _, parent, actor, about in rows["reply_notes"]
        if parent in authors
    ]
    by_message = {r[4]["message_id"]: (r[0], r[1]) for r in rows["mention_notes"] + rows["reply_notes"]}
    for user_id, note in await create_notifications(conn, wanted):
        out.notes.setdefault(by_message[note["data"]["message_id"]], []).append((user_id, note))


# Followers of a DJ whose track started who may see the room (a private room's members; nobody
# banned from it), and who were not told of this DJ going live within the hour.
_DJ_LIVE_FOLLOWERS = """
    SELECT x.k, f.follower_id::text AS user_id
    FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS x(room_id, dj_id, k)
    JOIN rooms r ON r.id = x.room_id AND r.deleted_at IS NULL
    JOIN follows f ON f.followee_id = x.dj_id
    WHERE (r.type <> 'private' AND r.visibility <> 'private'
           OR EXISTS (SELECT 1 FROM room_memberships m WHERE m.room_id = r.id AND m.user_id = f.follower_id))
      AND NOT EXISTS (SELECT 1 FROM room_bans b WHERE b.room_id = r.id AND b.user_id = f.follower_id
                      AND (b.until IS NULL OR b.until > now()))
      AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.user_id = f.follower_id AND n.type = 'dj_live'
                      AND n.actor_id = x.dj_id AND n.created_at > now() - interval '1 hour')
    ORDER BY x.k, f.follower_id"""


async def _notify_dj_live(
    conn: asyncpg.Connection, rows: dict[str, list[tuple[Any, ...]]], out: _Committed
) -> None:
    """``dj_live`` to each follower of a DJ whose track started (PROTOCOL.md "Followed DJs"),
    at most one per follower and DJ per hour, in the transaction of ``track.started``."""
    starts = rows["dj_live_notes"]
    found = await conn.fetch(
        _DJ_LIVE_FOLLOWERS, [uuid.UUID(r[0]) for r in starts], [uuid.UUID(r[2]) for r in starts]
    )
    wanted: list[NoteRow] = []
    told: set[tuple[str, str]] = set()  # one per follower and DJ, even for two starts in a batch
    for r in found:
        room_id, _, dj_id, item_id = starts[r["k"] - 1]
        if (r["user_id"], dj_id) in told:
            continue
        told.add((r["user_id"], dj_id))
        wanted.append(
            (r["user_id"], "dj_live", dj_id, {"room_id": room_id, "dj_id": dj_id, "item_id": item_id})
        )
    by_item = {r[3]: (r[0], r[1]) for r in starts}
    for user_id, note in await create_notifications(conn, wanted):
        out.notes.setdefault(by_item[note["data"]["item_id"]], []).append((user_id, note))


# The fence: the rooms whose lease is still this node's at the writer's epoch. The row lock
# (FOR SHARE) holds a takeover's UPDATE until this transaction ends, so once a takeover has
# bumped the epoch, no batch of the old owner can commit.
_FENCE = """SELECT l.room_id::text FROM room_leases l
             JOIN unnest($2::uuid[], $3::bigint[]) AS f(room_id, epoch)
               ON l.room_id = f.room_id AND l.epoch = f.epoch
            WHERE l.node_id = $1
            FOR SHARE OF l"""

# (node id, {room id: epoch}) of the rooms a batch writes for; None: not fenced (tests of the writer alone)
Fence = tuple[str, dict[str, int]]


async def _write(
    conn: asyncpg.Connection, rows: dict[str, list[tuple[Any, ...]]], fence: Fence | None = None
) -> _Committed:
    """Write one batch in one transaction (runs on the asyncio side: one bridge crossing)."""
    out = _Committed()
    async with conn.transaction():
        if fence is not None and fence[1]:
            node_id, epochs = fence
            held = await conn.fetch(_FENCE, node_id, list(epochs), list(epochs.values()))
            lost = set(epochs) - {r[0] for r in held}
            if lost:
                raise _Fenced(lost)
        for kind in _STATEMENTS:  # in the order written there
            if rows[kind]:
                await conn.execute(_STATEMENTS[kind], *_columns(rows[kind]))
        for room_id, seq, awards, at in rows["awards"]:
            out.progress[(room_id, seq)] = await apply_awards(conn, [Award(*a) for a in awards], room_id, at)
        if rows["pins"]:
            # uuid[][] of ragged lengths cannot be unnested, so pins go one room at a time.
            for room_id, ids in rows["pins"]:
                await conn.execute(
                    "UPDATE rooms SET pinned_message_ids = $2::uuid[], updated_at = now() WHERE id = $1",
                    room_id,
                    ids,
                )
        if rows["mention_notes"] or rows["reply_notes"]:
            await _notify_chat(conn, rows, out)
        if rows["dj_live_notes"]:
            await _notify_dj_live(conn, rows, out)
        if any(rows[kind] for kind in _PRESENCE_STATEMENTS):
            await _write_presence(conn, rows)
    return out


async def _write_presence(conn: asyncpg.Connection, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    """Presence in a savepoint: a row Postgres refuses costs that presence (logged), never the
    durable events it shares the transaction with."""
    try:
        async with conn.transaction():
            for kind, sql in _PRESENCE_STATEMENTS.items():
                if rows[kind]:
                    await conn.execute(sql, *_columns(rows[kind]))
    except asyncpg.PostgresError as exc:
        log.warning("presence of a journal batch dropped: %s", exc)


# InternalClientError: asyncpg's own state broke with the connection (seen when Postgres died
# mid-statement); the connection is then dropped and made again.
_WRITE_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    ValueError,
    TypeError,
)


class JournalWriter:
    def __init__(
        self,
        dsn: str,
        *,
        on_commit: Callable[[int, float], None] | None = None,
        node_id: str | None = None,
        lock_timeout_ms: int = 2000,
    ) -> None:
        self._dsn = dsn
        # With a node id, every batch is fenced on the epochs of the rooms it writes for.
        self._node_id = node_id
        self._epochs: dict[str, int] = {}
        self._lock_timeout_ms = lock_timeout_ms
        self._batch = _Batch()
        self._wake = trio.Event()
        self._closing = False
        self._on_commit = on_commit
        # Rooms whose batch failed: what their actors pipelined after it must not be written
        # (it would follow a seq that never landed). Cleared when the room's actor restarts.
        self._poisoned: dict[str, BaseException] = {}

    def submit(
        self, room_id: str, events: list[Event], snapshot: tuple[int, dict[str, Any]] | None = None
    ) -> Ticket:
        """Queue durable events (and maybe a snapshot) of one room; await the ticket for the commit."""
        if self._closing:
            raise JournalClosed("the journal is closing")
        ticket = Ticket()
        poisoned = self._poisoned.get(room_id)
        if poisoned is not None:
            ticket._settle(poisoned)
            return ticket
        batch = self._batch
        batch.events.extend((room_id, e) for e in events)
        if snapshot is not None:
            batch.snapshots[room_id] = snapshot
        batch.tickets.append(ticket)
        batch.rooms.append(room_id)
        self._wake.set()
        return ticket

    def reopen(self, room_id: str, epoch: int | None = None) -> None:
        """A fresh actor for the room was loaded from what committed: take its work again,
        fenced on ``epoch`` (the lease it holds) from now on."""
        self._poisoned.pop(room_id, None)
        if epoch is not None:
            self._epochs[room_id] = epoch

    def disown(self, room_id: str, epoch: int) -> None:
        """The room's actor stopped and its lease went back: it writes nothing more."""
        if self._epochs.get(room_id) == epoch:
            del self._epochs[room_id]

    def _fence(self, batch: _Batch) -> Fence | None:
        if self._node_id is None:
            return None
        # A room without an epoch here holds no lease: fenced with epoch 0, it fails as lost.
        return self._node_id, {room: self._epochs.get(room, 0) for room in dict.fromkeys(batch.rooms)}

    def record_presence(self, room_id: str, user_id: str | None, at: int, present: bool) -> None:
        """Note that ``user_id`` came into (``present``) or left the room at ``at`` (ms); a
        ``user_id`` of None leaving is everyone leaving (the room's actor stopped).

        Not acknowledged and never waited for: written with the next batch, in its
        transaction. A change noted before a room's durable events is committed no later
        than they are. Dropped only once the journal is closing."""
        if self._closing:
            return
        self._batch.presence.append((room_id, user_id, at, present))
        self._wake.set()

    def close(self) -> None:
        """Take no more submissions; :meth:`run` returns once what it holds has been written."""
        self._closing = True
        self._wake.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        conn = await self._connect()
        if self._node_id is None:
            # Alone on the database, before any room runs: nothing open is live. (With leases,
            # other nodes' rooms are live: their presence is closed when their actors stop.)
            await aio(conn.execute, _CLOSE_STALE_PRESENCE)
        task_status.started()
        backoff = 0.05
        try:
            while True:
                if self._batch.empty:
                    if self._closing:
                        return
                    await self._wake.wait()
                    self._wake = trio.Event()
                    continue
                batch, self._batch = self._batch, _Batch()
                try:
                    rows = _rows(batch)
                    started = trio.current_time()
                    with trio.CancelScope(shield=True):
                        committed = await aio(_write, conn, rows, self._fence(batch))
                except _Fenced as fenced:
                    # Rolled back whole: the rooms taken over fail, the rest is written next.
                    log.warning("journal: lease lost for room(s) %s", ", ".join(sorted(fenced.rooms)))
                    error = LeaseLost("the room's lease moved to another node")
                    self._fail(batch, dict.fromkeys(fenced.rooms, error))
                    self._batch = batch.without(fenced.rooms, error).followed_by(self._batch)
                    continue
                except _WRITE_ERRORS as exc:
                    log.warning("journal batch of %d events failed: %s", len(batch.events), exc)
                    if isinstance(exc, asyncpg.InternalClientError):
                        conn.terminate()  # unusable: a new one is made below
                    # Nothing of it was written; presence is never the cause (its savepoint
                    # takes refusals), so it goes again with the next batch, in order.
                    self._batch.presence[:0] = batch.presence
                    if not conn.is_closed() and len(set(batch.rooms)) > 1:
                        # Postgres refused a row and the connection is fine: the batch rolled
                        # back whole, so write it again room by room and fail only the rooms
                        # whose own rows are refused.
                        failed = await self._room_by_room(conn, batch)
                        if not conn.is_closed():
                            self._fail(batch, failed)
                            continue
                    self._fail(batch, {room: exc for room in batch.rooms})
                    conn = await self._reconnect(conn, backoff)
                    backoff = min(backoff * 2, 2.0)
                    continue
                backoff = 0.05
                self._committed(batch, committed, trio.current_time() - started)
        finally:
            for ticket in self._batch.tickets:
                ticket._settle(JournalClosed("journal stopped before this was written"))
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                try:
                    await aio(conn.close)
                except _WRITE_ERRORS:  # a broken connection: dropped without a goodbye
                    conn.terminate()

    async def _room_by_room(self, conn: asyncpg.Connection, batch: _Batch) -> dict[str, BaseException]:
        """Write each room's share of a refused batch on its own; the rooms that fail, and why.

        Stops at a lost connection: the rooms not yet written count as failed then."""
        failed: dict[str, BaseException] = {}
        for room_id in dict.fromkeys(batch.rooms):
            part = batch.only(room_id)
            if conn.is_closed():
                failed[room_id] = JournalFailed("the journal's connection was lost")
                continue
            try:
                started = trio.current_time()
                with trio.CancelScope(shield=True):
                    committed = await aio(_write, conn, _rows(part), self._fence(part))
            except _Fenced:
                failed[room_id] = LeaseLost("the room's lease moved to another node")
                continue
            except _WRITE_ERRORS as exc:
                failed[room_id] = exc
                continue
            self._committed(part, committed, trio.current_time() - started)
        return failed

    def _committed(self, batch: _Batch, committed: _Committed, seconds: float) -> None:
        """Settle the batch's tickets, and report its size and how long its commit took."""
        for ticket in batch.tickets:
            ticket.results, ticket.notes = committed.progress, committed.notes
            ticket._settle(None)
        if self._on_commit is not None and batch.tickets:  # a batch of presence alone is no commit
            self._on_commit(len(batch.events), seconds)

    def _fail(self, batch: _Batch, failed: dict[str, BaseException]) -> None:
        """The failed rooms' tickets fail, and what their actors pipelined behind is dropped."""
        for room_id, ticket in zip(batch.rooms, batch.tickets, strict=True):
            if room_id in failed:
                ticket._settle(failed[room_id])
        for room_id, exc in failed.items():
            self._poisoned[room_id] = exc
            self._batch = self._batch.without({room_id}, exc)

    async def _connect(self) -> asyncpg.Connection:
        # Waits for a lease's row lock, and a transaction left open by a paused process, both
        # stay below the lease TTL: a takeover is never held up for longer than that.
        return await connect_one(
            self._dsn,
            application_name=JOURNAL_APPLICATION_NAME,
            settings={
                "lock_timeout": str(self._lock_timeout_ms),
                "idle_in_transaction_session_timeout": str(self._lock_timeout_ms),
            },
        )

    async def _reconnect(self, conn: asyncpg.Connection, delay: float) -> asyncpg.Connection:
        if not conn.is_closed():
            return conn
        while True:
            await trio.sleep(delay)
            try:
                return await self._connect()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("journal reconnect failed: %s", exc)
                delay = min(delay * 2, 2.0)
