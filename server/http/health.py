"""Liveness, readiness and metrics."""

from __future__ import annotations

from typing import Any, Literal

import trio
from pydantic import BaseModel
from quart import Blueprint, Response, current_app
from quart_schema import validate_response

from protocol.errors import ServiceUnavailable
from server.http.errors import ErrorOut, PlainText, documents
from server.http.principal import app_context
from server.metrics import CONTENT_TYPE
from storage.database import ConnectionLost, PostgresError

blueprint = Blueprint("health", __name__)


class LiveOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    status: Literal["ready"]


@blueprint.get("/healthz")
@validate_response(LiveOut, 200)
async def healthz() -> dict[str, Any]:
    """The process is up."""
    return {"status": "ok"}


@blueprint.get("/readyz")
@validate_response(ReadyOut, 200)
@documents(ErrorOut, 503)
async def readyz() -> dict[str, Any]:
    """The database answers (503 if it does not within 2 s)."""
    try:
        with trio.fail_after(2):
            await app_context().db.fetchval("SELECT 1")
    except (trio.TooSlowError, PostgresError, *ConnectionLost):
        raise ServiceUnavailable("database unreachable") from None
    return {"status": "ready"}


@blueprint.get("/metrics")
@documents(PlainText, 200)
async def metrics() -> Response:
    """Prometheus metrics, in its text exposition format."""
    return current_app.response_class(app_context().metrics.render(), content_type=CONTENT_TYPE)
