"""The supervisor: room id -> running actor, started on demand, restarted from Postgres after a crash."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

import trio

from actors.blocks import BlockIndex
from actors.ports import Journal, Notify, Ownership, Relay, Seed
from actors.room_actor import (
    CLOSE_INTERNAL,
    CLOSE_RESTART,
    ActorConfig,
    RoomActor,
    _Shutdown,
    state_from_seed,
)
from protocol.errors import OwnedElsewhere, OwnershipLost, ServiceUnavailable

log = logging.getLogger("seda.rooms")

SeedLoader = Callable[[str], Awaitable[Seed | None]]
RESTART_BACKOFF_S = 1.0
RELEASE_TIMEOUT_S = 2.0


def _lost(error: BaseException) -> bool:
    """Whether the actor stopped because its lease moved (its commit was fenced off)."""
    if isinstance(error, BaseExceptionGroup):
        return error.subgroup(OwnershipLost) is not None
    return isinstance(error, OwnershipLost)


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
        ownership: Ownership | None = None,
        relay: Relay | None = None,
        on_actor: Callable[[RoomActor], None] | None = None,
        blocks: BlockIndex | None = None,
    ) -> None:
        self._nursery = nursery
        self._blocks = blocks
        self._journal = journal
        self._load_seed = load_seed
        self.config = config
        self._actors: dict[str, RoomActor] = {}
        self._starting: dict[str, trio.Event] = {}
        self._on_change = on_change
        self._notify = notify
        self._ownership = ownership
        self._relay = relay
        self._on_actor = on_actor  # told of each actor started (the owner side takes its requests)
        self._scopes: dict[str, trio.CancelScope] = {}
        self.closing = False

    def actors(self) -> list[RoomActor]:
        """The rooms running here and taking requests."""
        return [a for a in self._actors.values() if a.accepting]

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
            if actor.accepting and actor.state.holds_item(item_id):
                return actor
        return None

    def busiest(self, limit: int | None) -> dict[str, int]:
        """Running rooms with listeners present now, the most first (all of them without a limit)."""
        counts = {room_id: a.listeners for room_id, a in self._actors.items() if a.accepting and a.listeners}
        return dict(sorted(counts.items(), key=lambda kv: -kv[1])[:limit])

    async def get(self, room_id: str) -> RoomActor | None:
        """The room's running actor, started if needed; None if the room does not exist.

        Raises OwnedElsewhere if another node holds the room's lease."""
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
        epoch = 0
        try:
            if self._ownership is not None:
                # The lease first, then the state: what the last owner committed is all in.
                epoch = await self._claim(room_id)
            try:
                seed = await self._load_seed(room_id)
                if seed is None:
                    await self._release(room_id, epoch)
                    return None
                state = state_from_seed(seed)
            except Exception:
                # A room that cannot be rebuilt fails alone; everything else goes on.
                log.exception("room %s could not be loaded", room_id)
                await self._release(room_id, epoch)
                raise ServiceUnavailable("this room cannot be loaded right now") from None
            self._journal.reopen(room_id, epoch if self._ownership is not None else None)
            tail = seed.events[-self.config.ring_size :]
            actor = RoomActor(
                room_id,
                state,
                self._journal,
                self.config,
                recent=tail,
                notify=self._notify,
                epoch=epoch,
                ownership=self._ownership,
                relay=self._relay,
                blocks=self._blocks,
            )
            await self._nursery.start(self._supervise, actor)
            self._actors[room_id] = actor
            if self._on_actor is not None:
                self._on_actor(actor)
            self._changed()
            log.info("room %s started at seq %d (epoch %d)", room_id, actor.state.seq, epoch)
            return actor
        finally:
            del self._starting[room_id]
            started.set()

    async def _claim(self, room_id: str) -> int:
        assert self._ownership is not None
        try:
            claimed = await self._ownership.claim(room_id)
        except Exception:
            log.exception("claiming room %s failed", room_id)
            raise ServiceUnavailable("this room cannot be loaded right now") from None
        if claimed is None:
            raise OwnedElsewhere(room_id)
        return claimed

    async def _supervise(self, actor: RoomActor, *, task_status: trio.TaskStatus[None]) -> None:
        scope = self._scopes[actor.room_id] = trio.CancelScope()
        try:
            with scope:
                await actor.run(task_status=task_status)
        except Exception as error:
            if _lost(error):
                actor.lose()
            else:
                # One room's failure stays in that room: its sockets close with 1011 and
                # resume with `since` against a fresh actor loaded from Postgres.
                log.exception("room %s crashed; it restarts from Postgres", actor.room_id)
                actor.close_all(CLOSE_INTERNAL, "room restarting")
                if actor.state.session is not None and not self.closing:
                    # A live session keeps playing with nobody connected: restart it now.
                    self._nursery.start_soon(self._restart_later, actor.room_id)
        finally:
            if self._scopes.get(actor.room_id) is scope:
                del self._scopes[actor.room_id]
            if self._actors.get(actor.room_id) is actor:
                del self._actors[actor.room_id]
            actor.accepting = False
            if actor.lost:
                # Another node owns the room now: its sockets here resume there.
                log.warning(
                    "room %s: lease lost (epoch %d); it moved to another node", actor.room_id, actor.epoch
                )
                actor.close_all(CLOSE_RESTART, "room moved to another node")
                self._journal.disown(actor.room_id, actor.epoch)
            elif self._ownership is not None:
                self._journal.disown(actor.room_id, actor.epoch)
                await self._release(actor.room_id, actor.epoch)
            actor.finished.set()
            self._changed()

    async def _release(self, room_id: str, epoch: int) -> None:
        if self._ownership is None or epoch == 0:
            return
        with trio.CancelScope(shield=True), trio.move_on_after(RELEASE_TIMEOUT_S):
            try:
                await self._ownership.release(room_id, epoch)
            except Exception:  # it expires by itself within the TTL
                log.warning("releasing the lease of room %s failed", room_id, exc_info=True)

    def lose(self, room_ids: set[str]) -> None:
        """These rooms' leases moved (found at renewal): their actors stop at once."""
        for room_id in room_ids:
            actor = self._actors.get(room_id)
            scope = self._scopes.get(room_id)
            if actor is not None and scope is not None:
                actor.lose()
                scope.cancel()

    async def _restart_later(self, room_id: str) -> None:
        await trio.sleep(RESTART_BACKOFF_S)  # a room that crashes at once again does not spin
        with contextlib.suppress(ServiceUnavailable, OwnedElsewhere):  # logged by _start; retried later
            await self.get(room_id)

    async def start_all(self, room_ids: list[str]) -> None:
        """Start rooms that must run with nobody connected (those with a live DJ session)."""
        for room_id in room_ids:
            # one broken room does not stop the rest; another node may run it already
            with contextlib.suppress(ServiceUnavailable, OwnedElsewhere):
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
