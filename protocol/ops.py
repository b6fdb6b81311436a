"""Client messages of the live protocol: the envelope and each op's ``data``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
    field_validator,
)

from protocol.errors import BadRequest
from protocol.text import unstorable_fields
from protocol.tracks import TrackInput

MAX_REF = 2**31 - 1
EMOJIS = ("clap", "fire", "heart", "star", "wave")
Emoji = Literal["clap", "fire", "heart", "star", "wave"]


def _uuid_text(value: Any) -> Any:
    """An id arrives as text in both encodings; bytes or numbers that happen to fit a UUID are refused."""
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a UUID string")  # noqa: TRY004 - pydantic turns only ValueError into a field error
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValueError("must be a UUID string") from None


MessageId = Annotated[uuid.UUID, BeforeValidator(_uuid_text)]


@dataclass(frozen=True)
class Envelope:
    op: str
    ref: int | None
    data: dict[str, Any]


def parse_ref(raw: Any) -> int | None:
    """The ``ref`` if it is a valid one, else None (so an error reply can still carry it)."""
    if isinstance(raw, int) and not isinstance(raw, bool) and 1 <= raw <= MAX_REF:
        return raw
    return None


def parse_envelope(message: Any) -> Envelope:
    """Check ``{"op", "ref"?, "data"?}``; a bad field is a BadRequest naming it."""
    if not isinstance(message, dict):
        raise BadRequest("a message must be an object with an op", field="op")
    op = message.get("op")
    if not isinstance(op, str) or not op:
        raise BadRequest("op must be a non-empty string", field="op")
    raw_ref = message.get("ref")
    ref = parse_ref(raw_ref)
    if raw_ref is not None and ref is None:
        raise BadRequest(f"ref must be an integer from 1 to {MAX_REF}", field="ref")
    data = message.get("data", {})
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BadRequest("data must be an object", field="data")
    return Envelope(op, ref, data)


# What an op's data needs looked up before it reaches its room (server/live/prepare.py does it):
NEW_ID = "new_id"  # the id of what it creates (chosen outside the rules, so they stay pure)
TRACK = "track"  # its ``track`` resolved to a stored track row
MENTIONS = "mentions"  # the @usernames in its ``text``, as user ids
MESSAGES = "messages"  # the messages it names (``message_id``, ``reply_to``) the room may not hold
TARGET_ROLE = "target_role"  # the role in the room of the user it names (``user_id``)


class _OpData(BaseModel):
    # strict: an ill-typed field ("60" for seconds, true for a ratio, bytes for text) is refused,
    # never coerced (PROTOCOL.md "Errors"); ints are still accepted where a float is asked for.
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)
    needs: ClassVar[frozenset[str]] = frozenset()


class NoData(_OpData):
    pass


class ChatSendData(_OpData):
    needs = frozenset({NEW_ID, TRACK, MENTIONS, MESSAGES})
    text: StrictStr  # bounded by the 64 KiB frame; 1-2000 characters after trimming (below)
    reply_to: MessageId | None = None
    track: TrackInput | None = None
    nonce: StrictStr | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("text")
    @classmethod
    def _trimmed(cls, value: str) -> str:
        value = value.strip()
        if not 1 <= len(value) <= 2000:
            raise ValueError("must be 1-2000 characters after trimming")
        return value


class MessageRefData(_OpData):
    needs = frozenset({MESSAGES})
    message_id: MessageId


class ReactData(_OpData):
    needs = frozenset({MESSAGES})
    message_id: MessageId
    emoji: Emoji


class PinTrackData(_OpData):
    needs = frozenset({TRACK})
    track: TrackInput | None


# Session settings (PROTOCOL.md "Fairness, history and personal blocks"): their bounds, once.
RepeatWindow = Annotated[int, Field(ge=0, le=604_800)]  # s; 0 = off
AfkLimit = Annotated[int, Field(ge=0, le=86_400)]  # s; 0 = off
MaxTrack = Annotated[int, Field(ge=0, le=7_200)]  # s; 0 = off
MaxQueue = Annotated[int, Field(ge=1, le=500)]  # items per DJ
SkipRatio = Annotated[float, Field(ge=0.1, le=1.0)]


class SessionStartData(_OpData):
    needs = frozenset({NEW_ID})
    mode: Literal["fan", "artist", "public"]
    skip_ratio: SkipRatio = 0.5
    repeat_window_s: RepeatWindow = 7200
    afk_limit_s: AfkLimit = 1800
    max_track_s: MaxTrack = 900
    max_queue: MaxQueue = 50


class SessionUpdateData(_OpData):
    skip_ratio: SkipRatio | None = None
    repeat_window_s: RepeatWindow | None = None
    afk_limit_s: AfkLimit | None = None
    max_track_s: MaxTrack | None = None
    max_queue: MaxQueue | None = None

    def changes(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class QueueAddData(_OpData):
    needs = frozenset({NEW_ID, TRACK})
    track: TrackInput
    force: bool = False  # a moderator's pass past the repeat guard


class ItemRefData(_OpData):
    item_id: MessageId


class VoteSkipData(_OpData):
    item_id: MessageId
    reason: StrictStr | None = Field(default=None, min_length=1, max_length=100)


class VoteData(_OpData):
    item_id: MessageId
    value: Literal["up", "down", "none"]


class UserRefData(_OpData):
    needs = frozenset({TARGET_ROLE})
    user_id: MessageId


class MoveDjData(_OpData):
    needs = frozenset({TARGET_ROLE})
    user_id: MessageId
    position: int = Field(ge=1, le=25)  # 1 = the next turn after the active DJ's


class MuteData(_OpData):
    needs = frozenset({TARGET_ROLE})
    user_id: MessageId
    seconds: int = Field(ge=1, le=604_800)


class KickData(_OpData):
    needs = frozenset({TARGET_ROLE})
    user_id: MessageId
    reason: StrictStr | None = Field(default=None, max_length=500)


class BanData(_OpData):
    needs = frozenset({TARGET_ROLE})
    user_id: MessageId
    seconds: int | None = Field(default=None, ge=1, le=10 * 365 * 86_400)
    reason: StrictStr | None = Field(default=None, max_length=500)


OP_DATA: dict[str, type[_OpData]] = {
    "ping": NoData,
    "chat.send": ChatSendData,
    "chat.delete": MessageRefData,
    "chat.react": ReactData,
    "chat.unreact": ReactData,
    "chat.pin": MessageRefData,
    "chat.unpin": MessageRefData,
    "room.pin_track": PinTrackData,
    "session.start": SessionStartData,
    "session.update": SessionUpdateData,
    "session.stop": NoData,
    "dj.join": NoData,
    "dj.leave": NoData,
    "queue.add": QueueAddData,
    "queue.remove": ItemRefData,
    "vote": VoteData,
    "vote.skip": VoteSkipData,
    "mod.skip": NoData,
    "mod.remove_dj": UserRefData,
    "mod.move_dj": MoveDjData,
    "mod.clear_queue": NoData,
    "mod.mute": MuteData,
    "mod.unmute": UserRefData,
    "mod.kick": KickData,
    "mod.ban": BanData,
    "mod.unban": UserRefData,
    "mod.clear_reactions": MessageRefData,
}


def parse_op_data(op: str, data: dict[str, Any]) -> _OpData:
    """Validate ``data`` for ``op``; an unknown op or a bad field is a BadRequest naming it."""
    model = OP_DATA.get(op)
    if model is None:
        raise BadRequest(f"unknown op {op!r}", field="op")
    for where in unstorable_fields(data):
        raise BadRequest(
            f"{where or 'data'}: must not contain NUL characters or unpaired surrogates",
            field=where or "data",
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "data"
        message = first["msg"].removeprefix("Value error, ")
        raise BadRequest(f"{where}: {message}", field=where) from None
