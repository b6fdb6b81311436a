"""REST shapes of the leaderboards (REST.md "Leaderboards, badges, seasons")."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from protocol.refs import UserRef

BoardType = Literal["global", "seasonal", "genre", "room"]
BOARD_TYPES: tuple[str, ...] = ("global", "seasonal", "genre", "room")
SEASON_PATTERN = r"^\d{4}-Q[1-4]$"


class RankedOut(BaseModel):
    rank: int
    user: UserRef
    score: int


class BoardPage(BaseModel):
    items: list[RankedOut]
    next_cursor: str | None
    type: BoardType
    scope: str | None
    season: str | None


class StandingOut(BaseModel):
    rank: int | None
    score: int
    total_ranked: int
