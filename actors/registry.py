"""The supervisor: room id -> running actor, started on demand, restarted from Postgres after a crash."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

import trio

from actors.ports import Journal, Notify, Seed
from actors.room_actor import CLOSE_INTERNAL, ActorConfig, RoomActor, _Shutdown, state_from_seed
from protocol.errors import ServiceUnavailable

log = logging.getLogger("seda.rooms")

SeedLoader = Callable[[str], Awaitable[Seed | None]]
RESTART_BACKOFF_S = 1.0


class RoomRegistry:
    def __init__(
        self,
        nursery: trio.Nursery,
        journal: Journal,
        load_seed: SeedLoader,
        config: ActorConfig,
        *,
        on_change: Callable[[int], None] | None = None,
        notify: Notify | None = None,
    ) -> None:
        self._nursery = nursery
        self._journal = journal
        self._load_seed = load_seed
        self.config = config
        self._actors: dict[str, RoomActor] = {}
        self._starting: dict[str, trio.Event] = {}
        self._on_change = on_change
        self._notify = notify
        self.closing = False

    def running(self, room_id: str) -> RoomActor | None:
        actor = self._actors.get(room_id)
        return actor if actor is not None and actor.accepting else None

    def with_session(self, session_id: str) -> RoomActor | None:
        """The running room whose live session this is (rooms with sessions always run)."""
        for actor in self._actors.values():
            if (
                actor.accepting
                and actor.state.session is not None
                and actor.state.session.session_id == session_id
            ):
                return actor
        return None

    def with_item(self, item_id: str) -> RoomActor | None:
        for actor in self._actors.values():
            if actor.accepting and actor.find_item(item_id):
                return actor
        return None

    def busiest(self, limit: int) -> dict[str, int]:
        """Running rooms with listeners present now, the most first."""
        counts = {room_id: a.listeners for room_id, a in self._actors.items() if a.accepting and a.listeners}
        return dict(sorted(counts.items(), key=lambda kv: -kv[1])[:limit])

    def listeners(self, room_id: str) -> int:
        actor = self.running(room_id)
        return actor.listeners if actor is not None else 0

    async def get(self, room_id: str) -> RoomActor | None:
        """The room's running actor, started if needed; None if the room does not exist."""
        while True:
            if self.closing:
                return None
            actor = self._actors.get(room_id)
            if actor is not None:
                if actor.accepting:
                    return actor
                await actor.finished.wait()  # a stopping actor must finish writing first
                continue
            starting = self._starting.get(room_id)
            if starting is not None:
                await starting.wait()
                continue
            return await self._start(room_id)

    async def _start(self, room_id: str) -> RoomActor | None:
        started = self._starting[room_id] = trio.Event()
        try:
            try:
                seed = await self._load_seed(room_id)
                if seed is None:
                    return None
                state = state_from_seed(seed)
            except Exception:
                # A room that cannot be rebuilt fails alone; everything else goes on.
                log.exception("room %s could not be loaded", room_id)
                raise ServiceUnavailable("this room cannot be loaded right now") from None
            self._journal.reopen(room_id)
            tail = seed.events[-self.config.ring_size :]
            actor = RoomActor(room_id, state, self._journal, self.config, recent=tail, notify=self._notify)
            await self._nursery.start(self._supervise, actor)
            self._actors[room_id] = actor
            self._changed()
            log.info("room %s started at seq %d", room_id, actor.state.seq)
            return actor
        finally:
            del self._starting[room_id]
            started.set()

    async def _supervise(self, actor: RoomActor, *, task_status: trio.TaskStatus[None]) -> None:
        try:
            await actor.run(task_status=task_status)
        except Exception:
            # One room's failure stays in that room: its sockets close with 1011 and
            # resume with `since` against a fresh actor loaded from Postgres.
            log.exception("room %s crashed; it restarts from Postgres", actor.room_id)
            actor.close_all(CLOSE_INTERNAL, "room restarting")
            if actor.state.session is not None and not self.closing:
                # A live session keeps playing with nobody connected: restart it now.
                self._nursery.start_soon(self._restart_later, actor.room_id)
        finally:
            if self._actors.get(actor.room_id) is actor:
                del self._actors[actor.room_id]
            actor.accepting = False
            actor.finished.set()
            self._changed()

    async def _restart_later(self, room_id: str) -> None:
        await trio.sleep(RESTART_BACKOFF_S)  # a room that crashes at once again does not spin
        with contextlib.suppress(ServiceUnavailable):  # logged by _start; the next visitor retries
            await self.get(room_id)

    async def start_all(self, room_ids: list[str]) -> None:
        """Start rooms that must run with nobody connected (those with a live DJ session)."""
        for room_id in room_ids:
            with contextlib.suppress(ServiceUnavailable):  # one broken room does not stop the rest
                await self.get(room_id)

    async def shutdown(self) -> None:
        """Each actor finishes its queue, snapshots and closes its sockets with 1001."""
        self.closing = True
        actors = list(self._actors.values())
        for actor in actors:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await actor.send(_Shutdown())
        for actor in actors:
            await actor.finished.wait()

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(len(self._actors))
