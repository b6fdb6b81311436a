"""Registration, login and the current user."""

from __future__ import annotations

from typing import Any

import trio
from quart import Blueprint
from quart_schema import security_scheme, validate_request, validate_response

from protocol.accounts import LoginBody, RegisterBody, TokenOut, UserOut
from protocol.errors import Unauthorized
from server.auth import DUMMY_HASH, hash_password, password_needs_rehash, verify_password
from server.http.principal import app_context, require_principal
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
    """Create an account; 409 naming the field if the username or email is taken."""
    # Argon2 is deliberately slow: hash off the event loop so other requests keep moving.
    password_hash = await trio.to_thread.run_sync(hash_password, data.password)
    user = await app_context().users.create(
        email=data.email, username=data.username, password_hash=password_hash
    )
    return _token_body(user), 201


@blueprint.post("/auth/login")
@validate_request(LoginBody)
@validate_response(TokenOut, 200)
async def login(data: LoginBody) -> dict[str, Any]:
    """Exchange a username or email and a password for a token; 401 if either is wrong."""
    users = app_context().users
    found = await users.credentials(data.login)
    stored_hash = found[1] if found else DUMMY_HASH
    ok = await trio.to_thread.run_sync(verify_password, stored_hash, data.password)
    if found is None or not ok:
        raise Unauthorized("wrong username/email or password", field="password")
    user, _ = found
    app_context().sanctions.refuse_if_banned(str(user.id))
    if password_needs_rehash(stored_hash):
        await users.update_password_hash(user.id, await trio.to_thread.run_sync(hash_password, data.password))
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
