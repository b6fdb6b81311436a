"""Reports over real HTTP and sockets: filing and each refusal, the admin queue, resolving with actions."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from server.context import AppContext
from storage.database import Database
from tests.live_client import Live, is_event


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def admin_auth(ctx: AppContext) -> tuple[dict[str, str], str]:
    admin = await ctx.users.create(
        email="boss@example.com", username="site_admin", password_hash="x", role="admin"
    )
    return bearer(ctx.tokens.issue(admin.id, "admin")), str(admin.id)


async def report(http: httpx.AsyncClient, token: str, **body: Any) -> httpx.Response:
    return await http.post("/api/v1/reports", json={"reason": "spam", **body}, headers=bearer(token))


async def test_filing_and_every_refusal(http: httpx.AsyncClient, live: Live, db: Database) -> None:
    ana, ana_id = await live.user("ana")
    bo, bo_id = await live.user("bob")
    room = await live.room(bo)
    secret = await live.room(bo, visibility="private")
    async with live.connect(room["id"], bo) as sock:
        said = await sock.chat("buy my mixtape")
        gone = await sock.chat("deleted soon")
        assert (await sock.request("chat.delete", {"message_id": gone["data"]["message_id"]}))[0]["ok"]
    async with live.connect(secret["id"], bo) as sock:
        hidden = await sock.chat("members only")

    r = await report(
        http, ana, target_type="message", target_id=said["data"]["message_id"], description=" loud "
    )
    assert r.status_code == 201, r.text
    filed = r.json()
    assert (filed["status"], filed["reporter_id"], filed["target_type"]) == ("pending", ana_id, "message")
    assert filed["description"] == "loud" and filed["resolved_at"] is None

    # the same reporter and target while pending
    again = await report(
        http, ana, target_type="message", target_id=said["data"]["message_id"], reason="hate"
    )
    assert again.status_code == 409 and again.json()["error"]["details"]["field"] == "target_id"
    # yourself, your message, your room
    for kind, target in (("user", bo_id), ("message", said["data"]["message_id"]), ("room", room["id"])):
        r = await report(http, bo, target_type=kind, target_id=target)
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "target_id", (kind, r.text)
    # what the reporter cannot see, or what is not there
    for kind, target in (
        ("room", secret["id"]),
        ("message", hidden["data"]["message_id"]),
        ("message", gone["data"]["message_id"]),
        ("user", str(uuid.uuid4())),
        ("room", str(uuid.uuid4())),
    ):
        r = await report(http, ana, target_type=kind, target_id=target)
        assert r.status_code == 404 and r.json()["error"]["details"]["field"] == "target_id", (kind, r.text)
    # bad bodies name their field
    for body, field in (
        ({"target_type": "song", "target_id": bo_id}, "target_type"),
        ({"target_type": "user", "target_id": "nope"}, "target_id"),
        ({"target_type": "user", "target_id": bo_id, "reason": "meh"}, "reason"),
        ({"target_type": "user", "target_id": bo_id, "description": "x" * 2001}, "description"),
    ):
        r = await report(http, ana, **body)
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == field, (body, r.text)
    assert (
        await http.post("/api/v1/reports", json={"target_type": "user", "target_id": bo_id, "reason": "spam"})
    ).status_code == 401
    assert await db.fetchval("SELECT count(*) FROM reports") == 1  # no refusal wrote anything


async def test_twenty_an_hour(http: httpx.AsyncClient, live: Live, db: Database) -> None:
    token, reporter = await live.user("watchful")
    targets = [
        await db.fetchval(
            "INSERT INTO users (email, username, password_hash) VALUES ($1, $2, 'x') RETURNING id::text",
            f"t{i}@example.com",
            f"target_{i}",
        )
        for i in range(21)
    ]
    for target in targets[:20]:
        assert (await report(http, token, target_type="user", target_id=target)).status_code == 201
    r = await report(http, token, target_type="user", target_id=targets[20])
    assert r.status_code == 429, r.text
    error = r.json()["error"]
    assert error["code"] == "rate_limited" and 0 < error["retry_after_ms"] <= 3_600_000
    assert int(r.headers["Retry-After"]) == -(-error["retry_after_ms"] // 1000)
    assert await db.fetchval("SELECT count(*) FROM reports WHERE reporter_id = $1", uuid.UUID(reporter)) == 20
    # an hour later the window has moved on
    await db.execute("UPDATE reports SET created_at = created_at - interval '61 minutes'")
    assert (await report(http, token, target_type="user", target_id=targets[20])).status_code == 201


async def test_queue_detail_and_resolve_with_actions(
    http: httpx.AsyncClient, live: Live, ctx: AppContext, db: Database
) -> None:
    admin, admin_id = await admin_auth(ctx)
    ana, ana_id = await live.user("ana")
    cy, _ = await live.user("cyd")
    troll, troll_id = await live.user("troll")
    room = await live.room(ana)
    elsewhere = await live.room(cy)
    async with live.connect(room["id"], troll) as sock:
        bad = await sock.chat("something awful")
    first = (await report(http, ana, target_type="message", target_id=bad["data"]["message_id"])).json()
    second = (await report(http, cy, target_type="user", target_id=troll_id, reason="harassment")).json()
    third = (await report(http, cy, target_type="room", target_id=room["id"], reason="other")).json()

    assert (await http.get("/api/v1/admin/reports", headers=bearer(ana))).status_code == 403
    queue = (await http.get("/api/v1/admin/reports", headers=admin)).json()
    assert [r["id"] for r in queue["items"]] == [first["id"], second["id"], third["id"]]  # oldest first
    page = (await http.get("/api/v1/admin/reports", params={"limit": 2}, headers=admin)).json()
    rest = await http.get("/api/v1/admin/reports", params={"cursor": page["next_cursor"]}, headers=admin)
    assert [r["id"] for r in page["items"] + rest.json()["items"]] == [first["id"], second["id"], third["id"]]
    users_only = await http.get("/api/v1/admin/reports", params={"target_type": "user"}, headers=admin)
    assert [r["id"] for r in users_only.json()["items"]] == [second["id"]]
    r = await http.get("/api/v1/admin/reports", params={"status": "open"}, headers=admin)
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "status"

    detail = (await http.get(f"/api/v1/admin/reports/{first['id']}", headers=admin)).json()
    target = detail["target"]
    assert target["message"]["text"] == "something awful" and target["user"]["id"] == troll_id
    assert target["room"] == {"id": room["id"], "slug": room["slug"], "name": room["name"]}
    assert target["moderation"] == {
        "user_id": troll_id,
        "is_banned": False,
        "banned_until": None,
        "muted_until": None,
        "warn_count": 0,
    }
    room_detail = (await http.get(f"/api/v1/admin/reports/{third['id']}", headers=admin)).json()
    assert room_detail["target"]["user"]["id"] == ana_id and room_detail["target"]["message"] is None
    assert (await http.get(f"/api/v1/admin/reports/{uuid.uuid4()}", headers=admin)).status_code == 404

    # refusals before anything changes
    url = f"/api/v1/admin/reports/{second['id']}/resolve"
    for body, field in (
        ({"status": "dismissed", "action": {"type": "warn"}}, "action"),
        ({"status": "actioned", "action": {"type": "delete_message"}}, "action.type"),
        ({"status": "actioned", "action": {"type": "mute"}}, "action.seconds"),
        ({"status": "done"}, "status"),
    ):
        r = await http.post(url, json=body, headers=admin)
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == field, (body, r.text)

    # a message report, actioned by deleting it and muting its author everywhere
    async with (
        live.connect(room["id"], ana) as owner_sock,
        live.connect(elsewhere["id"], troll) as troll_sock,
        live.connect(room["id"], ana) as reporter_sock,
    ):
        r = await http.post(
            f"/api/v1/admin/reports/{first['id']}/resolve",
            json={"status": "actioned", "action": {"type": "delete_message"}},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "actioned" and r.json()["resolved_by"] == admin_id
        deleted, _ = await owner_sock.until(is_event("chat.deleted"))
        assert deleted["data"]["id"] == bad["data"]["message_id"]
        note, _ = await reporter_sock.until(is_event("notification"))
        assert note["data"]["type"] == "report_resolved"
        assert note["data"]["data"] == {"report_id": first["id"], "status": "actioned"}

        r = await http.post(
            url,
            json={"status": "actioned", "action": {"type": "mute", "seconds": 600, "reason": "abuse"}},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        reply, _ = await troll_sock.request("chat.send", {"text": "can I still talk?"})
        assert reply["error"]["code"] == "muted", reply  # in a room the report was not about

    again = await http.post(url, json={"status": "dismissed"}, headers=admin)
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    dismissed = await http.post(
        f"/api/v1/admin/reports/{third['id']}/resolve", json={"status": "dismissed"}, headers=admin
    )
    assert dismissed.status_code == 200 and dismissed.json()["action"] is None
    assert (await http.get("/api/v1/admin/reports", headers=admin)).json()["items"] == []
    done = (await http.get("/api/v1/admin/reports", params={"status": "actioned"}, headers=admin)).json()
    assert {r["id"] for r in done["items"]} == {first["id"], second["id"]}

    status = (await http.get(f"/api/v1/admin/users/{troll_id}/moderation", headers=admin)).json()
    assert status["muted_until"] is not None and not status["is_banned"]
    notes = (await http.get("/api/v1/notifications", headers=bearer(cy))).json()["items"]
    assert sorted(n["data"]["status"] for n in notes if n["type"] == "report_resolved") == [
        "actioned",
        "dismissed",
    ]
    # every act is a log row; the room's owner sees those in their room, not the site-wide ones
    log = await db.fetch("SELECT action, room_id::text AS room, details FROM moderation_log ORDER BY id")
    assert [r["action"] for r in log] == [
        "delete_message",
        "resolve_report",
        "mute",
        "resolve_report",
        "resolve_report",
    ]
    room_log = (await http.get(f"/api/v1/rooms/{room['id']}/moderation/log", headers=bearer(ana))).json()
    assert {e["action"] for e in room_log["items"]} == {"delete_message", "resolve_report"}
    assert (
        await http.get(f"/api/v1/rooms/{room['id']}/moderation/log", headers=bearer(cy))
    ).status_code == 403


async def test_a_report_of_what_is_gone_can_be_dismissed_not_actioned(
    http: httpx.AsyncClient, live: Live, ctx: AppContext, db: Database
) -> None:
    admin, _ = await admin_auth(ctx)
    token, _ = await live.user("reporter")
    gone = await db.fetchval(
        "INSERT INTO users (email, username, password_hash)"
        " VALUES ('g@example.com', 'gone_soon', 'x') RETURNING id"
    )
    filed = (await report(http, token, target_type="user", target_id=str(gone))).json()
    await db.execute("DELETE FROM users WHERE id = $1", gone)
    url = f"/api/v1/admin/reports/{filed['id']}/resolve"
    r = await http.post(url, json={"status": "actioned", "action": {"type": "warn"}}, headers=admin)
    assert r.status_code == 404 and r.json()["error"]["details"]["field"] == "target_id"
    r = await http.post(url, json={"status": "dismissed"}, headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "dismissed", r.text
    detail = (await http.get(f"/api/v1/admin/reports/{filed['id']}", headers=admin)).json()
    assert detail["target"]["user"] is None and detail["target"]["moderation"] is None


async def test_a_report_cannot_sanction_its_own_resolver(
    http: httpx.AsyncClient, live: Live, ctx: AppContext, db: Database
) -> None:
    admin, admin_id = await admin_auth(ctx)
    token, _ = await live.user("reporter")
    filed = (await report(http, token, target_type="user", target_id=admin_id)).json()
    url = f"/api/v1/admin/reports/{filed['id']}/resolve"
    r = await http.post(url, json={"status": "actioned", "action": {"type": "ban"}}, headers=admin)
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "user_id", r.text
    assert await db.fetchval("SELECT count(*) FROM user_sanctions") == 0
    assert (await http.get(f"/api/v1/admin/reports/{filed['id']}", headers=admin)).json()[
        "status"
    ] == "pending"
