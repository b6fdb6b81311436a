"""The browser pages (``/``, ``/r/:idOrSlug``, ``/admin``, ``/docs``) and their static files.

Every page is a fixed HTML file from the package that loads its ES modules from ``/ui/``; none
holds inline script or style, so the Content-Security-Policy below allows only this origin's
files (and, for the live socket, the gateway's own origin). Nothing is fetched from elsewhere.
"""

from __future__ import annotations

from pathlib import Path

from quart import Blueprint, Response
from quart_schema import hide
from werkzeug.exceptions import NotFound as HTTPNotFound

from server.http.live_info import live_url

STATIC = Path(__file__).parent / "static"

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}

blueprint = Blueprint("web", __name__)


def content_security_policy() -> str:
    """Only this origin's scripts and styles, no inline code, no frames, no plugins."""
    connect = " ".join(filter(None, ["'self'", live_url()]))
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
        f"connect-src {connect}; font-src 'self'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'; object-src 'none'"
    )


def _file(name: str) -> Response:
    path = (STATIC / name).resolve()
    if not path.is_relative_to(STATIC) or not path.is_file() or path.suffix not in _TYPES:
        raise HTTPNotFound()
    response = Response(path.read_bytes(), content_type=_TYPES[path.suffix])
    response.headers["Content-Security-Policy"] = content_security_policy()
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-cache"
    return response


@blueprint.get("/")
@hide
async def home() -> Response:
    return _file("index.html")


@blueprint.get("/r/<room>")
@hide
async def room(room: str) -> Response:
    return _file("room.html")


@blueprint.get("/admin")
@hide
async def admin() -> Response:
    return _file("admin.html")


@blueprint.get("/docs")
@hide
async def docs() -> Response:
    return _file("docs.html")


@blueprint.get("/ui/<path:name>")
@hide
async def static_file(name: str) -> Response:
    return _file(name)
