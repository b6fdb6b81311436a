"""TrackInput: a track given by provider id or by a provider link."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

PROVIDERS = ("spotify", "apple_music", "youtube", "soundcloud", "bandcamp", "deezer", "upload")
Provider = Literal["spotify", "apple_music", "youtube", "soundcloud", "bandcamp", "deezer", "upload"]

_SPOTIFY_ID = re.compile(r"^[A-Za-z0-9]{22}$")
_YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
_DIGITS = re.compile(r"^\d{1,20}$")
_SLUG = re.compile(r"^[A-Za-z0-9_.-]{1,255}$")
# Second path segments that are a SoundCloud profile's pages, not a track.
_SOUNDCLOUD_PROFILE_TABS = frozenset(
    {
        "sets",
        "tracks",
        "likes",
        "albums",
        "reposts",
        "popular-tracks",
        "followers",
        "following",
        "comments",
        "spotlight",
        "playlists",
    }
)
_YOUTUBE_HOSTS = {"youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com"}


class UnparsableLink(ValueError):
    """A link that is not a track on a provider we know."""


def _host(netloc: str) -> str:
    return netloc.lower().rsplit("@", 1)[-1].split(":", 1)[0]


def parse_track_url(url: str) -> tuple[str, str]:
    """``(provider, provider_id)`` for a track link; :class:`UnparsableLink` if it is not one."""
    url = url.strip()
    if url.startswith("spotify:track:"):
        track_id = url.removeprefix("spotify:track:")
        if _SPOTIFY_ID.match(track_id):
            return "spotify", track_id
        raise UnparsableLink("not a Spotify track URI")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnparsableLink("track links must be http(s) URLs")
    host = _host(parts.netloc)
    segments = [s for s in parts.path.split("/") if s]
    query = parse_qs(parts.query)

    if host == "open.spotify.com":
        # /track/{id}, or with a locale prefix such as /intl-de/track/{id}
        if segments and segments[0].startswith("intl-"):
            segments = segments[1:]
        if len(segments) >= 2 and segments[0] == "track" and _SPOTIFY_ID.match(segments[1]):
            return "spotify", segments[1]
        raise UnparsableLink("not a Spotify track link (open.spotify.com/track/…)")

    if host in ("music.apple.com", "itunes.apple.com"):
        # /{cc}/album/{slug}/{albumId}?i={trackId} or /{cc}/song/{slug}/{id}
        if len(segments) >= 2 and segments[1] == "album" and "i" in query and _DIGITS.match(query["i"][0]):
            return "apple_music", query["i"][0]
        if len(segments) >= 3 and segments[1] == "song" and _DIGITS.match(segments[-1]):
            return "apple_music", segments[-1]
        raise UnparsableLink("not an Apple Music song link (an album link needs ?i=<track id>)")

    if host in _YOUTUBE_HOSTS:
        candidate = None
        if segments == ["watch"] and "v" in query:
            candidate = query["v"][0]
        elif len(segments) == 2 and segments[0] in ("shorts", "embed", "live", "v"):
            candidate = segments[1]
        if candidate and _YOUTUBE_ID.match(candidate):
            return "youtube", candidate
        raise UnparsableLink("not a YouTube video link")
    if host == "youtu.be":
        if len(segments) == 1 and _YOUTUBE_ID.match(segments[0]):
            return "youtube", segments[0]
        raise UnparsableLink("not a YouTube video link")

    if host in ("soundcloud.com", "www.soundcloud.com", "m.soundcloud.com"):
        reserved = {"discover", "search", "stream", "you", "charts", "upload", "pages"}
        if (
            len(segments) == 2
            and segments[0] not in reserved
            and segments[1] not in _SOUNDCLOUD_PROFILE_TABS
            and all(_SLUG.match(s) for s in segments)
        ):
            return "soundcloud", f"{segments[0].lower()}/{segments[1].lower()}"
        raise UnparsableLink("not a SoundCloud track link (soundcloud.com/<artist>/<track>)")

    if host.endswith(".bandcamp.com") and host.count(".") == 2:
        artist = host.split(".", 1)[0]
        if len(segments) == 2 and segments[0] == "track" and _SLUG.match(segments[1]):
            return "bandcamp", f"{artist}/{segments[1].lower()}"
        raise UnparsableLink("not a Bandcamp track link (<artist>.bandcamp.com/track/<name>)")

    if host in ("deezer.com", "www.deezer.com"):
        # /track/{id} or /{lang}/track/{id}
        if (
            len(segments) >= 2
            and segments[-2] == "track"
            and _DIGITS.match(segments[-1])
            and len(segments) <= 3
        ):
            return "deezer", segments[-1]
        raise UnparsableLink("not a Deezer track link (deezer.com/track/<id>)")

    raise UnparsableLink(f"links from {host or 'that address'} are not supported")


HttpsUrl = Annotated[str, Field(max_length=2048, pattern=r"^https://[^\s]+$")]


class TrackInput(BaseModel):
    """Either ``provider`` + ``provider_id`` or a ``url``; plus title, artist and duration."""

    model_config = ConfigDict(extra="forbid", strict=True)  # "1000" is not a duration, bytes not a title

    provider: Provider | None = None
    provider_id: str | None = Field(default=None, min_length=1, max_length=255)
    url: str | None = Field(default=None, min_length=1, max_length=2048)
    title: str = Field(min_length=1, max_length=300)
    artist: str = Field(min_length=1, max_length=300)
    duration_ms: int = Field(ge=1000, le=7_200_000)
    artwork_url: HttpsUrl | None = None

    @model_validator(mode="after")
    def _resolve(self) -> TrackInput:
        if not self.title.strip() or not self.artist.strip():
            raise ValueError("title and artist must not be blank")
        if self.url is not None:
            if self.provider is not None or self.provider_id is not None:
                raise ValueError("give either url or provider and provider_id, not both")
            try:
                self.provider, self.provider_id = parse_track_url(self.url)  # type: ignore[assignment]
            except UnparsableLink as exc:
                raise ValueError(f"url: {exc}") from None
        elif self.provider is None or self.provider_id is None:
            raise ValueError("provider and provider_id (or url) are required")
        return self

    def spec(self) -> TrackSpec:
        assert self.provider is not None and self.provider_id is not None
        return TrackSpec(
            self.provider,
            self.provider_id,
            self.title.strip(),
            self.artist.strip(),
            self.duration_ms,
            self.artwork_url,
        )


@dataclass(frozen=True)
class TrackSpec:
    """A parsed TrackInput, before it has a row (and an id)."""

    provider: str
    provider_id: str
    title: str
    artist: str
    duration_ms: int
    artwork_url: str | None

    def with_id(self, track_id: str) -> dict[str, Any]:
        """The Track shape of PROTOCOL.md."""
        return {
            "id": track_id,
            "provider": self.provider,
            "provider_id": self.provider_id,
            "title": self.title,
            "artist": self.artist,
            "duration_ms": self.duration_ms,
            "artwork_url": self.artwork_url,
        }
