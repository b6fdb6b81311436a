"""REST shapes of moderation (REST.md "Moderation"): the log, reports, site-wide sanctions."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from protocol.refs import RoomRef, UserRef


class ModLogEntry(BaseModel):
    id: str
    action: str
    actor_id: str
    target_user_id: str | None
    room_id: str | None
    message_id: str | None
    reason: str | None
    metadata: dict[str, Any]
    created_at: str


class ModLogPage(BaseModel):
    items: list[ModLogEntry]
    next_cursor: str | None


# ---- reports and site-wide sanctions ------------------------------------------------------

TargetType = Literal["user", "message", "room"]
ReportReason = Literal["spam", "harassment", "hate", "sexual", "violence", "other"]
ReportStatus = Literal["pending", "actioned", "dismissed"]
ActionType = Literal["ban", "mute", "warn", "delete_message"]
MAX_SANCTION_SECONDS = 10 * 366 * 86_400  # ten years; longer is "for good" (no seconds)


class ReportBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target_type: TargetType
    target_id: uuid.UUID
    reason: ReportReason
    description: str | None = Field(default=None, max_length=2000)


class ReportAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: ActionType
    seconds: StrictInt | None = Field(default=None, ge=1, le=MAX_SANCTION_SECONDS)
    reason: str | None = Field(default=None, min_length=1, max_length=500)


class ResolveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["actioned", "dismissed"]
    action: ReportAction | None = None


class ReportOut(BaseModel):
    id: str
    reporter_id: str
    target_type: TargetType
    target_id: str
    reason: ReportReason
    description: str | None
    status: ReportStatus
    action: ReportAction | None
    resolved_by: str | None
    resolved_at: str | None
    created_at: str


class ReportPage(BaseModel):
    items: list[ReportOut]
    next_cursor: str | None


class ModerationStatus(BaseModel):
    user_id: str
    is_banned: bool
    banned_until: str | None
    muted_until: str | None
    warn_count: int


class ReportedMessage(BaseModel):
    id: str
    room_id: str
    user_id: str
    text: str
    created_at: str
    deleted_at: str | None


class ReportTarget(BaseModel):
    """What was reported: the user it falls on (a message's author, a room's owner) and their status."""

    type: TargetType
    user: UserRef | None
    moderation: ModerationStatus | None
    message: ReportedMessage | None
    room: RoomRef | None


class ReportDetail(ReportOut):
    target: ReportTarget


class BanBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: StrictInt | None = Field(default=None, ge=1, le=MAX_SANCTION_SECONDS)
    reason: str = Field(min_length=1, max_length=500)


class MuteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: StrictInt = Field(ge=1, le=MAX_SANCTION_SECONDS)
    reason: str = Field(min_length=1, max_length=500)


class WarnBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500)
