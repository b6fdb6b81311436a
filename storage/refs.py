"""Rows into the shared REST shapes (UserRef, Track), whatever query selected them."""

from __future__ import annotations

from typing import Any

from storage.database import Record


def user_ref_columns(users: str, profiles: str, prefix: str) -> str:
    """Select-list for a UserRef from aliased ``users`` and ``profiles`` tables, columns prefixed."""
    return (
        f"{users}.id AS {prefix}id, {users}.username AS {prefix}username, "
        f"{profiles}.display_name AS {prefix}display_name, {profiles}.avatar_url AS {prefix}avatar_url"
    )


def user_ref(r: Record, prefix: str) -> dict[str, Any] | None:
    """The UserRef selected by :func:`user_ref_columns` (None when the left join found nobody)."""
    if r[f"{prefix}id"] is None:
        return None
    return {
        "id": str(r[f"{prefix}id"]),
        "username": r[f"{prefix}username"],
        "display_name": r[f"{prefix}display_name"],
        "avatar_url": r[f"{prefix}avatar_url"],
    }


TRACK_COLUMNS = "t.id AS track_id, t.provider, t.provider_id, t.title, t.artist, t.duration_ms, t.artwork_url"


def track(r: Record) -> dict[str, Any]:
    """The Track of PROTOCOL.md from :data:`TRACK_COLUMNS` (track_refs aliased ``t``)."""
    return {
        "id": str(r["track_id"]),
        "provider": r["provider"],
        "provider_id": r["provider_id"],
        "title": r["title"],
        "artist": r["artist"],
        "duration_ms": r["duration_ms"],
        "artwork_url": r["artwork_url"],
    }
