"""Track links as people paste them, and TrackInput validation."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from protocol.errors import BadRequest
from protocol.ops import PinTrackData, parse_op_data
from protocol.tracks import PROVIDERS, TrackInput, UnparsableLink, parse_track_url

SPOTIFY_ID = "4cOdK2wGLETKBW3PvgPWqT"


@pytest.mark.parametrize(
    ("url", "provider", "provider_id"),
    [
        # Spotify: share links carry ?si=, some add a locale segment, the desktop app copies URIs
        (f"https://open.spotify.com/track/{SPOTIFY_ID}?si=7c1f0e1a9b2d4c3e", "spotify", SPOTIFY_ID),
        (f"https://open.spotify.com/track/{SPOTIFY_ID}", "spotify", SPOTIFY_ID),
        (f"https://open.spotify.com/intl-de/track/{SPOTIFY_ID}?si=abc123", "spotify", SPOTIFY_ID),
        (f"https://open.spotify.com/intl-pt/track/{SPOTIFY_ID}", "spotify", SPOTIFY_ID),
        (f"spotify:track:{SPOTIFY_ID}", "spotify", SPOTIFY_ID),
        (
            f"  https://open.spotify.com/track/{SPOTIFY_ID}?si=x \n",
            "spotify",
            SPOTIFY_ID,
        ),  # pasted with spaces
        (f"http://open.spotify.com/track/{SPOTIFY_ID}", "spotify", SPOTIFY_ID),  # http is fine too
        # Apple Music: an album link pointing at one song (?i=), or a song link
        (
            "https://music.apple.com/us/album/never-gonna-give-you-up/1558533900?i=1558534271",
            "apple_music",
            "1558534271",
        ),
        (
            "https://music.apple.com/gb/album/whenever-you-need-somebody/1558533900?i=1558534271&l=en",
            "apple_music",
            "1558534271",
        ),
        ("https://music.apple.com/us/song/never-gonna-give-you-up/1558534271", "apple_music", "1558534271"),
        ("https://music.apple.com/de/song/1558534271", "apple_music", "1558534271"),
        (
            "https://itunes.apple.com/us/album/never-gonna-give-you-up/id1558533900?i=1558534271",
            "apple_music",
            "1558534271",
        ),
        # YouTube
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ", "youtube", "dQw4w9WgXcQ"),
        (
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ&list=PLFgquLnL59alCl_2TQvOiD5Vgm1hCaGSI&index=2&t=43s",
            "youtube",
            "dQw4w9WgXcQ",
        ),
        ("https://www.youtube.com/watch?feature=share&v=dQw4w9WgXcQ", "youtube", "dQw4w9WgXcQ"),
        ("https://youtu.be/dQw4w9WgXcQ?si=Xy3kLm9_abcDEF12", "youtube", "dQw4w9WgXcQ"),
        ("https://youtu.be/dQw4w9WgXcQ", "youtube", "dQw4w9WgXcQ"),
        ("https://music.youtube.com/watch?v=dQw4w9WgXcQ&feature=share", "youtube", "dQw4w9WgXcQ"),
        ("https://m.youtube.com/watch?v=dQw4w9WgXcQ", "youtube", "dQw4w9WgXcQ"),
        ("https://youtube.com/shorts/aB3_-dEfGhI?feature=share", "youtube", "aB3_-dEfGhI"),
        ("https://www.youtube.com/shorts/aB3_-dEfGhI", "youtube", "aB3_-dEfGhI"),
        # SoundCloud: share links carry utm parameters; permalinks are case-insensitive
        (
            "https://soundcloud.com/rick-astley-official/never-gonna-give-you-up-4"
            "?utm_source=clipboard&utm_medium=text&utm_campaign=social_sharing",
            "soundcloud",
            "rick-astley-official/never-gonna-give-you-up-4",
        ),
        ("https://soundcloud.com/Flume/Say-It", "soundcloud", "flume/say-it"),
        ("https://m.soundcloud.com/flume/say-it", "soundcloud", "flume/say-it"),
        ("https://soundcloud.com/flume/say-it?in=flume/sets/skin", "soundcloud", "flume/say-it"),
        # Bandcamp
        ("https://tychomusic.bandcamp.com/track/awake", "bandcamp", "tychomusic/awake"),
        ("https://tychomusic.bandcamp.com/track/awake?from=discover_page", "bandcamp", "tychomusic/awake"),
        ("https://TychoMusic.bandcamp.com/track/Awake", "bandcamp", "tychomusic/awake"),
        # Deezer
        ("https://www.deezer.com/track/3135556", "deezer", "3135556"),
        ("https://deezer.com/track/3135556", "deezer", "3135556"),
        ("https://www.deezer.com/en/track/3135556", "deezer", "3135556"),
        (
            "https://www.deezer.com/fr/track/3135556?utm_source=deezer&utm_content=track-3135556",
            "deezer",
            "3135556",
        ),
    ],
)
def test_track_links(url: str, provider: str, provider_id: str) -> None:
    assert parse_track_url(url) == (provider, provider_id)
    assert provider in PROVIDERS


@pytest.mark.parametrize(
    "url",
    [
        # unknown hosts and short links (they need a network round trip to resolve)
        "https://example.com/track/123",
        "https://tidal.com/browse/track/77646168",
        "https://spotify.link/AbCdEf123",
        "https://spoti.fi/3xYzAbC",
        "https://on.soundcloud.com/AbCdEf",
        "https://deezer.page.link/AbCdEf",
        "https://link.deezer.com/s/30abc",
        "https://open.spotify.com.evil.example/track/" + SPOTIFY_ID,
        "https://bandcamp.com/track/awake",
        # not http(s)
        f"ftp://open.spotify.com/track/{SPOTIFY_ID}",
        f"file:///open.spotify.com/track/{SPOTIFY_ID}",
        f"open.spotify.com/track/{SPOTIFY_ID}",
        "",
        "not a link",
        # Spotify: albums, playlists, artists, bad ids
        "https://open.spotify.com/album/4LH4d3cOWNNsVw41Gqt2kv?si=abc",
        "https://open.spotify.com/playlist/37i9dQZF1DXcBWIGoYBM5M",
        "https://open.spotify.com/artist/0gxyHStUsqpMadRV0Di1Qt",
        "https://open.spotify.com/track/tooShort",
        "https://open.spotify.com/",
        "spotify:album:4LH4d3cOWNNsVw41Gqt2kv",
        "spotify:track:tooShort",
        # Apple Music: an album without ?i=, playlists, artists
        "https://music.apple.com/us/album/whenever-you-need-somebody/1558533900",
        "https://music.apple.com/us/playlist/todays-hits/pl.f4d106fed2bd41149aaacabb233eb5eb",
        "https://music.apple.com/us/artist/rick-astley/669771",
        "https://music.apple.com/us/album/x/1558533900?i=abc",
        # YouTube: playlists, channels, bad ids
        "https://www.youtube.com/playlist?list=PLFgquLnL59alCl_2TQvOiD5Vgm1hCaGSI",
        "https://www.youtube.com/@RickAstleyYT",
        "https://www.youtube.com/watch?v=tooshort",
        "https://www.youtube.com/watch?list=PLFgquLnL59alCl_2TQvOiD5Vgm1hCaGSI",
        "https://youtu.be/",
        "https://youtu.be/dQw4w9WgXcQ/extra",
        # SoundCloud: sets (playlists), user pages, site pages
        "https://soundcloud.com/flume/sets/skin",
        "https://soundcloud.com/flume/sets",
        "https://soundcloud.com/flume",
        "https://soundcloud.com/flume/tracks",
        "https://soundcloud.com/flume/albums",
        "https://soundcloud.com/flume/reposts",
        "https://soundcloud.com/flume/likes",
        "https://soundcloud.com/discover/sets",
        "https://soundcloud.com/search/sounds",
        "https://soundcloud.com/flume/say-it/s-AbCdEf",  # three segments
        # Bandcamp: albums and the artist page
        "https://tychomusic.bandcamp.com/album/awake",
        "https://tychomusic.bandcamp.com/",
        # Deezer: albums, playlists, artists
        "https://www.deezer.com/album/302127",
        "https://www.deezer.com/en/album/302127",
        "https://www.deezer.com/en/playlist/908622995",
        "https://www.deezer.com/en/artist/27",
        "https://www.deezer.com/track/abc",
    ],
)
def test_links_that_are_not_tracks_are_refused(url: str) -> None:
    with pytest.raises(UnparsableLink):
        parse_track_url(url)


@pytest.mark.parametrize("tab", ["popular-tracks", "followers", "following", "comments"])
def test_soundcloud_profile_tabs_are_not_tracks(tab: str) -> None:
    with pytest.raises(UnparsableLink):
        parse_track_url(f"https://soundcloud.com/flume/{tab}")


def test_unparsable_link_is_a_value_error() -> None:
    assert issubclass(UnparsableLink, ValueError)


def test_one_track_many_link_shapes_gives_one_key() -> None:
    """Tracks are deduplicated by (provider, provider_id), so every shape of a link must agree."""
    spotify = {
        parse_track_url(u)
        for u in (
            f"https://open.spotify.com/track/{SPOTIFY_ID}?si=a",
            f"https://open.spotify.com/track/{SPOTIFY_ID}?si=b",
            f"https://open.spotify.com/intl-fr/track/{SPOTIFY_ID}",
            f"spotify:track:{SPOTIFY_ID}",
        )
    }
    youtube = {
        parse_track_url(u)
        for u in (
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=1",
            "https://youtu.be/dQw4w9WgXcQ?si=zz",
            "https://music.youtube.com/watch?v=dQw4w9WgXcQ",
        )
    }
    soundcloud = {
        parse_track_url(u)
        for u in ("https://soundcloud.com/Flume/Say-It", "https://soundcloud.com/flume/say-it")
    }
    assert len(spotify) == len(youtube) == len(soundcloud) == 1


# ---- TrackInput ---------------------------------------------------------------------------------------

BASE: dict[str, Any] = {"title": "Never Gonna Give You Up", "artist": "Rick Astley", "duration_ms": 213_000}


def test_track_input_by_provider_id() -> None:
    t = TrackInput.model_validate({**BASE, "provider": "spotify", "provider_id": SPOTIFY_ID})
    assert (t.provider, t.provider_id, t.url) == ("spotify", SPOTIFY_ID, None)


def test_track_input_url_resolves_provider_and_id() -> None:
    t = TrackInput.model_validate({**BASE, "url": "https://youtu.be/dQw4w9WgXcQ?si=abc"})
    assert (t.provider, t.provider_id) == ("youtube", "dQw4w9WgXcQ")
    spec = t.spec()
    assert (spec.provider, spec.provider_id, spec.duration_ms) == ("youtube", "dQw4w9WgXcQ", 213_000)
    assert spec.with_id("t-9") == {
        "id": "t-9",
        "provider": "youtube",
        "provider_id": "dQw4w9WgXcQ",
        "title": "Never Gonna Give You Up",
        "artist": "Rick Astley",
        "duration_ms": 213_000,
        "artwork_url": None,
    }


def test_track_input_trims_title_and_artist_in_spec() -> None:
    t = TrackInput.model_validate(
        {**BASE, "title": "  Song ", "artist": " Band\n", "provider": "upload", "provider_id": "u1"}
    )
    assert (t.spec().title, t.spec().artist) == ("Song", "Band")


@pytest.mark.parametrize(
    "extra",
    [
        {"url": "https://youtu.be/dQw4w9WgXcQ", "provider": "youtube"},
        {"url": "https://youtu.be/dQw4w9WgXcQ", "provider_id": "dQw4w9WgXcQ"},
        {"url": "https://youtu.be/dQw4w9WgXcQ", "provider": "youtube", "provider_id": "dQw4w9WgXcQ"},
    ],
)
def test_track_input_url_and_provider_together_is_invalid(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="not both"):
        TrackInput.model_validate({**BASE, **extra})


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"provider": "spotify"},
        {"provider_id": SPOTIFY_ID},
        {"provider": "tidal", "provider_id": "1"},
        {"provider": "spotify", "provider_id": ""},
        {"url": ""},
        {"url": "https://open.spotify.com/album/4LH4d3cOWNNsVw41Gqt2kv"},
        {"provider": "spotify", "provider_id": SPOTIFY_ID, "genre": "pop"},  # unknown fields are refused
    ],
)
def test_track_input_needs_a_provider_id_or_a_track_link(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TrackInput.model_validate({**BASE, **extra})


@pytest.mark.parametrize(
    ("duration", "ok"), [(999, False), (1000, True), (7_200_000, True), (7_200_001, False), (0, False)]
)
def test_track_input_duration_bounds(duration: int, ok: bool) -> None:
    data = {**BASE, "duration_ms": duration, "provider": "upload", "provider_id": "u1"}
    if ok:
        assert TrackInput.model_validate(data).duration_ms == duration
    else:
        with pytest.raises(ValidationError):
            TrackInput.model_validate(data)


@pytest.mark.parametrize(
    ("artwork", "ok"),
    [
        ("https://i.scdn.co/image/ab67616d0000b273", True),
        (None, True),
        ("http://i.scdn.co/image/ab67616d0000b273", False),
        ("javascript:alert(1)", False),
        ("https://has space.example/x.jpg", False),
        ("//i.scdn.co/image/x", False),
    ],
)
def test_track_input_artwork_must_be_https(artwork: str | None, ok: bool) -> None:
    data = {**BASE, "provider": "spotify", "provider_id": SPOTIFY_ID, "artwork_url": artwork}
    if ok:
        assert TrackInput.model_validate(data).artwork_url == artwork
    else:
        with pytest.raises(ValidationError):
            TrackInput.model_validate(data)


@pytest.mark.parametrize("field", ["title", "artist"])
def test_track_input_title_and_artist_are_required(field: str) -> None:
    data = {**BASE, "provider": "upload", "provider_id": "u1"}
    for bad in (None, "", "x" * 301):
        with pytest.raises(ValidationError):
            TrackInput.model_validate({**data, field: bad})
    del data[field]
    with pytest.raises(ValidationError):
        TrackInput.model_validate(data)


def test_unparsable_link_in_an_op_is_a_bad_request() -> None:
    track = {**BASE, "url": "https://open.spotify.com/playlist/37i9dQZF1DXcBWIGoYBM5M"}
    with pytest.raises(BadRequest) as info:
        parse_op_data("chat.send", {"text": "listen", "track": track})
    assert info.value.field is not None and info.value.field.startswith("track")
    assert info.value.code == "bad_request"
    with pytest.raises(BadRequest):
        parse_op_data("room.pin_track", {"track": {**BASE, "url": "ftp://youtu.be/dQw4w9WgXcQ"}})
    ok = parse_op_data("room.pin_track", {"track": {**BASE, "url": "https://youtu.be/dQw4w9WgXcQ"}})
    assert isinstance(ok, PinTrackData) and ok.track is not None and ok.track.provider == "youtube"
