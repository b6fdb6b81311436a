"""The one place that turns errors into HTTP responses."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from quart import Quart, Response, current_app, jsonify
from quart_schema import RequestSchemaValidationError
from quart_schema.validation import QuerystringValidationError
from werkzeug.exceptions import HTTPException

from protocol.errors import BadRequest, Internal, NotFound, ProtocolError, ValidationFailed

log = logging.getLogger("seda.http")

_GENERIC_BY_STATUS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "bad request"),
    401: ("unauthorized", "authentication required"),
    403: ("forbidden", "forbidden"),
    404: ("not_found", "no such resource"),
    405: ("bad_request", "method not allowed on this path"),
    409: ("conflict", "conflict"),
    413: ("bad_request", "request body too large"),
    415: ("bad_request", "unsupported media type"),
    429: ("rate_limited", "too many requests"),
}


# pydantic error types meaning "the whole input had the wrong shape".
_NOT_AN_OBJECT = frozenset({"model_type", "dict_type", "model_attributes_type", "dataclass_type"})


def no_content() -> Response:
    """An empty 204, built by the app's own response class (the trio-aware one)."""
    return current_app.response_class("", status=204)


def error_response(error: ProtocolError) -> Response:
    response = jsonify({"error": error.to_body()})
    response.status_code = error.http_status
    return response


def _field_name(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def from_validation_error(exc: Exception, *, where: str) -> ProtocolError:
    """A pydantic failure as a ``bad_request`` naming the first offending field."""
    if isinstance(exc, ValidationError):
        errors = exc.errors(include_url=False, include_input=False)
        if errors and not errors[0]["loc"] and errors[0]["type"] in _NOT_AN_OBJECT:
            return BadRequest(f"the {where} must be a JSON object", field=where)
        listed = [{"field": _field_name(e["loc"]), "message": e["msg"]} for e in errors]
        first = listed[0] if listed else {"field": where, "message": "invalid"}
        return ValidationFailed(
            f"{first['field']}: {first['message']}", field=first["field"], details={"errors": listed}
        )
    return BadRequest(f"invalid {where}: {exc}", field=where)


def install_error_handlers(app: Quart) -> None:
    @app.errorhandler(ProtocolError)
    async def _protocol(error: ProtocolError) -> Response:
        return error_response(error)

    @app.errorhandler(RequestSchemaValidationError)
    async def _schema(error: RequestSchemaValidationError) -> Response:
        where = "query" if isinstance(error, QuerystringValidationError) else "body"
        return error_response(from_validation_error(error.validation_error, where=where))

    @app.errorhandler(HTTPException)
    async def _http(error: HTTPException) -> Response:
        status = error.code or 500
        if status == 400:
            return error_response(BadRequest("request body is not valid JSON", field="body"))
        if status == 404:
            return error_response(NotFound("no such path"))
        code, message = _GENERIC_BY_STATUS.get(status, ("internal", "internal error"))
        response = jsonify({"error": {"code": code, "message": message}})
        response.status_code = status
        return response

    @app.errorhandler(Exception)
    async def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error in request", exc_info=error)
        return error_response(Internal("internal error"))
