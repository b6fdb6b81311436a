"""Every open socket of each user, across rooms: where private events go."""

from __future__ import annotations

import time
from typing import Any

from actors.blocks import BlockIndex
from actors.ports import Subscriber
from protocol.codec import Encoding, encode_frame
from protocol.events import private_event


class UserSockets:
    def __init__(self) -> None:
        self._by_user: dict[str, dict[int, Subscriber]] = {}
        # Which of this process's sockets hide whom (personal blocks), for every room's fan-out.
        self.blocks = BlockIndex()

    def add(self, user_id: str, conn: Subscriber) -> None:
        self._by_user.setdefault(user_id, {})[conn.conn_id] = conn

    def remove(self, user_id: str, conn: Subscriber) -> None:
        conns = self._by_user.get(user_id)
        if conns is not None:
            conns.pop(conn.conn_id, None)
            if not conns:
                del self._by_user[user_id]

    def set_blocks(self, user_id: str, blocked: frozenset[str]) -> None:
        """The user's blocks changed: their open sockets here hide exactly ``blocked`` from now on
        (PROTOCOL.md "Personal blocks": at once, no reconnect)."""
        for conn_id in self._by_user.get(user_id, {}):
            self.blocks.assign(conn_id, blocked)

    def notify(self, user_id: str, message: dict[str, Any]) -> None:
        """Send ``message`` to each of the user's sockets (encoded once per encoding)."""
        frames: dict[Encoding, bytes] = {}
        for conn in self._by_user.get(user_id, {}).values():
            frame = frames.get(conn.encoding)
            if frame is None:
                frame = frames[conn.encoding] = encode_frame(message, conn.encoding)
            conn.send_frame(frame)

    def close_all(self, user_id: str, code: int, reason: str) -> int:
        """Close every socket of the user, in every room (each leaves its room as on any close)."""
        conns = list(self._by_user.get(user_id, {}).values())
        for conn in conns:
            conn.close(code, reason)
        return len(conns)

    def tell(self, notes: list[tuple[str, dict[str, Any]]]) -> None:
        """Each committed notification to its user's open sockets, in any room."""
        at = int(time.time() * 1000)
        for user_id, note in notes:
            self.notify(user_id, private_event("notification", at, note))
