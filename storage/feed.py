"""Reading the newsfeed: a viewer's events, grouped and paged; reactions; a user's activity.

Events are written by triggers (migration 009). Groups are fixed when an event is
written (``group_id``), so a page shows each group once, at the place of its newest
event the viewer can see. A paging session reads a snapshot: the first page fixes
the time it was read at, later pages see nothing newer, so new events neither
repeat nor push items past the cursor (they are on the next first page).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from storage.database import Database, Record, micros
from storage.refs import TRACK_COLUMNS, track, user_ref, user_ref_columns


def _visible(e: str) -> str:
    """Whether the viewer ($1) may see event ``e``: a private (or unlisted) room's events only
    its members, a private playlist's only its owner and collaborators, a follow only the
    follower's own followers (and the follower)."""
    return f"""
    ({e}.room_id IS NULL OR EXISTS (
        SELECT 1 FROM rooms r WHERE r.id = {e}.room_id AND r.deleted_at IS NULL
          AND ((r.type <> 'private' AND r.visibility = 'public')
               OR EXISTS (SELECT 1 FROM room_memberships m WHERE m.room_id = r.id AND m.user_id = $1))))
    AND ({e}.playlist_id IS NULL OR EXISTS (
        SELECT 1 FROM playlists p WHERE p.id = {e}.playlist_id
          AND (p.is_public OR p.owner_id = $1
               OR EXISTS (SELECT 1 FROM playlist_collaborators c
                          WHERE c.playlist_id = p.id AND c.user_id = $1))))
    AND ({e}.type <> 'user_followed' OR {e}.actor_id = $1
         OR EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = $1 AND f.followee_id = {e}.actor_id))"""


def _in_feed(e: str) -> str:
    """Whether event ``e`` is in the viewer's ($1) feed, snapshot $2 included: from people they
    follow, rooms they are in, or themselves, and visible to them."""
    return f"""{e}.created_at <= $2
    AND ({e}.actor_id = $1
         OR {e}.actor_id IN (SELECT followee_id FROM follows WHERE follower_id = $1)
         OR {e}.room_id IN (SELECT room_id FROM room_memberships WHERE user_id = $1))
    AND {_visible(e)}"""


_DETAILS = f"""SELECT e.id, e.type, e.created_at, e.group_id, {user_ref_columns("u", "up", "actor_")},
                      {user_ref_columns("tu", "tp", "target_")}, r.id AS room_ref_id, r.slug AS room_slug,
                      r.name AS room_name, pl.id AS playlist_ref_id, pl.name AS playlist_name, {TRACK_COLUMNS}
               FROM feed_events e JOIN users u ON u.id = e.actor_id
               LEFT JOIN profiles up ON up.user_id = e.actor_id
               LEFT JOIN users tu ON tu.id = e.target_user_id
               LEFT JOIN profiles tp ON tp.user_id = e.target_user_id
               LEFT JOIN rooms r ON r.id = e.room_id LEFT JOIN playlists pl ON pl.id = e.playlist_id
               LEFT JOIN track_refs t ON t.id = e.track_id"""


# One page of feed heads ($1 viewer, $2 snapshot, $3/$4 after, $5 limit) with their groups' counts and actors.
# A head is the newest event of its group in the viewer's feed: found newest first through the time
# index, each checked against its (small) group, so a page costs about what it shows.
PAGE_SQL = f"""WITH page AS (
                        SELECT e.id, e.group_id, e.created_at FROM feed_events e
                        WHERE {_in_feed("e")}
                          AND (e.created_at, e.id) < ($3, $4)
                          AND NOT EXISTS (SELECT 1 FROM feed_events n
                                          WHERE n.group_id = e.group_id
                                            AND (n.created_at, n.id) > (e.created_at, e.id)
                                            AND {_in_feed("n")})
                        ORDER BY e.created_at DESC, e.id DESC LIMIT $5),
                    members AS (SELECT m.group_id, m.actor_id, m.created_at FROM feed_events m
                                WHERE m.group_id IN (SELECT group_id FROM page) AND {_in_feed("m")})
                    SELECT page.id, page.created_at,
                           (SELECT count(*) FROM members
                            WHERE members.group_id = page.group_id) AS collapsed_count,
                           (SELECT array_agg(a.actor_id ORDER BY a.last DESC) FROM (
                                SELECT actor_id, max(created_at) AS last FROM members
                                WHERE members.group_id = page.group_id
                                GROUP BY actor_id ORDER BY last DESC LIMIT 3) a) AS actor_ids
                    FROM page ORDER BY page.created_at DESC, page.id DESC"""


def _from_the_top(snapshot: datetime) -> tuple[datetime, uuid.UUID]:
    """The "after" key of a first page: past everything in the snapshot. (A key every time, never
    a NULL that the query must test for: one shape of query keeps one good cached plan.)"""
    return snapshot + timedelta(microseconds=1), uuid.UUID(int=0)


