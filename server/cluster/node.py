"""This node's leases: claimed for the registry, renewed every TTL/3 in one statement, handed
back on a clean stop; rooms found taken over are dropped at once."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable
from pathlib import Path

import trio

from actors.registry import RoomRegistry
from protocol.errors import OwnedElsewhere, ProtocolError
from server.auth import load_or_create_secret
from storage.leases import Leases, RoomSeen

log = logging.getLogger("seda.cluster")


def stored_node_id(data_dir: Path) -> str:
    """This data dir's node id (made once). One process holds the data dir at a time (its lock),
    so a restarted server is the same node: it takes its rooms back without waiting out the
    leases its killed predecessor held, and its new epochs fence anything that one left."""
    return load_or_create_secret(None, data_dir, name="node_id", make=lambda: str(uuid.uuid4()))


def _seen(registry: RoomRegistry) -> list[RoomSeen]:
    rooms = []
    for actor in registry.actors():
        state = actor.state
        session = state.session
        summary = None
        if session is not None:
            playing = session.now_playing
            summary = {
                "mode": session.mode,
                "now_playing": playing.wire() if playing is not None else None,
            }
        rooms.append(
            RoomSeen(
                actor.room_id, actor.epoch, state.seq, len(state.connections), state.listeners(), summary
            )
        )
    return rooms


class ClusterNode:
    """The registry's ``Ownership`` (``actors/ports.py``), backed by ``storage/leases.py``."""

    def __init__(self, leases: Leases, sockets: Callable[[], int]) -> None:
        self.leases = leases
        self.node_id = leases.node_id
        self._sockets = sockets
        self._valid_until = -float("inf")  # trio time until which our leases are known to hold
        self._renewed = trio.Event()
        self.registry: RoomRegistry | None = None

    # ---- Ownership -------------------------------------------------------------------

    async def claim(self, room_id: str) -> int | None:
        return await self.leases.claim(room_id)

    async def release(self, room_id: str, epoch: int) -> None:
        await self.leases.release(room_id, epoch)

    def fresh(self) -> bool:
        return trio.current_time() < self._valid_until

    async def renewed(self) -> None:
        await self._renewed.wait()

    # ---- the node's life ---------------------------------------------------------------

    async def start(self) -> None:
        await self.leases.register()
        self._valid_until = trio.current_time() + self.leases.ttl_s

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Renew every TTL/3; after each renewal, claim rooms whose live session nobody plays."""
        task_status.started()
        period = self.leases.ttl_s / 3
        while True:
            started = trio.current_time()
            try:
                await self.renew_once(started)
                await self._adopt_orphans()
            except Exception:  # Postgres away: leases run out by themselves; keep trying
                log.warning("lease renewal failed", exc_info=True)
            await trio.sleep_until(started + period)

    async def renew_once(self, started: float | None = None) -> None:
        registry = self.registry
        assert registry is not None
        started = trio.current_time() if started is None else started
        seen = _seen(registry)
        held = await self.leases.renew(seen, self._sockets())
        lost = {r.room_id for r in seen} - held
        if lost:
            log.warning("leases lost to another node: %s", ", ".join(sorted(lost)))
            registry.lose(lost)
        self._valid_until = started + self.leases.ttl_s
        self._renewed.set()
        self._renewed = trio.Event()

    async def _adopt_orphans(self) -> None:
        """A live DJ session keeps playing with nobody connected: if its owner died, take it."""
        registry = self.registry
        if registry is None or registry.closing:
            return
        for room_id in await self.leases.orphaned_sessions():
            with contextlib.suppress(OwnedElsewhere, ProtocolError):  # another node was quicker
                if registry.running(room_id) is None:
                    await registry.get(room_id)

    async def stop(self) -> None:
        """Hand every lease back at once (the rooms have written their snapshots)."""
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            try:
                await self.leases.stop()
            except Exception:
                log.warning("handing the leases back failed; they expire by themselves", exc_info=True)
