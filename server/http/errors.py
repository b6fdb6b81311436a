"""The one place that turns errors into HTTP responses, and documents them in the OpenAPI."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from quart import Quart, Response, current_app, jsonify, request
from quart_schema import RequestSchemaValidationError
from quart_schema.openapi import OpenAPIProvider
from quart_schema.validation import QUART_SCHEMA_RESPONSE_ATTRIBUTE, QuerystringValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from protocol.errors import BadRequest, Internal, NotFound, ProtocolError, RateLimited, ValidationFailed
from protocol.text import unstorable, unstorable_fields

log = logging.getLogger("seda.http")

F = TypeVar("F", bound=Callable[..., Any])

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


class ErrorDetails(BaseModel):
    """More about the error: ``field`` names the offending input (``errors`` lists every one)."""

    model_config = ConfigDict(extra="allow")
    field: str | None = Field(default=None, description="The offending field: a.b.0 for body, query or path")
    errors: list[dict[str, str]] | None = Field(
        default=None, description="Every failed field of a 422, as {field, message}"
    )


class ErrorBody(BaseModel):
    code: str = Field(
        description="Stable code shared with the live protocol: bad_request, unauthorized, forbidden, "
        "not_found, conflict, rate_limited, muted, no_session, session_active, not_dj, queue_full, internal"
    )
    message: str
    details: ErrorDetails | None = None
    retry_after_ms: int | None = Field(default=None, description="With rate_limited: when to try again")


class ErrorOut(BaseModel):
    """An error (every 4xx and 5xx has this shape)."""

    error: ErrorBody


class NoContent(BaseModel):
    """No content."""


class PlainText(BaseModel):
    """Plain text."""


def documents(model: type[BaseModel], *statuses: int) -> Callable[[F], F]:
    """Document responses that quart-schema cannot validate: a ready-made Response (204, text).

    ``NoContent`` documents a response without a body, ``PlainText`` a text/plain one, and
    ``ErrorOut`` an error status beyond the 4XX every operation already documents.
    """

    def decorator(func: F) -> F:
        schemas: dict[int, tuple[type[BaseModel], None]] = getattr(func, QUART_SCHEMA_RESPONSE_ATTRIBUTE, {})
        for status in statuses:
            schemas[status] = (model, None)
        setattr(func, QUART_SCHEMA_RESPONSE_ATTRIBUTE, schemas)
        return func

    return decorator


class _DocumentedErrors(OpenAPIProvider):
    """quart-schema's OpenAPI, plus the error shape on every operation and bodiless 204s."""

    def build_paths(self, rule: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        paths, components = super().build_paths(rule)
        errors, error_components = super().build_response_object(ErrorOut, None)
        # One view served at a second path (an alias) gets its own endpoint name, and from it its
        # own operationId: quart-schema names operations after the function, twice the same.
        endpoint = rule.endpoint.rsplit(".", 1)[-1]
        aliased = endpoint != self._app.view_functions[rule.endpoint].__name__
        for operations in paths.values():
            for method, operation in operations.items():
                if aliased:
                    operation["operationId"] = f"{method}_{endpoint}"
                # String keys throughout: quart-schema's are ints, and the document's keys get sorted.
                responses = {str(status): response for status, response in operation["responses"].items()}
                operation["responses"] = {**responses, "4XX": responses.get("4XX", errors)}
        components.update(error_components)
        return paths, components

    def build_response_object(
        self, model: type[Any], headers_model: type[Any] | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if model is NoContent:
            return {"description": "No content"}, {}
        if model is PlainText:
            return {
                "description": "Plain text",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }, {}
        return super().build_response_object(model, headers_model)


def no_content() -> Response:
    """An empty 204, built by the app's own response class (the trio-aware one)."""
    return current_app.response_class("", status=204)


def error_response(error: ProtocolError) -> Response:
    response = jsonify({"error": error.to_body()})
    response.status_code = error.http_status
    if isinstance(error, RateLimited):  # HTTP's own way to say when, in whole seconds
        response.headers["Retry-After"] = str(math.ceil(error.retry_after_ms / 1000))
    return response


def _field_name(loc: tuple[Any, ...], where: str) -> str:
    return ".".join(str(part) for part in loc) or where


def from_validation_error(exc: Exception, *, where: str) -> ProtocolError:
    """A pydantic failure as a ``bad_request`` naming the first offending field."""
    if isinstance(exc, ValidationError):
        errors = exc.errors(include_url=False, include_input=False)
        if errors and not errors[0]["loc"] and errors[0]["type"] in _NOT_AN_OBJECT:
            return BadRequest(f"the {where} must be a JSON object", field=where)
        listed = [{"field": _field_name(e["loc"], where), "message": e["msg"]} for e in errors]
        first = listed[0] if listed else {"field": where, "message": "invalid"}
        return ValidationFailed(
            f"{first['field']}: {first['message']}", field=first["field"], details={"errors": listed}
        )
    return BadRequest(f"invalid {where}: {exc}", field=where)


async def reject_unstorable_text() -> None:
    """Refuse any path, query or JSON body text with a NUL or a lone surrogate, naming the field.

    One check at the door for every endpoint: such text is never meaningful, and Postgres
    would refuse it only after the request had started changing things.
    """
    for name, value in (request.view_args or {}).items():
        if isinstance(value, str) and unstorable(value):
            raise ValidationFailed(f"{name}: must not contain NUL characters", field=name)
    for name, value in request.args.items(multi=True):
        if unstorable(name) or unstorable(value):
            raise ValidationFailed(f"{name}: must not contain NUL characters", field=name or "query")
    if request.is_json:
        body = await request.get_json(silent=True)
        for field in unstorable_fields(body):
            raise ValidationFailed(
                f"{field}: must not contain NUL characters or unpaired surrogates", field=field or "body"
            )


def install_error_handlers(app: Quart) -> None:
    """Error responses for everything raised in a request, the input check, and their OpenAPI."""
    schema = app.extensions.get("QUART_SCHEMA")
    if schema is None:
        raise RuntimeError("install the error handlers after QuartSchema, which they document")
    schema.openapi_provider = _DocumentedErrors(app, schema)
    app.before_request(reject_unstorable_text)

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
        body: dict[str, Any] = {"code": code, "message": message}
        allowed = sorted(error.valid_methods or []) if isinstance(error, MethodNotAllowed) else []
        if allowed:
            method = request.method[:32]
            body["message"] = f"{method} is not allowed on this path (allowed: {', '.join(allowed)})"
            body["details"] = {"allowed": allowed}
        response = jsonify({"error": body})
        response.status_code = status
        if allowed:
            response.headers["Allow"] = ", ".join(allowed)  # RFC 9110: a 405 names what is allowed
        return response

    @app.errorhandler(UnicodeDecodeError)
    async def _undecodable(error: UnicodeDecodeError) -> Response:
        # Quart decodes a JSON body as UTF-8 without catching the failure: that is the client's
        # bad input. Any other UnicodeDecodeError is ours.
        if not await _body_is_utf8():
            return error_response(BadRequest("request body is not valid UTF-8", field="body"))
        return await _unexpected(error)

    @app.errorhandler(Exception)
    async def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error in request", exc_info=error)
        return error_response(Internal("internal error"))


async def _body_is_utf8() -> bool:
    raw = await request.get_data(as_text=False)
    if isinstance(raw, str):
        return True
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    return True
