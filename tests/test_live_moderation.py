"""Live moderation over real sockets: rank rules, mutes, kicks and bans with 4010, the log."""

from __future__ import annotations

import pytest
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from storage.database import Database
from tests.conftest import BOTH
from tests.live_client import Live, is_event


@pytest.mark.parametrize("server_mode", BOTH, indirect=True)
async def test_mute_kick_ban_and_the_log(live: Live, db: Database) -> None:
    owner, owner_id = await live.user("boss")
    mod_token, mod_id = await live.user("modd")
    user_token, user_id = await live.user("noisy")
    room = await live.room(owner)
    await db.execute(
        "INSERT INTO room_memberships (room_id, user_id, role) VALUES ($1, $2, 'moderator')",
        room["id"],
        mod_id,
    )
    async with (
        live.connect(room["id"], owner) as boss,
        live.connect(room["id"], mod_token) as mod,
        live.connect(room["id"], user_token) as noisy,
    ):
        # ranks: a member cannot moderate; a moderator cannot act on the owner or another moderator
        reply, _ = await noisy.request("mod.mute", {"user_id": mod_id, "seconds": 60})
        assert reply["error"]["code"] == "forbidden"
        reply, _ = await mod.request("mod.kick", {"user_id": owner_id})
        assert reply["error"]["code"] == "forbidden"
        reply, _ = await mod.request("mod.mute", {"user_id": user_id, "seconds": 0})
        assert reply["error"]["code"] == "bad_request" and reply["error"]["details"]["field"] == "seconds"

        reply, events = await mod.request("mod.mute", {"user_id": user_id, "seconds": 60})
        muted = next(e for e in events if e.get("name") == "user.muted")
        assert reply["ok"] and muted["data"]["user_id"] == user_id and "seq" in muted
        reply, _ = await noisy.request("chat.send", {"text": "let me talk"})
        assert reply["error"]["code"] == "muted"
        assert (await mod.request("mod.unmute", {"user_id": user_id}))[0]["ok"]
        assert (await noisy.request("chat.send", {"text": "thanks"}))[0]["ok"]

        reply, _ = await boss.request("mod.kick", {"user_id": user_id, "reason": "cool off"})
        assert reply["ok"]
        with pytest.raises(ConnectionClosed) as info:
            await noisy.until(lambda m: False)
        assert info.value.reason is not None and info.value.reason.code == 4010
        kicked, _ = await mod.until(is_event("user.kicked"))
        assert kicked["data"] == {"user_id": user_id, "reason": "cool off"}

    async with live.connect(room["id"], user_token) as noisy, live.connect(room["id"], owner) as boss:
        assert (await boss.request("mod.ban", {"user_id": user_id, "reason": "spam"}))[0]["ok"]
        with pytest.raises(ConnectionClosed) as info:
            await noisy.until(lambda m: False)
        assert info.value.reason is not None and info.value.reason.code == 4010
        with pytest.raises(ConnectionRejected) as rejected:
            async with open_websocket_url(live.url(room["id"], user_token)):
                pass
        assert rejected.value.status_code == 403
        assert (await boss.request("mod.unban", {"user_id": user_id}))[0]["ok"]
    async with live.connect(room["id"], user_token) as noisy:
        assert noisy.welcome["data"]["you"]["role"] == "member"

    log = await db.fetch(
        "SELECT action, actor_id::text AS actor, target_user_id::text AS target"
        " FROM moderation_log ORDER BY id"
    )
    assert [(r["action"], r["actor"], r["target"]) for r in log] == [
        ("mute", mod_id, user_id),
        ("unmute", mod_id, user_id),
        ("kick", owner_id, user_id),
        ("ban", owner_id, user_id),
        ("unban", owner_id, user_id),
    ]
