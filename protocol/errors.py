"""Error codes shared by the live protocol and the REST API.

Rules raise a :class:`ProtocolError` subclass; exactly one place in the live
gateway turns it into a ``reply`` and exactly one place in the HTTP app turns
it into an error response.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ProtocolError(Exception):
    """A refusal the client is told about, with a stable ``code``."""

    code: ClassVar[str] = "internal"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, *, field: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.details: dict[str, Any] = dict(details or {})
        if field is not None:
            self.details.setdefault("field", field)

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class BadRequest(ProtocolError):
    code = "bad_request"
    http_status = 400


class ValidationFailed(BadRequest):
    """A well-formed body or query whose fields break the schema (HTTP 422)."""

    http_status = 422


class Unauthorized(ProtocolError):
    code = "unauthorized"
    http_status = 401


class Forbidden(ProtocolError):
    code = "forbidden"
    http_status = 403


class NotFound(ProtocolError):
    code = "not_found"
    http_status = 404


class Conflict(ProtocolError):
    code = "conflict"
    http_status = 409


class RateLimited(ProtocolError):
    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after_ms: int):
        super().__init__(message)
        self.retry_after_ms = retry_after_ms

    def to_body(self) -> dict[str, Any]:
        body = super().to_body()
        body["retry_after_ms"] = self.retry_after_ms
        return body


class Muted(ProtocolError):
    code = "muted"
    http_status = 403


class NoSession(ProtocolError):
    code = "no_session"
    http_status = 409


class SessionActive(ProtocolError):
    code = "session_active"
    http_status = 409


class NotDJ(ProtocolError):
    code = "not_dj"
    http_status = 403


class QueueFull(ProtocolError):
    code = "queue_full"
    http_status = 409


class RecentlyPlayed(ProtocolError):
    """The track started in this room within the session's repeat window (PROTOCOL.md "Repeat
    guard"); the error carries when, as ``last_played_at`` (ms)."""

    code = "recently_played"
    http_status = 409

    def __init__(self, message: str, *, last_played_at: int | None = None, field: str | None = "track"):
        super().__init__(message, field=field, details={"last_played_at": last_played_at})
        self.last_played_at = last_played_at

    def to_body(self) -> dict[str, Any]:
        body = super().to_body()
        body["last_played_at"] = self.last_played_at
        return body


class TrackTooLong(ProtocolError):
    code = "track_too_long"
    http_status = 400


class Internal(ProtocolError):
    code = "internal"
    http_status = 500


class ServiceUnavailable(Internal):
    """Not running right now (starting or shutting down)."""

    http_status = 503


class OwnershipLost(RuntimeError):
    """This node no longer owns the room (its lease moved): its actor stops, and the room's
    sockets here close with 1012 to resume wherever the room lives now."""


class OwnedElsewhere(RuntimeError):
    """Another node holds the room's lease: this node serves the room as an edge."""


def error_from_body(body: dict[str, Any], http_status: int | None = None) -> ProtocolError:
    """The refusal another node sent as ``to_body()`` (the cluster's ops go over the bus)."""
    code = str(body.get("code", "internal"))
    message = str(body.get("message", ""))
    details = body.get("details") if isinstance(body.get("details"), dict) else None
    if code == "rate_limited":
        return RateLimited(message, retry_after_ms=int(body.get("retry_after_ms", 0)))
    if code == "recently_played":
        last = body.get("last_played_at")
        return RecentlyPlayed(message, last_played_at=last if isinstance(last, int) else None)
    kind = _BY_CODE.get(code, Internal)
    for candidate in _subclasses(kind):  # 422 ValidationFailed, 503 ServiceUnavailable
        if candidate.code == code and candidate.http_status == http_status:
            kind = candidate
    error = kind.__new__(kind)
    ProtocolError.__init__(error, message, details=details)
    error.field = (details or {}).get("field")
    return error


def _subclasses(cls: type[ProtocolError]) -> list[type[ProtocolError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_subclasses(sub))
    return out


# the most general class per code (ValidationFailed and ServiceUnavailable share their parents' codes)
_BY_CODE: dict[str, type[ProtocolError]] = {}
for _kind in _subclasses(ProtocolError):
    _BY_CODE.setdefault(_kind.code, _kind)
