"""A tiny terminal chat client for the live protocol (PROTOCOL.md).

    python examples/chat_client.py ROOM_ID --token TOKEN [--live ws://127.0.0.1:8765] [--since SEQ]

Type a line to send it; `/react <message_id> fire`, `/delete <message_id>` and
`/quit` do what they say. Every event and reply is printed as it arrives. It
reconnects with `since` when the connection drops, so nothing is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import trio
from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url


def show(message: dict[str, Any]) -> int | None:
    """Print a server message; return its seq if it has one."""
    kind = message.get("type")
    if kind == "welcome":
        d = message["data"]
        names = ", ".join(p["username"] for p in d["presence"]) or "nobody"
        print(f"* joined {d['room']['name']} at seq {d['seq']} as {d['you']['role']}; here: {names}")
        for m in d["recent_messages"]:
            print(f"  [{m['username']}] {m['text']}  ({m['id']})")
        return int(d["seq"])
    if kind == "event":
        d = message["data"]
        if message["name"] == "chat.message":
            print(f"#{message['seq']} [{d['username']}] {d['text']}  ({d['id']})")
        else:
            print(f"#{message.get('seq', '-')} {message['name']} {json.dumps(d)}")
        return message.get("seq")
    if kind == "reply" and not message.get("ok"):
        print(f"! {message['error']['code']}: {message['error']['message']}")
    return None


def command_for(line: str, ref: int) -> dict[str, Any] | None:
    words = line.split()
    if line.startswith("/react") and len(words) == 3:
        return {"op": "chat.react", "ref": ref, "data": {"message_id": words[1], "emoji": words[2]}}
    if line.startswith("/delete") and len(words) == 2:
        return {"op": "chat.delete", "ref": ref, "data": {"message_id": words[1]}}
    if line.startswith("/"):
        print("! commands: /react <message_id> <emoji>, /delete <message_id>, /quit")
        return None
    return {"op": "chat.send", "ref": ref, "data": {"text": line}}


async def main(room_id: str, token: str | None, live: str, since: int | None) -> None:
    lines_send, lines_recv = trio.open_memory_channel[str](16)

    async def read_stdin() -> None:
        async with lines_send:
            while True:
                line = await trio.to_thread.run_sync(sys.stdin.readline)
                if not line or line.strip() == "/quit":
                    return
                if line.strip():
                    await lines_send.send(line.strip())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_stdin)
        ref = 0
        while True:
            query = "&".join(
                q
                for q in (f"token={token}" if token else "", f"since={since}" if since is not None else "")
                if q
            )
            url = f"{live}/ws/rooms/{room_id}" + (f"?{query}" if query else "")
            try:
                async with open_websocket_url(url, subprotocols=["seda.v1.json"]) as ws:
                    dropped = False

                    async def receive(ws: Any = ws) -> None:
                        nonlocal since, dropped
                        try:
                            while True:
                                seq = show(json.loads(await ws.get_message()))
                                if seq is not None:
                                    since = seq
                        except ConnectionClosed as exc:
                            print(f"* closed: {exc.reason}")
                            dropped = True
                            inner.cancel_scope.cancel()

                    async with trio.open_nursery() as inner:
                        inner.start_soon(receive)
                        async for line in lines_recv:
                            ref += 1
                            command = command_for(line, ref)
                            if command is not None:
                                await ws.send_message(json.dumps(command))
                        inner.cancel_scope.cancel()
            except (HandshakeError, OSError) as exc:
                print(f"* cannot connect ({exc})")
                dropped = True
            if not dropped:
                nursery.cancel_scope.cancel()
                return
            print(f"* reconnecting from seq {since}")
            await trio.sleep(1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="seda.fm terminal chat client")
    parser.add_argument("room_id")
    parser.add_argument("--token", help="access token from /api/v1/auth/login (omit to listen as a guest)")
    parser.add_argument("--live", default="ws://127.0.0.1:8765")
    parser.add_argument("--since", type=int, default=None)
    args = parser.parse_args()
    trio.run(main, args.room_id, args.token, args.live.rstrip("/"), args.since)
