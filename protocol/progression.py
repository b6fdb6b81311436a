"""REST shapes for progression: points, levels, credits."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ProgressionOut(BaseModel):
    user_id: str
    total_points: int
    seasonal_points: int
    current_level: int
    credits_balance: int
    next_level_at: int
    last_level_up_at: str | None


class PointOut(BaseModel):
    id: int
    event_type: str
    points: int
    source_id: str
    room_id: str | None
    created_at: str


class PointPage(BaseModel):
    items: list[PointOut]
    next_cursor: str | None


class CreditOut(BaseModel):
    type: str
    credits: int
    description: str | None
    created_at: str


class CreditsOut(BaseModel):
    credits_balance: int
    premium_until: str | None
    history: list[CreditOut]


class RedeemBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    months: int = Field(ge=1, le=12)


class RedeemOut(BaseModel):
    credits_balance: int
    premium_until: str
