"""The room actor: one trio task per live room around the pure core.

It takes requests from a bounded inbox, runs ``decide``, applies the events at
once (the next request already sees them) and hands the durable ones to the
journal. A second task, the publisher, takes each request's outcome in order,
waits until its events have committed, then broadcasts them and replies: so
nothing is seen before it is durable, replies follow the events they caused,
and the actor keeps deciding while a batch commits.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from actors.blocks import BlockIndex
from actors.commands import Command, Join, Leave, Op, Tick
from actors.fanout import Fanout
from actors.moderation_rules import CLOSE_KICKED
from actors.ports import Journal, Notify, Ownership, Relay, Seed, Subscriber, Ticket
from actors.ratelimit import RateLimiter
from actors.room_rules import decide, welcome_data
from actors.room_state import RoomInfo, RoomState
from actors.session_rules import next_deadline
from protocol.codec import Encoding
from protocol.errors import NotFound, ProtocolError, RateLimited, ServiceUnavailable
from protocol.events import INTERNAL_EVENTS, Event, private_event

log = logging.getLogger("seda.room")

MAX_REPLAY = 1000
TALLY_INTERVAL_S = 0.1
RELAY_BATCH = 256  # events relayed at most per message, so a publisher that never idles still relays
_MAX_SETTLE_STEPS = 64  # a bound, far above what one moment can make due

# Close codes (PROTOCOL.md).
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_INTERNAL = 1011
CLOSE_RESTART = 1012  # the room moved to another node, or this node is restarting
CLOSE_ROOM_DELETED = 4004

# What showing an event does besides sending it (here and on every edge of the room): close the
# named user's sockets, or every socket. tests/test_event_catalog.py checks the names.
CLOSES_USER: dict[str, int] = {"user.kicked": CLOSE_KICKED, "user.banned": CLOSE_KICKED}
CLOSES_ALL: dict[str, tuple[int, str]] = {"room.deleted": (CLOSE_ROOM_DELETED, "room deleted")}


def wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class ActorConfig:
    idle_s: float = 300.0
    snapshot_every: int = 200
    chat_rate: int = 5
    chat_rate_window_s: float = 5.0
    ops_per_second: int = 30
    ring_size: int = 1000
    inbox_size: int = 1024
    pending_limit: int = 8192  # outcomes decided but not yet shown
    coalesce_s: float = 0.005  # fan-out window: what is shown within it reaches a socket in one write


class Reply:
    """Where a REST caller waits for its op's reply, given once its events have committed.

    ``view`` picks what the caller will show of the room: it is taken right after the op's own
    events are applied (what later requests do is not in it) and handed over only with the reply,
    after the commit. The actor's live state runs ahead of the journal, so reading it after the
    reply could show what a crash would undo, or another request's effects.
    """

    def __init__(self, view: Callable[[RoomState], Any] | None = None) -> None:
        self._done = trio.Event()
        self._data: dict[str, Any] = {}
        self._error: ProtocolError | None = None
        self._view = view
        self._seen: Any = None
        self._view_failed: Exception | None = None
        self.seq = 0  # the room's seq right after the op's own events (what the reply follows)

    @property
    def given(self) -> bool:
        return self._done.is_set()

    @property
    def seen(self) -> Any:
        """What ``view`` took of the room at the op (None before the reply, or without a view)."""
        if not self.given or self._error is not None:
            return None
        if self._view_failed is not None:
            raise RuntimeError("the reply's view of the room failed") from self._view_failed
        return self._seen

    def _see(self, state: RoomState) -> None:
        self.seq = state.seq
        if self._view is None:
            return
        try:
            self._seen = copy.deepcopy(self._view(state))  # a copy: the state moves on
        except Exception as error:  # a bug in one caller's view must not stop the room
            log.exception("a reply's view of the room failed")
            self._view_failed = error

    def _give(self, data: dict[str, Any] | None, error: ProtocolError | None) -> None:
        self._data, self._error = data or {}, error
        self._done.set()

    async def wait(self) -> dict[str, Any]:
        await self._done.wait()
        if self._error is not None:
            raise self._error
        return self._data


class RemoteJoin:
    """A socket on another node (an edge) joining through the bus. The room does not write to
    it: its welcome and replay come back as the join's reply, and what the room shows later
    reaches it through the relay (``actors/ports.py`` ``Relay``)."""

    encoding = Encoding.JSON  # never framed here

    def __init__(self, conn_id: int) -> None:
        self.conn_id = conn_id
        self.first: list[dict[str, Any]] | None = None  # the welcome, then the replay
        self.seq = 0  # the room's seq the welcome shows
        self.closed: tuple[int, str] | None = None
        self.done = trio.Event()

    def send_frame(self, frame: bytes) -> None:
        raise AssertionError("a remote member is never written to by its room")

    def close(self, code: int, reason: str = "") -> None:
        if not self.done.is_set():
            self.closed = (code, reason)
            self.done.set()


@dataclass
class Request:
    """One command for the actor, with the socket (or REST caller's reply slot) it came from."""

    command: Command
    conn: Subscriber | None = None
    reply: Reply | None = None
    ref: int | None = None
    rate_key: str | None = None
    since: int | None = None  # Join: resume after this seq
    stored: list[Event] = field(default_factory=list)  # Join: events after ``since`` read from Postgres
    no: int = 0  # numbered by the actor as it is queued (how long the room is behind: waiting_s)


@dataclass
class _Outcome:
    """What to show once ``ticket`` has committed, in order."""

    ticket: Ticket | None = None
    events: list[Event] = field(default_factory=list)
    exclude: int | None = None
    subscribe: tuple[Subscriber, list[dict[str, Any]]] | None = None
    unsubscribe: int | None = None
    reply: tuple[Subscriber, dict[str, Any]] | None = None
    answer: tuple[Reply, dict[str, Any] | None, ProtocolError | None] | None = None
    closes: list[tuple[Subscriber, int, str]] = field(default_factory=list)
    close_everyone: int | None = None
    done: trio.Event | None = None
    request_no: int = 0  # the request it answers (0: none, the clock's)


class _Shutdown:
    """Sent by the registry: finish what is queued, snapshot, close sockets with 1001."""


def state_from_seed(seed: Seed) -> RoomState:
    """Recovery: the newest snapshot plus the journal after it, replayed through ``apply``."""
    room = RoomInfo.from_dict(seed.room)
    state = RoomState.restore(seed.snapshot, room) if seed.snapshot is not None else RoomState(room)
    for event in seed.events:
        state.apply(event)
    # The rooms row is the authority for the room's details (REST edits land there).
    state.room = room
    return state


def reply_message(ref: int | None, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": "reply", "ref": ref, "ok": True, "data": data}


def error_message(ref: int | None, error: ProtocolError) -> dict[str, Any]:
    return {"type": "reply", "ref": ref, "ok": False, "error": error.to_body()}


class RoomActor:
    def __init__(
        self,
        room_id: str,
        state: RoomState,
        journal: Journal,
        config: ActorConfig,
        *,
        recent: list[Event] | None = None,
        clock: Callable[[], int] | None = None,
        notify: Notify | None = None,
        epoch: int = 0,
        ownership: Ownership | None = None,
        relay: Relay | None = None,
        blocks: BlockIndex | None = None,
    ) -> None:
        self.room_id = room_id
        self.epoch = epoch  # the lease this actor holds the room under
        self._ownership = ownership
        self._relay = relay
        self._remote: set[int] = set()  # members on other nodes (edges), fed by the relay
        self._relaying: list[tuple[dict[str, Any], int | None, int | None]] = []
        self.lost = False  # the lease moved: stop at once, write and show nothing more
        self.state = state
        self.config = config
        self._journal = journal
        self._send, self._inbox = trio.open_memory_channel[Request | _Shutdown](config.inbox_size)
        # Bounded: if commits stall, the actor stops taking requests instead of growing without end.
        self._out_send, self._out_recv = trio.open_memory_channel[_Outcome](config.pending_limit)
        self._ring: deque[Event] = deque(recent or [], maxlen=config.ring_size)
        self._limits = RateLimiter(config.chat_rate, config.chat_rate_window_s, config.ops_per_second)
        self._snapshot_seq = state.seq
        self._epoch_ms = (clock or wall_ms)() - int(trio.current_time() * 1000)
        self._notify = notify
        self._tallies: dict[str, Event] = {}
        self._tally_next = -math.inf
        self._fanout = Fanout(config.coalesce_s, blocks)
        self.accepting = True
        self.finished = trio.Event()
        self._stop_code: int | None = None
        self._waiting: _Outcome | None = None  # the outcome whose commit the publisher awaits
        self._presence_noted = False  # whether this actor noted anyone present (then its stop ends them)
        # Requests queued and not yet answered, oldest first: (number, trio time queued).
        self._unanswered: deque[tuple[int, float]] = deque()
        self._numbered = 0
        self._handling = 0  # the number of the request being handled (0: none)

    # ---- API used by the gateway and the registry ------------------------------------

    @property
    def subscribers(self) -> dict[int, Subscriber]:
        """The sockets that receive what the room shows from now on."""
        return self._fanout.subscribers

    @property
    def listeners(self) -> int:
        return self.state.listeners()

    def ring_start(self) -> int:
        """The lowest seq the in-memory ring can replay from (state.seq + 1 when empty)."""
        return self._ring[0].seq if self._ring and self._ring[0].seq is not None else self.state.seq + 1

    async def send(self, request: Request | _Shutdown) -> None:
        """Queue a request; raises trio.BrokenResourceError once the actor no longer takes any."""
        if isinstance(request, Request):
            self._numbered += 1
            request.no = self._numbered
            self._unanswered.append((request.no, trio.current_time()))
        try:
            self._send.send_nowait(request)  # no trip through the scheduler while there is room
        except trio.WouldBlock:
            await self._send.send(request)

    # ---- the actor -----------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        session = self.state.session
        if session is not None and not self.state.connections:
            # Recovered with nobody here: every DJ counts as dropped off from now (60 s to return).
            for dj in session.djs:
                session.away_since.setdefault(dj, self.now())
        if session is not None:
            for dj in session.djs:  # their away-from-ops clock starts again with this actor
                session.last_seen.setdefault(dj, self.now())
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._publisher)
                task_status.started()
                try:
                    await self._loop()
                finally:
                    self._turn_away_queued()
                # Let the publisher show everything decided so far, then stop it.
                self._out_send.close()
        finally:
            self._turn_away_unshown()
            if self._presence_noted and not self.lost:
                # Stopped, shut down or crashed: whoever was here is not any more (their sockets'
                # leaves find no actor to tell).
                self._journal.record_presence(self.room_id, None, self.now(), False)

    def waiting_s(self) -> float:
        """How long the oldest request not yet answered has been waiting (its reply, or its events
        shown), while the room is behind: requests queued, or decided ones waiting for their
        commit. 0 when it is not (what is left over then is a request that gets no answer)."""
        unanswered = self._unanswered
        if not unanswered:
            return 0.0
        behind = (
            self._waiting is not None
            or self._inbox.statistics().current_buffer_used > 0
            or self._out_recv.statistics().current_buffer_used > 0
        )
        if not behind:
            unanswered.clear()
            return 0.0
        return trio.current_time() - unanswered[0][1]

    def now(self) -> int:
        """Wall-clock ms, advanced by trio's clock (so MockClock drives a whole evening of tracks)."""
        return self._epoch_ms + int(trio.current_time() * 1000)

    def _to_trio(self, at_ms: int) -> float:
        return (at_ms - self._epoch_ms) / 1000

    async def _loop(self) -> None:
        idle_since = trio.current_time()
        while True:
            idle = not self.state.connections and self.state.session is None
            deadline = idle_since + self.config.idle_s if idle else math.inf
            due = next_deadline(self.state)
            if due is not None:
                deadline = min(deadline, self._to_trio(due))
            if self._tallies:
                deadline = min(deadline, self._tally_next)
            request: Request | _Shutdown | None = None
            with trio.move_on_at(deadline):
                request = await self._inbox.receive()
            if request is None:
                if idle and trio.current_time() >= idle_since + self.config.idle_s:
                    if self._inbox.statistics().current_buffer_used == 0:
                        log.info("room %s idle, stopping", self.room_id)
                        await self._finish(close_code=None)
                        return
                    continue
                await self._emit(self._commit([]))  # the clock: tracks end, tallies flush
                continue
            if isinstance(request, _Shutdown):
                await self._finish(close_code=CLOSE_GOING_AWAY)
                return
            self._handling = request.no
            try:
                await self._handle(request)
            finally:
                self._handling = 0
            if self.state.deleted:
                log.info("room %s deleted, stopping", self.room_id)
                await self._finish(close_code=None)
                return
            if not self.state.connections:
                idle_since = trio.current_time()

    async def _emit(self, outcome: _Outcome) -> None:
        """Hand an outcome to the publisher; waits only when the publisher is ``pending_limit`` behind
        (the loop's own receive is its checkpoint, so a free slot costs no trip through the scheduler)."""
        outcome.request_no = self._handling
        try:
            self._out_send.send_nowait(outcome)
        except trio.WouldBlock:
            await self._out_send.send(outcome)

    def _turn_away_queued(self) -> None:
        """Stop taking requests. Those already queued will never be decided: a socket still
        waiting for its welcome is closed (it reconnects to the room's next actor, or learns
        why not), and a REST caller is told the room is unavailable."""
        self.accepting = False
        while True:
            try:
                request = self._inbox.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            if isinstance(request, Request):
                self._turn_away(request.conn if isinstance(request.command, Join) else None, request.reply)
        self._inbox.close()

    def _turn_away_unshown(self) -> None:
        """After a crash, outcomes decided but never shown: nobody may wait on them forever."""
        while True:
            if self._waiting is not None:
                outcome, self._waiting = self._waiting, None
            else:
                try:
                    outcome = self._out_recv.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                    break
            joining = outcome.subscribe[0] if outcome.subscribe is not None else None
            self._turn_away(joining, outcome.answer[0] if outcome.answer is not None else None)

    def _turn_away(self, joining: Subscriber | None, reply: Reply | None) -> None:
        error: ProtocolError
        if self.state.deleted:
            code, reason, error = CLOSE_ROOM_DELETED, "room deleted", NotFound("the room was deleted")
        else:
            code = self._stop_code if self._stop_code in (CLOSE_GOING_AWAY, CLOSE_RESTART) else CLOSE_INTERNAL
            reason, error = "room restarting", ServiceUnavailable("the room is restarting; try again")
        if joining is not None:
            joining.close(code, reason)
        if reply is not None and not reply.given:
            reply._give(None, error)

    async def _finish(self, close_code: int | None) -> None:
        """Stop taking requests, snapshot, and wait until everything decided has been shown."""
        self._stop_code = close_code
        self._turn_away_queued()
        outcome = _Outcome(done=trio.Event())
        if self.state.seq > self._snapshot_seq:
            outcome.ticket = self._journal.submit(self.room_id, [], (self.state.seq, self.state.snapshot()))
        # Closed when shown: sockets whose welcome is still queued ahead of this are closed too.
        outcome.close_everyone = close_code
        await self._emit(outcome)
        assert outcome.done is not None
        await outcome.done.wait()

    async def _handle(self, request: Request) -> None:
        command = request.command
        now = self.now()
        if isinstance(command, Join):
            await self._emit(self._join(request, command, now))
            return
        if isinstance(command, Op) and request.rate_key is not None:
            wait = self._limits.check(request.rate_key, command.op, trio.current_time())
            if wait:
                error = RateLimited(f"too many {command.op} ops", retry_after_ms=math.ceil(wait * 1000))
                await self._refuse(request, error)
                return
        try:
            decision = decide(self.state, command, now)
        except ProtocolError as error:
            await self._refuse(request, error)
            return
        leaving = self.state.connections.get(command.conn_id) if isinstance(command, Leave) else None
        outcome = self._commit(decision.events)
        if isinstance(command, Leave):
            self._note_presence(decision.events)
            outcome.unsubscribe = command.conn_id
            if leaving is not None:
                # rate-limit buckets outlive the user's sockets until they have refilled
                key = leaving.user_id or f"guest:{command.conn_id}"
                if leaving.user_id is None or leaving.user_id not in self.state.presence:
                    self._limits.forget_if_rested(key, trio.current_time())
        elif request.conn is not None and decision.reply is not None and request.ref is not None:
            outcome.reply = (request.conn, reply_message(request.ref, decision.reply))
        if request.reply is not None:
            request.reply._see(self.state)
            outcome.answer = (request.reply, decision.reply, None)
        await self._emit(outcome)

    async def _refuse(self, request: Request, error: ProtocolError) -> None:
        if request.conn is not None:
            await self._emit(_Outcome(reply=(request.conn, error_message(request.ref, error))))
        if request.reply is not None:
            await self._emit(_Outcome(answer=(request.reply, None, error)))

    def _commit(self, events: list[Event]) -> _Outcome:
        """Apply events and what they make due (track ends and starts), journal the durable ones,
        and return an outcome showing the visible ones. ``vote.tally`` is coalesced per room."""
        for event in events:
            self.state.apply(event)
        events = list(events)
        now = self.now()
        for _ in range(_MAX_SETTLE_STEPS):
            step = decide(self.state, Tick(), now).events
            if not step:
                break
            for event in step:
                self.state.apply(event)
            events.extend(step)
        durable = [e for e in events if e.seq is not None]
        visible = [e for e in self._coalesce(events) if e.name not in INTERNAL_EVENTS]
        outcome = _Outcome(events=visible)
        if durable:
            self._ring.extend(durable)
            snapshot = None
            if self.state.seq - self._snapshot_seq >= self.config.snapshot_every:
                snapshot = (self.state.seq, self.state.snapshot())
                self._snapshot_seq = self.state.seq
            outcome.ticket = self._journal.submit(self.room_id, durable, snapshot)
        return outcome

    def _note_presence(self, events: list[Event]) -> None:
        """Hand a join's or leave's ``presence.*`` events to the presence log (recommendations read
        it for co-listening). Only joins and leaves come here, so chat pays nothing for it."""
        for event in events:
            if event.name in ("presence.join", "presence.leave"):
                present = event.name == "presence.join"
                self._journal.record_presence(self.room_id, event.data["user_id"], event.at, present)
                self._presence_noted = True

    def _coalesce(self, events: list[Event]) -> list[Event]:
        """At most one ``vote.tally`` per room per 100 ms: keep the newest per item until then."""
        out: list[Event] = []
        for event in events:
            if event.name == "vote.tally":
                self._tallies[event.data["item_id"]] = event
            elif event.name == "track.ended":
                self._tallies.pop(event.data["item_id"], None)  # its final counts are in the event
                out.append(event)
            else:
                out.append(event)
        if self._tallies and trio.current_time() >= self._tally_next:
            out.extend(self._tallies.values())
            self._tallies.clear()
            self._tally_next = trio.current_time() + TALLY_INTERVAL_S
        return out

    def _join(self, request: Request, command: Join, now: int) -> _Outcome:
        conn = request.conn
        assert conn is not None
        since = request.since
        if since is not None and since > self.state.seq:
            reason = f"since {since} is after the room's seq {self.state.seq}"
            return _Outcome(closes=[(conn, CLOSE_POLICY, reason)])
        decision = decide(self.state, command, now)
        outcome = self._commit(decision.events)
        self._note_presence(decision.events)
        resumed, replay = self._replay(since, request.stored) if since is not None else (False, [])
        welcome = welcome_data(
            self.state,
            command.conn_id,
            now,
            resumed=resumed,
            replayed=len(replay),
            site_muted_until=command.site_muted_until,
        )
        outcome.subscribe = (conn, [{"type": "welcome", "data": welcome}, *(e.wire() for e in replay)])
        if isinstance(conn, RemoteJoin):
            conn.seq = self.state.seq
        outcome.exclude = command.conn_id
        return outcome

    def _replay(self, since: int, stored: list[Event]) -> tuple[bool, list[Event]]:
        """Every durable event after ``since``, from Postgres then the ring, or (False, [])."""
        wanted = self.state.seq - since
        if wanted == 0:
            return True, []
        if wanted > MAX_REPLAY:
            return False, []
        ring_start = self.ring_start()
        events = [e for e in stored if e.seq is not None and since < e.seq < ring_start]
        events.extend(e for e in self._ring if e.seq is not None and e.seq > since)
        expected = list(range(since + 1, self.state.seq + 1))
        if [e.seq for e in events] != expected:
            return False, []
        return True, events

    # ---- the publisher ---------------------------------------------------------------

    async def _publisher(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._fanout.run)
            async for outcome in self._out_recv:
                if outcome.ticket is not None:
                    self._waiting = outcome
                    await outcome.ticket.wait()  # a failed commit crashes the actor: nothing was shown
                    self._waiting = None
                elif self._ownership is not None and not self._ownership.fresh():
                    # Paused past the TTL: the room may be someone else's now. Show nothing until
                    # the next renewal says (a lost room's actor is cancelled before it returns).
                    self._waiting = outcome
                    await self._ownership.renewed()
                    self._waiting = None
                with self._fanout.publishing():
                    self._show(outcome)
                if outcome.request_no:
                    unanswered = self._unanswered
                    while unanswered and unanswered[0][0] <= outcome.request_no:
                        unanswered.popleft()
                if self._relaying and (
                    self._out_recv.statistics().current_buffer_used == 0 or len(self._relaying) >= RELAY_BATCH
                ):
                    self._relay_now(None)
                if outcome.ticket is not None and self._notify is not None:
                    self._tell_progress(outcome)
                if outcome.done is not None:
                    self._fanout.flush()
                    outcome.done.set()
            self._fanout.flush()
            nursery.cancel_scope.cancel()

    def _relay_now(self, close: int | None) -> None:
        """What the room showed since the last call, to its members on other nodes: one
        message per wake-up of the publisher, not one per event."""
        if self._relay is not None and (self._remote or close is not None):
            self._relay(self.room_id, self.epoch, self._relaying, close)
        self._relaying = []

    def _show(self, outcome: _Outcome) -> None:
        fanout = self._fanout
        if outcome.subscribe is not None:
            conn, messages = outcome.subscribe
            if isinstance(conn, RemoteJoin):
                conn.first = messages
                self._remote.add(conn.conn_id)
                conn.done.set()
            else:
                fanout.subscribe(conn, messages)
        if outcome.unsubscribe is not None:
            fanout.unsubscribe(outcome.unsubscribe)
            self._remote.discard(outcome.unsubscribe)
        relaying = self._relay is not None and bool(self._remote)
        for event in outcome.events:
            wire = event.wire()
            fanout.to_all(wire, exclude=outcome.exclude)
            if relaying:
                self._relaying.append((wire, event.seq, outcome.exclude))
            code = CLOSES_USER.get(event.name)
            if code is not None:
                self._close_user(event.data["user_id"], code, event.name.removeprefix("user."))
            closing = CLOSES_ALL.get(event.name)
            if closing is not None:
                fanout.close_all(*closing)
        if outcome.reply is not None:
            conn, message = outcome.reply
            fanout.to_one(conn, message)
        if outcome.answer is not None:
            slot, data, error = outcome.answer
            slot._give(data, error)
        for conn, code, reason in outcome.closes:
            if isinstance(conn, RemoteJoin):
                conn.close(code, reason)
            else:
                fanout.close(conn, code, reason)
        if outcome.close_everyone is not None:
            fanout.close_all(outcome.close_everyone, "server shutting down")
            # The room stops here: members on other nodes resume wherever it runs next.
            self._relay_now(CLOSE_RESTART)

    def _tell_progress(self, outcome: _Outcome) -> None:
        """Private events after commit, to the user's sockets in every room: ``points.awarded``,
        ``level.up`` and ``notification`` (mentions, replies, level ups). Written in the batch's
        own transaction, so telling them costs the room nothing but these socket writes."""
        assert outcome.ticket is not None and self._notify is not None
        ticket = outcome.ticket
        flushed = False
        for event in outcome.events:
            if event.seq is None:
                continue
            notices = [
                (progress.user_id, notice)
                for progress in ticket.results_for(self.room_id, event.seq)
                for notice in progress.notices(event.at)
            ]
            notices += [
                (user_id, private_event("notification", event.at, note))
                for user_id, note in ticket.notes_for(self.room_id, event.seq)
            ]
            if notices and not flushed:
                self._fanout.flush()  # the events first, then what they earned or caused
                flushed = True
            for user_id, notice in notices:
                self._notify(user_id, notice)

    def _close_user(self, user_id: str, code: int, reason: str) -> None:
        for conn_id, conn in list(self.subscribers.items()):
            seen = self.state.connections.get(conn_id)
            if seen is not None and seen.user_id == user_id:
                self._fanout.close(conn, code, reason)

    def close_all(self, code: int, reason: str) -> None:
        """The room is gone (a crash): unsent frames are dropped and every socket closes now."""
        self._fanout.abandon(code, reason)
        self._relaying = []
        self._relay_now(CLOSE_RESTART)

    def lose(self) -> None:
        """The lease moved to another node: nothing more is shown or written by this actor."""
        self.lost = True
        self._stop_code = CLOSE_RESTART
