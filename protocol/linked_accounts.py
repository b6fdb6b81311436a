"""REST shapes of linked music accounts (REST.md "Recommendations and linked accounts")."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, RootModel

LinkProvider = Literal["spotify", "apple_music", "youtube_music", "deezer", "bandcamp"]
LINK_PROVIDERS: tuple[str, ...] = ("spotify", "apple_music", "youtube_music", "deezer", "bandcamp")


class LinkBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider_user_id: str = Field(min_length=1, max_length=200)
    access_token: str = Field(min_length=1, max_length=8192)
    refresh_token: str | None = Field(default=None, min_length=1, max_length=8192)
    expires_at: AwareDatetime | None = None


class LinkedAccountOut(BaseModel):
    """A linked account; its tokens are never returned."""

    provider: LinkProvider
    provider_user_id: str
    expires_at: datetime | None
    last_sync_at: datetime | None
    created_at: datetime


class LinkedAccounts(RootModel[list[LinkedAccountOut]]):
    pass