def _item(r: Record) -> dict[str, Any]:
    return {
        "id": str(r["id"]),
        "type": r["type"],
        "actor": user_ref(r, "actor_"),
        "room": {"id": str(r["room_ref_id"]), "slug": r["room_slug"], "name": r["room_name"]}
        if r["room_ref_id"]
        else None,
        "playlist": {"id": str(r["playlist_ref_id"]), "name": r["playlist_name"]}
        if r["playlist_ref_id"]
        else None,
        "track": track(r) if r["track_id"] is not None else None,
        "target_user": user_ref(r, "target_"),
        "created_at": r["created_at"].isoformat(),
    }


class Feed:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def now(self) -> datetime:
        """The database's clock, which stamps feed events: a paging session's snapshot time."""
        at: datetime = await self._db.fetchval("SELECT clock_timestamp()")
        return at

    async def visible(self, event_id: uuid.UUID, viewer: uuid.UUID) -> bool:
        found = await self._db.fetchval(
            f"SELECT true FROM feed_events e WHERE e.id = $2 AND {_visible('e')}", viewer, event_id
        )
        return bool(found)

    async def page(
        self, viewer: uuid.UUID, snapshot: datetime, limit: int, before: tuple[datetime, uuid.UUID] | None
    ) -> list[dict[str, Any]]:
        """Feed items newest first: one per group, at its newest event the viewer can see."""

        async def unit(conn: asyncpg.Connection) -> list[dict[str, Any]]:
            # A head is the newest event of its group in the viewer's feed: found newest first
            # through the time index, each checked against its (small) group, so a page costs
            # about what it shows, however long the feed.
            heads = await conn.fetch(
                PAGE_SQL,
                viewer,
                snapshot,
                *(before or _from_the_top(snapshot)),
                limit + 1,
            )
            ids = [h["id"] for h in heads]
            items = await _items(conn, viewer, ids)
            actor_ids = list({a for h in heads for a in h["actor_ids"]})
            refs = await conn.fetch(
                f"""SELECT {user_ref_columns("u", "p", "ref_")} FROM users u
                    LEFT JOIN profiles p ON p.user_id = u.id WHERE u.id = ANY($1::uuid[])""",
                actor_ids,
            )
            by_id = {r["ref_id"]: user_ref(r, "ref_") for r in refs}
            out = []
            for h in heads:
                item = items[h["id"]]
                item["collapsed_count"] = h["collapsed_count"]
                item["actors"] = [by_id[a] for a in h["actor_ids"] if a in by_id]
                item["_key"] = (micros(h["created_at"]), str(h["id"]))
                out.append(item)
            return out

        return await self._db.run(unit)

    async def activity(
        self, user_id: uuid.UUID, viewer: uuid.UUID, limit: int, before: tuple[datetime, uuid.UUID] | None
    ) -> list[dict[str, Any]]:
        """The user's own events the viewer may see, newest first, not collapsed."""

        async def unit(conn: asyncpg.Connection) -> list[dict[str, Any]]:
            rows = await conn.fetch(
                f"""SELECT e.id, e.created_at FROM feed_events e
                    WHERE e.actor_id = $2 AND {_visible("e")}
                      AND ($3::timestamptz IS NULL OR (e.created_at, e.id) < ($3, $4))
                    ORDER BY e.created_at DESC, e.id DESC LIMIT $5""",
                viewer,
                user_id,
                before[0] if before else None,
                before[1] if before else None,
                limit + 1,
            )
            items = await _items(conn, viewer, [r["id"] for r in rows])
            out = []
            for r in rows:
                item = items[r["id"]]
                item["collapsed_count"] = 1
                item["actors"] = [item["actor"]]
                item["_key"] = (micros(r["created_at"]), str(r["id"]))
                out.append(item)
            return out

        return await self._db.run(unit)

    async def react(self, event_id: uuid.UUID, user_id: uuid.UUID, kind: str) -> bool:
        """True when the reaction is new."""
        made = await self._db.fetchval(
            """INSERT INTO feed_reactions (event_id, user_id, type) VALUES ($1, $2, $3)
               ON CONFLICT DO NOTHING RETURNING true""",
            event_id,
            user_id,
            kind,
        )
        return bool(made)

    async def unreact(self, event_id: uuid.UUID, user_id: uuid.UUID, kind: str) -> bool:
        gone = await self._db.fetchval(
            "DELETE FROM feed_reactions WHERE event_id = $1 AND user_id = $2 AND type = $3 RETURNING true",
            event_id,
            user_id,
            kind,
        )
        return bool(gone)


async def _items(
    conn: asyncpg.Connection, viewer: uuid.UUID, ids: list[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Any]]:
    """Feed items by event id, with their reactions (counts, and the viewer's own)."""
    if not ids:
        return {}
    rows = await conn.fetch(f"{_DETAILS} WHERE e.id = ANY($1::uuid[])", ids)
    reactions = await conn.fetch(
        """SELECT event_id, type, count(*) AS n, bool_or(user_id = $2) AS mine FROM feed_reactions
           WHERE event_id = ANY($1::uuid[]) GROUP BY event_id, type ORDER BY type""",
        ids,
        viewer,
    )
    items = {r["id"]: {**_item(r), "reactions": {}, "my_reactions": []} for r in rows}
    for r in reactions:
        item = items[r["event_id"]]
        item["reactions"][r["type"]] = r["n"]
        if r["mine"]:
            item["my_reactions"].append(r["type"])
    return items
