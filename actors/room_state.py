"""A live room's state, and ``apply``: the only code that changes it.

Plain data, no I/O, no clock. The durable part round-trips through
:meth:`RoomState.snapshot` / :meth:`RoomState.restore`; presence and
connections are ephemeral and rebuilt by the sockets that reconnect.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from actors.session import SESSION_APPLY, Session
from protocol.events import Event

RECENT_KEEP = 200  # newest messages kept in memory (welcome shows the last 50)
TOUCHED_KEEP = 500  # older messages someone acted on, kept so this actor stays their authority
NONCES_KEEP = 10_000  # newest chat nonces remembered for retries
WELCOME_MESSAGES = 50
MAX_PINNED = 50
PLAYS_KEEP_MS = 604_800_000  # the longest repeat window: plays older than this are forgotten
PLAYS_KEEP = 2_000  # and at most this many tracks' last plays per room


@dataclass(slots=True)
class RoomInfo:
    id: str
    slug: str
    name: str
    type: str
    visibility: str
    owner_id: str
    description: str | None = None
    genres: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    pinned_track: dict[str, Any] | None = None
    created_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "slug": self.slug,
            "name": self.name,
            "type": self.type,
            "visibility": self.visibility,
            "owner_id": self.owner_id,
            "description": self.description,
            "genres": list(self.genres),
            "tags": list(self.tags),
            "pinned_track": self.pinned_track,
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RoomInfo:
        return cls(
            id=d["id"],
            slug=d["slug"],
            name=d["name"],
            type=d["type"],
            visibility=d["visibility"],
            owner_id=d["owner_id"],
            description=d.get("description"),
            genres=list(d.get("genres", [])),
            tags=list(d.get("tags", [])),
            pinned_track=d.get("pinned_track"),
            created_at=d.get("created_at", ""),
        )


@dataclass(slots=True)
class Message:
    id: str
    user_id: str
    username: str
    text: str
    reply_to: str | None
    track: dict[str, Any] | None
    mentions: list[str]
    at: int
    seq: int
    reactions: dict[str, list[str]] = field(default_factory=dict)  # emoji -> user ids, in order
    deleted: bool = False

    def wire(self) -> dict[str, Any]:
        """``chat.message`` data."""
        return {
            "id": self.id,
            "user_id": self.user_id,
            "username": self.username,
            "text": self.text,
            "reply_to": self.reply_to,
            "track": self.track,
            "mentions": list(self.mentions),
            "at": self.at,
            "reactions": {emoji: len(users) for emoji, users in self.reactions.items() if users},
        }

    def to_dict(self) -> dict[str, Any]:
        d = self.wire()
        d["seq"] = self.seq
        d["reactions"] = {e: list(u) for e, u in self.reactions.items()}
        d["deleted"] = self.deleted
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Message:
        return cls(
            id=d["id"],
            user_id=d["user_id"],
            username=d["username"],
            text=d["text"],
            reply_to=d.get("reply_to"),
            track=d.get("track"),
            mentions=list(d.get("mentions", [])),
            at=d["at"],
            seq=d["seq"],
            reactions={e: list(u) for e, u in d.get("reactions", {}).items()},
            deleted=d.get("deleted", False),
        )


@dataclass(slots=True)
class Connection:
    """One socket in the room, as the core sees it."""

    user_id: str | None  # None: a guest
    username: str | None
    role: str  # owner | moderator | member | guest
    is_admin: bool = False
    is_artist: bool = False


@dataclass
class RoomState:
    room: RoomInfo
    seq: int = 0
    pinned_message_ids: list[str] = field(default_factory=list)
    messages: dict[str, Message] = field(default_factory=dict)
    recent: deque[str] = field(default_factory=deque)
    touched: OrderedDict[str, None] = field(default_factory=OrderedDict)
    nonces: OrderedDict[str, tuple[str, int]] = field(default_factory=OrderedDict)
    mutes: dict[str, int] = field(default_factory=dict)
    deleted: bool = False
    session: Session | None = None
    played_at: dict[str, int] = field(
        default_factory=dict
    )  # track id -> its last start here (ms), oldest first
    # ephemeral: not in snapshots
    connections: dict[int, Connection] = field(default_factory=dict)
    presence: dict[str, int] = field(default_factory=dict)  # user id -> open sockets
    usernames: dict[str, str] = field(default_factory=dict)  # user id -> username, for presence
    present_since: dict[str, int] = field(default_factory=dict)  # user id -> when their first socket opened

    # ---- reads -------------------------------------------------------------

    def room_wire(self) -> dict[str, Any]:
        d = self.room.to_dict()
        d["pinned_message_ids"] = list(self.pinned_message_ids)
        return d

    def recent_messages(self, limit: int = WELCOME_MESSAGES) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for message_id in reversed(self.recent):
            message = self.messages[message_id]
            if not message.deleted:
                out.append(message.wire())
                if len(out) == limit:
                    break
        out.reverse()
        return out

    def guests(self) -> int:
        return sum(1 for c in self.connections.values() if c.user_id is None)

    def listeners(self) -> int:
        """Authenticated users present now (a room's ``listeners`` in REST)."""
        return len(self.presence)

    def holds_item(self, item_id: str) -> bool:
        """Whether the room's session holds the queue item (queued or playing)."""
        session = self.session
        if session is None:
            return False
        playing = session.now_playing
        if playing is not None and playing.item.item_id == item_id:
            return True
        return session.find_item(item_id) is not None

    def last_played_at(self, track_id: str) -> int | None:
        """When the track last started in this room (ms), if within the last week."""
        return self.played_at.get(track_id)

    def note_play(self, track_id: str, at: int) -> None:
        self.played_at.pop(track_id, None)
        self.played_at[track_id] = at  # newest last
        for old in list(self.played_at):
            if len(self.played_at) <= PLAYS_KEEP and self.played_at[old] > at - PLAYS_KEEP_MS:
                break
            del self.played_at[old]

    def settled_listeners(self, exclude: str | None, now: int, settled_ms: int) -> int:
        """Authenticated users here for at least ``settled_ms``, ``exclude`` left out."""
        return sum(
            1 for uid, since in self.present_since.items() if uid != exclude and now - since >= settled_ms
        )

    def presence_list(self) -> list[dict[str, str]]:
        return [{"user_id": uid, "username": self.usernames[uid]} for uid in self.presence]

    def muted_until(self, user_id: str | None, now: int) -> int | None:
        if user_id is None:
            return None
        until = self.mutes.get(user_id)
        return until if until is not None and until > now else None

    @staticmethod
    def nonce_key(user_id: str, nonce: str) -> str:
        return f"{user_id}:{nonce}"

    # ---- snapshots ---------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The durable state as JSON-able data."""
        return {
            "room": self.room.to_dict(),
            "seq": self.seq,
            "pinned_message_ids": list(self.pinned_message_ids),
            "messages": [self.messages[m].to_dict() for m in self._kept_ids()],
            "recent": list(self.recent),
            "touched": list(self.touched),
            "nonces": [[k, v[0], v[1]] for k, v in self.nonces.items()],
            "mutes": dict(self.mutes),
            "deleted": self.deleted,
            "session": self.session.to_dict() if self.session is not None else None,
            "played_at": [[t, at] for t, at in self.played_at.items()],
        }

    def _kept_ids(self) -> list[str]:
        ids = list(self.recent)
        seen = set(ids)
        for m in [*self.touched, *self.pinned_message_ids]:
            if m not in seen and m in self.messages:
                seen.add(m)
                ids.append(m)
        return ids

    @classmethod
    def restore(cls, snap: dict[str, Any], room: RoomInfo | None = None) -> RoomState:
        """Rebuild from :meth:`snapshot`; ``room`` (from the rooms table) wins for room details."""
        state = cls(room=room or RoomInfo.from_dict(snap["room"]))
        state.seq = snap["seq"]
        state.pinned_message_ids = list(snap["pinned_message_ids"])
        for d in snap["messages"]:
            state.messages[d["id"]] = Message.from_dict(d)
        state.recent = deque(snap["recent"])
        state.touched = OrderedDict((m, None) for m in snap["touched"])
        state.nonces = OrderedDict((k, (mid, seq)) for k, mid, seq in snap["nonces"])
        state.mutes = dict(snap["mutes"])
        state.deleted = snap.get("deleted", False)
        session = snap.get("session")
        state.session = Session.from_dict(session) if session is not None else None
        state.played_at = {t: at for t, at in snap.get("played_at", [])}
        return state

    # ---- apply -------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Change the state by one event. Durable events must come in ``seq`` order."""
        if event.seq is not None:
            assert event.seq == self.seq + 1, f"event seq {event.seq} after {self.seq}"
            self.seq = event.seq
        adopt = event.meta.get("adopt")
        if adopt is not None and adopt["id"] not in self.messages:
            self.messages[adopt["id"]] = Message.from_dict(adopt)
        handler = _APPLY.get(event.name)
        if handler is not None:
            handler(self, event)

    def _remember(self, message: Message) -> None:
        self.messages[message.id] = message
        self.recent.append(message.id)
        while len(self.recent) > RECENT_KEEP:
            old = self.recent.popleft()  # ids are unique, so it is no longer in recent
            if old not in self.touched and old not in self.pinned_message_ids:
                self.messages.pop(old, None)

    def _touch(self, message_id: str) -> None:
        self.touched[message_id] = None
        self.touched.move_to_end(message_id)
        while len(self.touched) > TOUCHED_KEEP:
            old, _ = self.touched.popitem(last=False)
            self._forget_if_unused(old)

    def _forget_if_unused(self, message_id: str) -> None:
        if (
            message_id not in self.touched
            and message_id not in self.recent
            and message_id not in self.pinned_message_ids
        ):
            self.messages.pop(message_id, None)


def _apply_message(state: RoomState, event: Event) -> None:
    d = event.data
    assert event.seq is not None
    state._remember(
        Message(
            id=d["id"],
            user_id=d["user_id"],
            username=d["username"],
            text=d["text"],
            reply_to=d["reply_to"],
            track=d["track"],
            mentions=list(d["mentions"]),
            at=d["at"],
            seq=event.seq,
        )
    )
    nonce = event.meta.get("nonce")
    if nonce is not None:
        state.nonces[RoomState.nonce_key(d["user_id"], nonce)] = (d["id"], event.seq)
        while len(state.nonces) > NONCES_KEEP:
            state.nonces.popitem(last=False)


def _apply_deleted(state: RoomState, event: Event) -> None:
    message_id = event.data["id"]
    state.messages[message_id].deleted = True
    if message_id in state.pinned_message_ids:
        state.pinned_message_ids.remove(message_id)
    state._touch(message_id)


def _apply_reaction(state: RoomState, event: Event) -> None:
    d = event.data
    message = state.messages[d["message_id"]]
    users = message.reactions.setdefault(d["emoji"], [])
    if d["added"]:
        if d["user_id"] not in users:
            users.append(d["user_id"])
    else:
        if d["user_id"] in users:
            users.remove(d["user_id"])
        if not users:
            del message.reactions[d["emoji"]]
    state._touch(message.id)


def _apply_reactions_cleared(state: RoomState, event: Event) -> None:
    message = state.messages[event.data["message_id"]]
    message.reactions.clear()
    state._touch(message.id)


def _apply_pinned(state: RoomState, event: Event) -> None:
    message_id = event.data["message_id"]
    if message_id not in state.pinned_message_ids:
        state.pinned_message_ids.append(message_id)
    state._touch(message_id)


def _apply_unpinned(state: RoomState, event: Event) -> None:
    message_id = event.data["message_id"]
    if message_id in state.pinned_message_ids:
        state.pinned_message_ids.remove(message_id)
    state._forget_if_unused(message_id)


def _apply_room_updated(state: RoomState, event: Event) -> None:
    room = dict(event.data["room"])
    room.pop("pinned_message_ids", None)
    state.room = RoomInfo.from_dict(room)


def _apply_room_deleted(state: RoomState, event: Event) -> None:
    state.deleted = True
    state.session = None


def _apply_muted(state: RoomState, event: Event) -> None:
    state.mutes[event.data["user_id"]] = event.data["until"]


def _apply_unmuted(state: RoomState, event: Event) -> None:
    state.mutes.pop(event.data["user_id"], None)


def _apply_socket_open(state: RoomState, event: Event) -> None:
    d = event.data
    state.connections[d["conn_id"]] = Connection(
        d["user_id"], d["username"], d["role"], d["is_admin"], d.get("is_artist", False)
    )
    if d["user_id"] is not None:
        state.present_since.setdefault(d["user_id"], event.at)
        state.presence[d["user_id"]] = state.presence.get(d["user_id"], 0) + 1
        state.usernames[d["user_id"]] = d["username"]
        if state.session is not None:
            state.session.away_since.pop(d["user_id"], None)


def _apply_socket_role(state: RoomState, event: Event) -> None:
    for conn in state.connections.values():
        if conn.user_id == event.data["user_id"]:
            conn.role = event.data["role"]


def _apply_socket_close(state: RoomState, event: Event) -> None:
    conn = state.connections.pop(event.data["conn_id"], None)
    if conn is None or conn.user_id is None:
        return
    left = state.presence[conn.user_id] - 1
    if left:
        state.presence[conn.user_id] = left
    else:
        del state.presence[conn.user_id]
        del state.usernames[conn.user_id]
        state.present_since.pop(conn.user_id, None)
        if state.session is not None and conn.user_id in state.session.djs:
            state.session.away_since[conn.user_id] = event.at  # keeps their place for a while


_APPLY = {
    "chat.message": _apply_message,
    "chat.deleted": _apply_deleted,
    "chat.reaction": _apply_reaction,
    "chat.reactions_cleared": _apply_reactions_cleared,
    "chat.pinned": _apply_pinned,
    "chat.unpinned": _apply_unpinned,
    "room.updated": _apply_room_updated,
    "room.deleted": _apply_room_deleted,
    "user.muted": _apply_muted,
    "user.unmuted": _apply_unmuted,
    "socket.open": _apply_socket_open,
    "socket.close": _apply_socket_close,
    "socket.role": _apply_socket_role,
    **SESSION_APPLY,
}
