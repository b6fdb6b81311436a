"""REST shapes for a room's history of played tracks (REST.md "Room history")."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from protocol.refs import TrackOut


class HistoryVotes(BaseModel):
    up: int
    down: int
    skip: int


class HistoryItem(BaseModel):
    """One played track: whose turn it was, when it started and ended, why, and its final votes."""

    item_id: str
    track: TrackOut
    dj_id: str
    started_at: str
    ended_at: str
    reason: Literal["completed", "skipped", "mod_skip", "stopped"]
    votes: HistoryVotes


class HistoryPage(BaseModel):
    items: list[HistoryItem]
    next_cursor: str | None
