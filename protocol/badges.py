"""The badge catalogue and its REST shapes (REST.md "Leaderboards, badges, seasons")."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

Tier = Literal["gold", "silver", "bronze", "participant"]


class BadgeOut(BaseModel):
    code: str
    name: str
    description: str
    tier: Tier | None
    category: Literal["season", "dj", "community"]
    season: str | None
    icon_url: str | None


def _milestone(code: str, name: str, description: str, category: str = "dj") -> dict[str, Any]:
    return {
        "code": code,
        "name": name,
        "description": description,
        "tier": None,
        "category": category,
        "season": None,
        "icon_url": None,
    }


# Milestones: each awarded at most once per user, in the transaction of the points that earned it.
MILESTONES: dict[str, dict[str, Any]] = {
    b["code"]: b
    for b in (
        _milestone("FIRST_PLAY", "First play", "A track of yours played to its end"),
        _milestone("LEVEL_5", "Level 5", "Reached level 5"),
        _milestone("LEVEL_10", "Level 10", "Reached level 10"),
        _milestone("LEVEL_25", "Level 25", "Reached level 25"),
        _milestone("CROWD_FAVOURITE", "Crowd favourite", "One play with 10 distinct up votes"),
        _milestone(
            "TASTEMAKER",
            "Tastemaker",
            "50 different people added tracks you played to playlists",
            "community",
        ),
    )
}
LEVEL_BADGES = {5: "LEVEL_5", 10: "LEVEL_10", 25: "LEVEL_25"}
CROWD_FAVOURITE_VOTES = 10
TASTEMAKER_ADDERS = 50


class AwardedBadgeOut(BaseModel):
    badge: BadgeOut
    awarded_at: str
    metadata: dict[str, Any]


class AwardedBadgePage(BaseModel):
    items: list[AwardedBadgeOut]
    next_cursor: str | None


class TrophyCounts(BaseModel):
    gold: int
    silver: int
    bronze: int
    participant: int


class BestRank(BaseModel):
    season: str
    rank: int
    score: int


class TrophiesOut(BaseModel):
    user_id: str
    counts: TrophyCounts
    badges: list[AwardedBadgeOut]
    best_ranks: list[BestRank]


TIERS: tuple[str, ...] = ("gold", "silver", "bronze", "participant")


def season_badge_code(season: str, tier: str) -> str:
    """``SEASON_2026_Q4_GOLD`` for season ``2026-Q4``, tier gold."""
    return f"SEASON_{season.replace('-', '_')}_{tier.upper()}"


def badge_of(code: str) -> dict[str, Any] | None:
    """The catalogue entry of a badge code: a milestone, or a season's medal."""
    if code in MILESTONES:
        return MILESTONES[code]
    parts = code.split("_")
    if len(parts) == 4 and parts[0] == "SEASON" and parts[3].lower() in TIERS:
        season, tier = f"{parts[1]}-{parts[2]}", parts[3].lower()
        return {
            "code": code,
            "name": f"{season} {tier}",
            "description": f"Ranked {tier} on the {season} season's final board"
            if tier != "participant"
            else f"Ranked on the {season} season's final board",
            "tier": tier,
            "category": "season",
            "season": season,
            "icon_url": None,
        }
    return None


class SeasonClosedOut(BaseModel):
    season: str
    awarded: dict[str, Any]
