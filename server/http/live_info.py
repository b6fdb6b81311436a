"""Where the live gateway is (``GET /api/v1/live``), for clients that know only the REST origin."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, request
from quart_schema import validate_response

from protocol.codec import JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX
from protocol.errors import ServiceUnavailable
from protocol.live_info import LiveInfoOut
from server.http.errors import ErrorOut, documents
from server.http.principal import app_context

blueprint = Blueprint("live_info", __name__, url_prefix="/api/v1")


def _hostname(host: str) -> str:
    """The host part of a Host header (``[::1]:8000`` → ``[::1]``, ``example.com`` as it is)."""
    if host.startswith("["):
        return host[: host.index("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def live_url() -> str | None:
    """The live gateway's origin on the host this request reached, once it listens."""
    port = app_context().live_port
    if port is None:
        return None
    scheme = "wss" if request.scheme in ("https", "wss") else "ws"
    host = _hostname(request.host or app_context().settings.host) or "127.0.0.1"
    return f"{scheme}://{host}:{port}"


@blueprint.get("/live")
@validate_response(LiveInfoOut, 200)
@documents(ErrorOut, 503)
async def live_info() -> dict[str, Any]:
    """Public: the live gateway's URL on the host the caller reached (PROTOCOL.md "Connecting")."""
    url = live_url()
    if url is None:
        raise ServiceUnavailable("the live gateway is not listening yet")
    return {
        "url": url,
        "path": "/ws/rooms/{room_id}",
        "subprotocols": [JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL],
        "token_subprotocol_prefix": TOKEN_SUBPROTOCOL_PREFIX,
    }
