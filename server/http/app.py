"""The REST app: Quart-Trio with quart-schema validation and OpenAPI."""

from __future__ import annotations

import time

import trio
from hypercorn.typing import ASGISendCallable, ASGISendEvent
from quart import Request, Response, g, request
from quart_schema import Info, QuartSchema
from quart_trio import QuartTrio
from quart_trio.asgi import TrioASGIHTTPConnection

from server.context import AppContext
from server.http import (
    accounts,
    badges,
    blocks,
    dj,
    feed,
    health,
    leaderboards,
    linked_accounts,
    live_info,
    marketplace,
    moderation,
    notifications,
    operations,
    playlists,
    profiles,
    progression,
    recommendations,
    reports,
    room_history,
    rooms,
    sanctions,
    search,
    seasons,
    social,
    verification,
)
from server.http.errors import install_error_handlers
from server.web import pages

MAX_BODY_BYTES = 1 << 20


class _HTTPConnection(TrioASGIHTTPConnection):
    """quart-trio's request handling, with the end of each response sent whole.

    Hypercorn finishes a response inside the ``send`` of its last body message: it tells the app
    ``http.disconnect``, then either closes the connection (``Connection: close``, HTTP/1.0) or
    arms the keep-alive timer. quart-trio cancels the request's nursery as soon as it reads that
    disconnect, which cancelled the rest of that ``send``: connections asked to close stayed open,
    and idle keep-alive connections were never timed out (a client waiting for the end of a
    response waited for ever). The last message is sent shielded; hypercorn already shields its
    socket writes, so this adds no wait of its own.
    """

    async def handle_request(  # type: ignore[override]
        self, nursery: trio.Nursery, request: Request, send: ASGISendCallable
    ) -> None:
        async def send_last_whole(message: ASGISendEvent) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                with trio.CancelScope(shield=True):
                    await send(message)
            else:
                await send(message)

        await super().handle_request(nursery, request, send_last_whole)


class _App(QuartTrio):
    asgi_http_class = _HTTPConnection


def create_app(ctx: AppContext) -> QuartTrio:
    app = _App("seda")
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
        operations.blueprint,
        blocks.blueprint,
        room_history.blueprint,
        live_info.blueprint,
        pages.blueprint,
    ):
        app.register_blueprint(blueprint)

    @app.before_request
    async def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    async def _count(response: Response) -> Response:
        ctx.metrics.count_request(request.method, response.status_code)
        started = getattr(g, "started", None)
        if started is not None:
            ctx.metrics.http_latency.observe(time.perf_counter() - started)
        return response

    return app
