"""Personal blocks as the fan-out sees them (PROTOCOL.md "Personal blocks").

One index per process, shared by every room's fan-out (owner and edge alike): which open
sockets hide which authors. Sockets are keyed by their process-wide ``conn_id``. Fan-out asks
:meth:`BlockIndex.hiders` once per chat message or reaction; with nobody blocking anyone
(``active`` false) it asks nothing at all.
"""

from __future__ import annotations

from typing import Any

# Events whose author may be hidden from a socket that blocks them.
HIDEABLE = frozenset({"chat.message", "chat.reaction"})


class BlockIndex:
    __slots__ = ("_blocks", "_hiders")

    def __init__(self) -> None:
        self._blocks: dict[int, frozenset[str]] = {}  # conn id -> the users its user blocks
        self._hiders: dict[str, set[int]] = {}  # blocked user -> conn ids that hide them

    @property
    def active(self) -> bool:
        return bool(self._hiders)

    def assign(self, conn_id: int, blocked: frozenset[str]) -> None:
        """``conn_id``'s user now blocks exactly ``blocked`` (empty: nobody; also on close)."""
        for user_id in self._blocks.pop(conn_id, frozenset()):
            conns = self._hiders.get(user_id)
            if conns is not None:
                conns.discard(conn_id)
                if not conns:
                    del self._hiders[user_id]
        if blocked:
            self._blocks[conn_id] = blocked
            for user_id in blocked:
                self._hiders.setdefault(user_id, set()).add(conn_id)

    def blocks_of(self, conn_id: int) -> frozenset[str]:
        return self._blocks.get(conn_id, frozenset())

    def hiders(self, user_id: str) -> set[int] | None:
        """The sockets that must not see ``user_id``'s chat as is (None: none)."""
        return self._hiders.get(user_id)


def author_of(message: dict[str, Any]) -> str | None:
    """The user a hideable event is by (a chat message's author, a reaction's reactor)."""
    if message.get("name") in HIDEABLE:
        user_id = message["data"].get("user_id")
        return user_id if isinstance(user_id, str) else None
    return None


def hidden_variant(message: dict[str, Any]) -> dict[str, Any] | None:
    """What a socket that blocks the author gets instead: a chat message's stub with the same
    ``seq`` (no gap), or nothing for a reaction."""
    if message.get("name") != "chat.message":
        return None
    data = message["data"]
    stub = dict(message)
    stub["data"] = {"id": data["id"], "user_id": data["user_id"], "hidden": True}
    return stub


def hide_for(blocked: frozenset[str], messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A joining socket's welcome and replay as a user who blocks ``blocked`` sees them."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.get("type") == "welcome":
            data = message["data"]
            recent = [
                {"id": m["id"], "user_id": m["user_id"], "hidden": True} if m.get("user_id") in blocked else m
                for m in data.get("recent_messages", [])
            ]
            out.append({**message, "data": {**data, "recent_messages": recent}})
            continue
        author = author_of(message)
        if author is not None and author in blocked:
            stub = hidden_variant(message)
            if stub is not None:
                out.append(stub)
            continue
        out.append(message)
    return out
