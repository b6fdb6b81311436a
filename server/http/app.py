"""The REST app: Quart-Trio with quart-schema validation and OpenAPI."""

from __future__ import annotations

import time

from quart import Response, g, request
from quart_schema import Info, QuartSchema
from quart_trio import QuartTrio

from server.context import AppContext
from server.http import (
    accounts,
    badges,
    dj,
    feed,
    health,
    leaderboards,
    linked_accounts,
    marketplace,
    moderation,
    notifications,
    playlists,
    profiles,
    progression,
    recommendations,
    reports,
    rooms,
    sanctions,
    search,
    seasons,
    social,
    verification,
)
from server.http.errors import install_error_handlers

MAX_BODY_BYTES = 1 << 20


def create_app(ctx: AppContext) -> QuartTrio:
    app = QuartTrio("seda")
    app.extensions["seda"] = ctx
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["JSON_SORT_KEYS"] = False
    QuartSchema(
        app,
        info=Info(title="seda.fm room server", version="1"),
        swagger_ui_path=None,
        redoc_ui_path=None,
        scalar_ui_path=None,
        security_schemes={"bearer": {"type": "http", "scheme": "bearer", "bearer_format": "JWT"}},
    )
    install_error_handlers(app)
    for blueprint in (
        accounts.blueprint,
        health.blueprint,
        rooms.blueprint,
        progression.blueprint,
        dj.blueprint,
        profiles.blueprint,
        playlists.blueprint,
        verification.blueprint,
        social.blueprint,
        notifications.blueprint,
        feed.blueprint,
        marketplace.blueprint,
        leaderboards.blueprint,
        badges.blueprint,
        seasons.blueprint,
        moderation.blueprint,
        linked_accounts.blueprint,
        search.blueprint,
        recommendations.blueprint,
        reports.blueprint,
        sanctions.blueprint,
    ):
        app.register_blueprint(blueprint)

    @app.before_request
    async def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    async def _count(response: Response) -> Response:
        ctx.metrics.http_requests.labels(request.method, str(response.status_code)).inc()
        started = getattr(g, "started", None)
        if started is not None:
            ctx.metrics.http_latency.observe(time.perf_counter() - started)
        return response

    return app
