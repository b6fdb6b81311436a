from __future__ import annotations

from tests.live_client import Live, is_event


async def test_two_members_chat(live: Live) -> None:
    token_a, _ = await live.user()
    token_b, _ = await live.user()
    room = await live.room(token_a)
    async with live.connect(room["id"], token_a) as a, live.connect(room["id"], token_b, encoding="msgpack") as b:
        assert a.welcome["data"]["you"]["role"] == "owner"
        reply = await a.chat("hello")
        assert reply["data"]["seq"] == 1
        event, _ = await b.until(is_event("chat.message"))
        assert event["seq"] == 1 and event["data"]["text"] == "hello"
