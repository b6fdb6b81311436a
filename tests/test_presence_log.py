"""Who was present in which room and when: noted by the room actors, written by the journal.

Presence is not acknowledged to anyone, so these tests order themselves by what is: a
change noted before a room's durable event is committed no later than that event, whose
reply (or broadcast) the test awaits.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import trio

from server.context import AppContext
from storage.database import Database
from storage.journal import JournalWriter, _presence_rows
from tests.live_client import Live, is_event


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def stays(db: Database, room_id: str) -> list[dict[str, Any]]:
    rows = await db.fetch(
        """SELECT u.username, p.joined_at, p.left_at FROM room_presence p JOIN users u ON u.id = p.user_id
           WHERE p.room_id = $1 ORDER BY p.joined_at, u.username""",
        uuid.UUID(room_id),
    )
    return [dict(r) for r in rows]


# ---- from real sockets ----------------------------------------------------------------------


async def test_co_listening_from_real_sockets(live: Live, http: httpx.AsyncClient, db: Database) -> None:
    mira, _ = await live.user("mira")
    bob, _ = await live.user("bobby")
    owner, _ = await live.user("owner")
    jazz = await live.room(owner, name="Late Night Jazz")
    spot = await live.room(owner, name="Bob Spot")
    async with live.connect(jazz["id"], mira), live.connect(jazz["id"], bob) as b:
        await b.chat("hi")  # both joins were noted before this, so they are committed with or before it
        assert [(s["username"], s["left_at"]) for s in await stays(db, jazz["id"])] == [
            ("mira", None),
            ("bobby", None),
        ]
    async with live.connect(spot["id"], bob) as b:
        await b.chat("over here")

    r = await http.get("/api/v1/recommendations", headers=bearer(mira))
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [(i["entity_id"], i["reason"]) for i in items] == [
        (spot["id"], "Popular with people who listen in Late Night Jazz")
    ]  # and not Late Night Jazz itself: mira is in it


async def test_a_stay_lasts_from_the_first_socket_to_the_last(live: Live, db: Database) -> None:
    ana, _ = await live.user("ana")
    bob, _ = await live.user("bobby")
    carl, _ = await live.user("carl")
    owner, _ = await live.user("owner")
    room = await live.room(owner)
    async with live.connect(room["id"], carl) as c:
        async with live.connect(room["id"], bob) as b:
            async with live.connect(room["id"], ana) as a1:
                async with live.connect(room["id"], ana):
                    await a1.chat("two sockets, one stay")
                await a1.chat("one socket left")
            left, _ = await b.until(is_event("presence.leave"))  # ana's last socket is gone
            assert left["data"]["user_id"] == a1.welcome["data"]["you"]["user_id"]
            await b.chat("ana left")
            found = await stays(db, room["id"])
            assert sorted(s["username"] for s in found) == [
                "ana",
                "bobby",
                "carl",
            ]  # ana's two sockets: one stay
            by_user = {s["username"]: s for s in found}
            assert (
                by_user["ana"]["left_at"] is not None
                and by_user["ana"]["left_at"] >= by_user["ana"]["joined_at"]
            )
            assert by_user["bobby"]["left_at"] is None and by_user["carl"]["left_at"] is None
        await c.until(
            lambda m: is_event("presence.leave")(m) and m["data"]["user_id"] != left["data"]["user_id"]
        )
        await c.chat("bob left")
        by_user = {s["username"]: s for s in await stays(db, room["id"])}
        assert by_user["bobby"]["left_at"] is not None and by_user["carl"]["left_at"] is None
    # coming back is a new stay
    async with live.connect(room["id"], carl), live.connect(room["id"], bob) as b:
        await b.chat("back")
        assert [s["username"] for s in await stays(db, room["id"])].count("bobby") == 2


async def test_a_stopped_room_ends_its_stays(
    live: Live, http: httpx.AsyncClient, ctx: AppContext, db: Database
) -> None:
    owner, _ = await live.user("owner")
    bob, _ = await live.user("bobby")
    carl, _ = await live.user("carl")
    room = await live.room(owner)
    other = await live.room(owner)
    async with live.connect(room["id"], owner) as a, live.connect(room["id"], bob):
        await a.chat("hello")
        assert ctx.registry is not None
        actor = ctx.registry.running(room["id"])
        assert actor is not None
        r = await http.delete(f"/api/v1/rooms/{room['id']}", headers=bearer(owner))
        assert r.status_code == 204, r.text
        with trio.fail_after(10):
            await actor.finished.wait()  # the sockets' own leaves found no actor: its stop ended them
    async with live.connect(other["id"], carl) as c:
        await c.chat("anyone?")  # committed after the stopped room's note
    ended = await stays(db, room["id"])
    assert [s["username"] for s in ended] == ["owner", "bobby"]
    assert all(s["left_at"] is not None for s in ended), ended


# ---- the journal's side ---------------------------------------------------------------------


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def test_a_batch_folds_its_own_joins_and_leaves() -> None:
    t = 1_700_000_000_000
    rows = _presence_rows(
        [
            ("r1", "ana", t, True),
            ("r1", "bob", t + 1, False),  # bob's stay began in an earlier batch
            ("r1", "ana", t + 5, False),
            ("r1", "ana", t + 5, True),  # back in the same millisecond: still one stay
            ("r1", "cat", t + 6, True),
            ("r2", "ana", t + 6, True),
            ("r1", None, t + 9, False),  # r1's actor stopped
            ("r1", "ana", t + 10, True),  # a new actor: a new stay
        ]
    )

    def at(ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, tz=UTC)

    assert rows["presence_closes"] == [("r1", "bob", at(t + 1))]
    assert rows["presence_resets"] == [("r1", at(t + 9))]
    assert rows["presence_opens"] == [
        ("r1", "ana", at(t), at(t + 9)),
        ("r1", "cat", at(t + 6), at(t + 9)),
        ("r2", "ana", at(t + 6), None),
        ("r1", "ana", at(t + 10), None),
    ]


async def test_the_journal_writes_presence_alone_and_ends_what_a_dead_server_left_open(
    ctx: AppContext, db: Database
) -> None:
    user = await ctx.users.create(email="ana@example.com", username="ana", password_hash="x")
    room_id = (await ctx.rooms.create(user.id, name="Room", type="public", visibility="public"))["id"]
    quiet_id = (await ctx.rooms.create(user.id, name="Quiet", type="public", visibility="public"))["id"]
    base = datetime.fromtimestamp(_ms(datetime.now(UTC)) / 1000, tz=UTC)
    second = timedelta(seconds=1)
    journal = JournalWriter(db.dsn)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        journal.record_presence(room_id, str(user.id), _ms(base), True)
        await journal.submit(room_id, []).wait()  # noted before it: committed with it or before
        assert [(s["joined_at"], s["left_at"]) for s in await stays(db, room_id)] == [(base, None)]
        journal.record_presence(room_id, str(user.id), _ms(base + second), False)
        journal.record_presence(room_id, str(user.id), _ms(base + 2 * second), True)  # then killed
        journal.record_presence(quiet_id, str(user.id), _ms(base + 3 * second), True)
        journal.close()  # returns once what it holds is written, presence alone included
    assert [(s["joined_at"], s["left_at"]) for s in await stays(db, room_id)] == [
        (base, base + second),
        (base + 2 * second, None),
    ]

    # A new server's journal ends what the dead one left open before any room runs: at the
    # room's last journaled event if that came after the join, else at the join.
    await db.execute(
        "INSERT INTO room_events (room_id, seq, name, payload, at) VALUES ($1, 1, 'chat.message', '{}', $2)",
        uuid.UUID(room_id),
        base + 10 * second,
    )
    restarted = JournalWriter(db.dsn)
    async with trio.open_nursery() as nursery:
        await nursery.start(restarted.run)
        assert (await stays(db, room_id))[1]["left_at"] == base + 10 * second
        assert [s["left_at"] for s in await stays(db, quiet_id)] == [base + 3 * second]
        restarted.close()
