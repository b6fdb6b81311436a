"""REST shapes for artist verification: the request, and the admin's decision."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from protocol.refs import UserRef
from protocol.tracks import HttpsUrl

VerificationStatus = Literal["pending", "approved", "denied"]


def _distinct(links: list[str]) -> list[str]:
    seen: list[str] = []
    for link in links:
        if link not in seen:
            seen.append(link)
    return seen


class VerificationRequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    artist_name: str = Field(min_length=1, max_length=100, pattern=r"\S")
    links: Annotated[list[HttpsUrl], Field(min_length=1, max_length=10), AfterValidator(_distinct)]
    message: str | None = Field(default=None, max_length=2000)


class DenyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000, pattern=r"\S")


class VerificationOut(BaseModel):
    id: str
    user: UserRef
    artist_name: str
    links: list[str]
    message: str | None
    status: VerificationStatus
    reason: str | None
    reviewed_by: str | None
    reviewed_at: str | None
    created_at: str


class VerificationPage(BaseModel):
    items: list[VerificationOut]
    next_cursor: str | None
