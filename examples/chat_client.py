"""A tiny terminal chat client for the live protocol (PROTOCOL.md).

    python examples/chat_client.py ROOM_ID --token TOKEN [--live ws://127.0.0.1:8765] [--since SEQ]

Type a line to send it. Commands (`/help` lists them):

    /react <message_id> <emoji>   /delete <message_id>
    /start fan|artist|public      /stop        /dj   /undj
    /queue <track url> <seconds> <title>       /vote <item_id> up|down|none
    /skip <item_id>               /modskip
    /mute <user_id> <seconds>     /unmute <user_id>   /kick <user_id>
    /ban <user_id> [seconds]      /unban <user_id>
    /op <name> <json data>        (any op of PROTOCOL.md)
    /quit

Every event and reply is printed as it arrives. It reconnects with `since`
when the connection drops, so nothing is missed.
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
        elif message["name"] == "track.started":
            track, item_id = d["item"]["track"], d["item"]["item_id"]
            print(f"#{message['seq']} now playing {track['title']} by {track['artist']} (item {item_id})")
        elif message["name"] == "points.awarded":
            print(f"* +{d['points']} points ({d['reason']}): {d['total']} in all, level {d['level']}")
        elif message["name"] == "level.up":
            print(f"* LEVEL UP: level {d['level']}, +{d['credits_awarded']} credits")
        else:
            print(f"#{message.get('seq', '-')} {message['name']} {json.dumps(d)}")
        return message.get("seq")
    if kind == "reply" and not message.get("ok"):
        print(f"! {message['error']['code']}: {message['error']['message']}")
    elif kind == "reply" and message.get("data"):
        print(f"  ok {json.dumps(message['data'])}")
    return None


HELP = __doc__.split("Commands (`/help` lists them):")[1].split("Every event")[0] if __doc__ else ""


def _op(name: str, ref: int, **data: Any) -> dict[str, Any]:
    return {"op": name, "ref": ref, "data": data}


def command_for(line: str, ref: int) -> dict[str, Any] | None:
    """The message a typed line stands for (chat unless it starts with /)."""
    if not line.startswith("/"):
        return _op("chat.send", ref, text=line)
    name, *args = line.split()
    simple = {"/stop": "session.stop", "/dj": "dj.join", "/undj": "dj.leave", "/modskip": "mod.skip"}
    try:
        if name in simple and not args:
            return {"op": simple[name], "ref": ref}
        if name == "/react" and len(args) == 2:
            return _op("chat.react", ref, message_id=args[0], emoji=args[1])
        if name == "/delete" and len(args) == 1:
            return _op("chat.delete", ref, message_id=args[0])
        if name == "/start" and len(args) == 1:
            return _op("session.start", ref, mode=args[0])
        if name == "/queue" and len(args) >= 3:
            track = {
                "url": args[0],
                "duration_ms": int(float(args[1]) * 1000),
                "title": " ".join(args[2:]),
                "artist": "unknown",
            }
            return _op("queue.add", ref, track=track)
        if name == "/vote" and len(args) == 2:
            return _op("vote", ref, item_id=args[0], value=args[1])
        if name == "/skip" and len(args) == 1:
            return _op("vote.skip", ref, item_id=args[0])
        if name == "/mute" and len(args) == 2:
            return _op("mod.mute", ref, user_id=args[0], seconds=int(args[1]))
        if name in ("/unmute", "/kick", "/unban") and len(args) == 1:
            return _op(f"mod.{name[1:]}", ref, user_id=args[0])
        if name == "/ban" and len(args) in (1, 2):
            return _op(
                "mod.ban", ref, user_id=args[0], **({"seconds": int(args[1])} if len(args) == 2 else {})
            )
        if name == "/op" and args:
            return _op(args[0], ref, **(json.loads(" ".join(args[1:])) if len(args) > 1 else {}))
    except ValueError as exc:
        print(f"! {exc}")
        return None
    print("! commands:" + HELP)
    return None


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
