"""What a REST reply shows of a live room, by name: a view crosses to the room's owner node as
``(name, args)`` and runs there on the room's state (``server/http/room_ops.py``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from actors.room_state import RoomState


def session_of(state: RoomState) -> dict[str, Any] | None:
    session = state.session
    return session.wire() if session is not None else None


def rotation(state: RoomState) -> dict[str, Any]:
    session = state.session
    return session.rotation_wire() if session is not None else {"djs": [], "active": None}


def queue(state: RoomState) -> list[dict[str, Any]]:
    session = state.session
    return [item.wire() for item in session.play_order()] if session is not None else []


def votes_on(state: RoomState, item_id: str) -> dict[str, Any]:
    session = state.session
    playing = session.now_playing if session is not None else None
    if playing is not None and playing.item.item_id == item_id:
        return {"item_id": item_id, **playing.votes()}
    found = session.find_item(item_id) if session is not None else None
    return {"item_id": item_id, **(found[1].tally() if found else {"up": 0, "down": 0}), "skip": 0}


def room_now(state: RoomState) -> dict[str, Any]:
    """The room as an op left it (a reply's view: see ``run_op_showing``)."""
    return {**state.room_wire(), "listeners": state.listeners()}


VIEWS: dict[str, Callable[..., Any]] = {
    "session": session_of,
    "rotation": rotation,
    "queue": queue,
    "votes": votes_on,
    "room": room_now,
    "has_item": RoomState.holds_item,
}


T = TypeVar("T")


@dataclass(frozen=True)
class View(Generic[T]):
    """A named view with its arguments; called on a room's state like a plain function."""

    name: str
    args: tuple[str, ...] = ()

    def __call__(self, state: RoomState) -> T:
        result: T = VIEWS[self.name](state, *self.args)
        return result

    @staticmethod
    def parse(raw: object) -> View[Any]:
        """From the bus: ``[name, [args...]]``; refuses an unknown name."""
        if not isinstance(raw, list | tuple) or len(raw) != 2 or raw[0] not in VIEWS:
            raise ValueError(f"not a view: {raw!r}")
        if not isinstance(raw[1], list | tuple):
            raise ValueError(f"not a view's arguments: {raw[1]!r}")  # noqa: TRY004 - callers take ValueError
        return View(str(raw[0]), tuple(str(a) for a in raw[1]))
