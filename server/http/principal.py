"""Who is calling: the bearer token on a REST request."""

from __future__ import annotations

from quart import current_app, request

from protocol.errors import Forbidden, Unauthorized
from server.auth import Principal
from server.auth_limits import client_address
from server.context import AppContext


def app_context() -> AppContext:
    ctx: AppContext = current_app.extensions["seda"]
    return ctx


def request_client_address() -> str:
    """The caller's address: the socket's peer, or what declared proxies say in X-Forwarded-For."""
    return client_address(
        request.remote_addr,
        request.headers.getlist("X-Forwarded-For"),
        app_context().settings.trusted_proxies,
    )


def bearer_token(header: str | None) -> str | None:
    """The token in an ``Authorization: Bearer …`` header; a malformed header is Unauthorized."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization header must be 'Bearer <token>'", field="Authorization")
    return token.strip()


def optional_principal() -> Principal | None:
    """The caller if a token was sent (an invalid one is still a 401, a banned user's a 403), else None."""
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        return None
    ctx = app_context()
    principal = ctx.tokens.verify(token)
    ctx.sanctions.refuse_if_banned(str(principal.user_id))
    return principal


def require_principal() -> Principal:
    principal = optional_principal()
    if principal is None:
        raise Unauthorized("a bearer token is required", field="Authorization")
    return principal


def require_admin() -> Principal:
    principal = require_principal()
    if not principal.is_admin:
        raise Forbidden("admin role required")
    return principal
