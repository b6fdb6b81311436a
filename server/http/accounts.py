"""Registration, login and the current user."""

from __future__ import annotations

import contextlib
from typing import Any

from quart import Blueprint
from quart_schema import security_scheme, validate_request, validate_response

from protocol.accounts import LoginBody, RegisterBody, TokenOut, UserOut
from protocol.errors import RateLimited, Unauthorized
from server.auth import DUMMY_HASH, password_needs_rehash
from server.http.principal import app_context, request_client_address, require_principal
from storage.users import User

blueprint = Blueprint("accounts", __name__, url_prefix="/api/v1")


def _token_body(user: User) -> dict[str, Any]:
    ctx = app_context()
    return {
        "access_token": ctx.tokens.issue(user.id, user.role),
        "token_type": "bearer",
        "expires_in": ctx.tokens.ttl_s,
        "user": user.public(),
    }


@blueprint.post("/auth/register")
@validate_request(RegisterBody)
@validate_response(TokenOut, 201)
async def register(data: RegisterBody) -> tuple[dict[str, Any], int]:
    """Create an account; 409 naming the field if the username or email is taken.

    429 with Retry-After past the sign-in attempts allowed per client address.
    """
    ctx = app_context()
    ctx.auth_limits.attempt_from(request_client_address())
    password_hash = await ctx.passwords.hash(data.password)
    user = await ctx.users.create(email=data.email, username=data.username, password_hash=password_hash)
    return _token_body(user), 201


@blueprint.post("/auth/login")
@validate_request(LoginBody)
@validate_response(TokenOut, 200)
async def login(data: LoginBody) -> dict[str, Any]:
    """Exchange a username or email and a password for a token; 401 if either is wrong.

    429 with Retry-After past the sign-in attempts allowed per client address, or while the
    account is locked out after failed logins (a successful login clears its failures).
    """
    ctx = app_context()
    limits = ctx.auth_limits
    limits.attempt_from(request_client_address())
    found = await ctx.users.credentials(data.login)
    # Unknown logins are limited the same way, so a 429 does not tell who has an account.
    account = str(found[0].id) if found else "login:" + data.login.strip().lower()
    limits.login_attempt(account)
    stored_hash = found[1] if found else DUMMY_HASH
    try:
        ok = await ctx.passwords.verify(stored_hash, data.password)
    except BaseException:
        limits.login_abandoned(account)
        raise
    if found is None or not ok:
        limits.login_failed(account)
        raise Unauthorized("wrong username/email or password", field="password")
    limits.login_succeeded(account)
    user, _ = found
    ctx.sanctions.refuse_if_banned(str(user.id))
    if password_needs_rehash(stored_hash):
        # An upgrade of the stored hash is worth a spare slot only: with none free in time, a later
        # login does it (a right password must not be answered 429).
        with contextlib.suppress(RateLimited):
            await ctx.users.update_password_hash(user.id, await ctx.passwords.hash(data.password))
    return _token_body(user)


@blueprint.get("/me")
@security_scheme([{"bearer": []}])
@validate_response(UserOut, 200)
async def me() -> dict[str, Any]:
    """The caller's account."""
    principal = require_principal()
    user = await app_context().users.get(principal.user_id)
    if user is None:
        raise Unauthorized("the token's user no longer exists", field="token")
    return user.public()
