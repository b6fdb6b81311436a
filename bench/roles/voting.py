"""The votes scenario's roles: a conductor that runs a fan session, and voters that vote on each track.

Per queue item the voters record (names with the item id, merged by the parent):
``sent <item>``/``acked <item>`` counters, the mark ``last_vote_at <item>`` (when
the last vote left, across every voter), the mark ``final_up <item>`` (the up
count ``track.ended`` reported) and, in the series ``at tally <item> <up>``, the
wall-clock time each voter first saw a ``vote.tally`` with ``up`` votes, for each
new highest count it saw. Which count is the final one is only known at the end
(every vote acked, or ``track.ended``'s count), so the parent picks it then.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from typing import Any

from bench.control import ControlSocket, OpFailed
from bench.roles.base import Role, Window, WorkerContext, sleep_until
from bench.roles.listeners import ClientState, Listeners, ListenerSocket
from bench.stats import ABSOLUTE
from bench.wsclient import ConnectFailed, connect

END_GRACE_S = 5.0


class VoterSocket(ListenerSocket):
    group: Voters

    def __init__(self, group: Voters, state: ClientState) -> None:
        super().__init__(group, state)
        self.group = group
        self._refs = itertools.count(1)
        self._sent: dict[int, tuple[int, str]] = {}
        self._highest_up: dict[str, int] = {}

    def on_event(self, message: dict[str, Any]) -> None:
        name = message.get("name")
        data = message.get("data") or {}
        if name == "track.started":
            item_id = str(data["item"]["item_id"])
            delay = random.uniform(0, self.group.spread_s)
            asyncio.get_running_loop().call_later(delay, self.vote, item_id)
        elif name == "vote.tally":
            item_id = str(data.get("item_id"))
            up = int(data.get("up", 0))
            if up > self._highest_up.get(item_id, 0):
                self._highest_up[item_id] = up
                self.group.tally.series(f"{ABSOLUTE} tally {item_id} {up}").append(time.time_ns())
        elif name == "track.ended":
            votes = data.get("votes") or {}
            self.group.tally.mark(f"final_up {data.get('item_id')}", int(votes.get("up", 0)))

    def vote(self, item_id: str) -> None:
        ref = next(self._refs)
        now = time.time_ns()
        if not self.send_json({"op": "vote", "ref": ref, "data": {"item_id": item_id, "value": "up"}}):
            self.group.tally.errors["vote on a closed socket"] += 1
            return
        self._sent[ref] = (now, item_id)
        self.group.tally.counters["votes_sent"] += 1
        self.group.tally.counters[f"sent {item_id}"] += 1
        self.group.tally.mark(f"last_vote_at {item_id}", now)

    def on_reply(self, message: dict[str, Any]) -> None:
        sent = self._sent.pop(message.get("ref") or 0, None)
        if sent is None:
            super().on_reply(message)
            return
        sent_ns, item_id = sent
        tally = self.group.tally
        tally.series("reply vote").append(time.time_ns() - sent_ns)
        if message.get("ok"):
            tally.counters["votes_acked"] += 1
            tally.counters[f"acked {item_id}"] += 1
        else:
            tally.errors[(message.get("error") or {}).get("code", "unknown")] += 1


class Voters(Listeners):
    """Authenticated listeners (spec ``tokens``) that vote up on every track within ``spread_s``
    of its start."""

    socket_class = VoterSocket

    def __init__(self, spec: dict[str, Any], ctx: WorkerContext) -> None:
        super().__init__(spec, ctx)
        self.spread_s = float(spec.get("spread_s", 1.0))


class ConductorSocket(ControlSocket):
    def __init__(self) -> None:
        super().__init__()
        self.ended = 0
        self.started = 0
        self.changed = asyncio.Event()

    def on_event(self, message: dict[str, Any]) -> None:
        if message.get("type") != "event":
            return
        if message.get("name") == "track.ended":
            self.ended += 1
            self.changed.set()
        elif message.get("name") == "track.started":
            self.started += 1


class Conductor(Role):
    """The room's owner starts a fan session; one DJ joins and queues ``tracks`` tracks of
    ``track_ms`` each; the role ends once they have all played (or the window ends)."""

    def __init__(self, spec: dict[str, Any], ctx: WorkerContext) -> None:
        super().__init__(spec, ctx)
        self.owner = ConductorSocket()
        self.dj = ConductorSocket()

    async def prepare(self) -> None:
        room = self.spec["room"]
        timeout = self.ctx.connect_timeout
        try:
            await connect(self.owner, self.ctx.live, room, token=self.spec["owner_token"], timeout=timeout)
            await connect(self.dj, self.ctx.live, room, token=self.spec["dj_token"], timeout=timeout)
        except ConnectFailed as failed:
            self.tally.errors[failed.code] += 1
            raise

    async def run(self, window: Window) -> dict[str, int]:
        await sleep_until(window.start_ns)
        tracks = int(self.spec["tracks"])
        try:
            await self.owner.request("session.start", {"mode": "fan"})
            await self.dj.request("dj.join")
            for index in range(tracks):
                track = {
                    "provider": "spotify",
                    "provider_id": f"{self.spec['tag']}{index}",
                    "title": f"bench track {index}",
                    "artist": "seda bench",
                    "duration_ms": int(self.spec["track_ms"]),
                }
                await self.dj.request("queue.add", {"track": track})
        except OpFailed as failed:
            self.tally.errors[failed.code] += 1
            return {}
        deadline_ns = window.end_ns + int(END_GRACE_S * 1e9)
        while self.dj.ended < tracks and time.time_ns() < deadline_ns and not self.dj.closed.done():
            self.dj.changed = asyncio.Event()
            try:
                async with asyncio.timeout(max((deadline_ns - time.time_ns()) / 1e9, 0)):
                    await self.dj.changed.wait()
            except TimeoutError:
                break
        self.tally.counters["tracks_started"] = self.dj.started
        self.tally.counters["tracks_ended"] = self.dj.ended
        try:
            await self.owner.request("session.stop")
        except OpFailed as failed:
            self.tally.errors[failed.code] += 1
        return {}

    async def close(self) -> None:
        await asyncio.gather(self.owner.close(), self.dj.close(), return_exceptions=True)

    def open_sockets(self) -> int:
        return sum(1 for socket in (self.owner, self.dj) if not socket.closed.done())
