"""REST shapes of the notification center (REST.md "Notifications")."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, StrictBool

from protocol.refs import UserRef

NotificationType = Literal[
    "follow",
    "mention",
    "reply",
    "level_up",
    "badge",
    "join_request",
    "join_request_decision",
    "report_resolved",
    "dj_live",
]
NOTIFICATION_TYPES: tuple[str, ...] = get_args(NotificationType)


class NotificationOut(BaseModel):
    id: str
    type: NotificationType
    actor: UserRef | None
    data: dict[str, Any]
    created_at: str
    read_at: str | None


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    next_cursor: str | None


class UnreadCount(BaseModel):
    count: int


class ReadAll(BaseModel):
    updated: int


class Preferences(BaseModel):
    """One switch per type; a type switched off is not created. In a PUT, types left out stay."""

    model_config = ConfigDict(extra="forbid")
    follow: StrictBool | None = None
    mention: StrictBool | None = None
    reply: StrictBool | None = None
    level_up: StrictBool | None = None
    badge: StrictBool | None = None
    join_request: StrictBool | None = None
    join_request_decision: StrictBool | None = None
    report_resolved: StrictBool | None = None
    dj_live: StrictBool | None = None


class PreferencesOut(BaseModel):
    follow: bool
    mention: bool
    reply: bool
    level_up: bool
    badge: bool
    join_request: bool
    join_request_decision: bool
    report_resolved: bool
    dj_live: bool
