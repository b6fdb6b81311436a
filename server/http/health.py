"""Liveness, readiness and metrics."""

from __future__ import annotations

from typing import Any

import trio
from quart import Blueprint, Response, current_app

from protocol.errors import ServiceUnavailable
from server.http.principal import app_context
from server.metrics import CONTENT_TYPE
from storage.database import ConnectionLost, PostgresError

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
async def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@blueprint.get("/readyz")
async def readyz() -> dict[str, Any]:
    try:
        with trio.fail_after(2):
            await app_context().db.fetchval("SELECT 1")
    except (trio.TooSlowError, PostgresError, *ConnectionLost):
        raise ServiceUnavailable("database unreachable") from None
    return {"status": "ready"}


@blueprint.get("/metrics")
async def metrics() -> Response:
    return current_app.response_class(app_context().metrics.render(), content_type=CONTENT_TYPE)
