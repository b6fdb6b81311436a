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


class Internal(ProtocolError):
    code = "internal"
    http_status = 500


class ServiceUnavailable(Internal):
    """Not running right now (starting or shutting down)."""

    http_status = 503
