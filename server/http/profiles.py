"""Profiles over REST: my own to read and change, anyone's to read by username."""

from __future__ import annotations

from typing import Any

from quart import Blueprint
from quart_schema import security_scheme, validate_request, validate_response

from protocol.errors import NotFound
from protocol.profiles import ProfileOut, UpdateProfileBody
from server.http.principal import app_context, require_principal

blueprint = Blueprint("profiles", __name__, url_prefix="/api/v1/profiles")


async def _own() -> dict[str, Any]:
    profile = await app_context().profiles.by_id(require_principal().user_id)
    if profile is None:
        raise NotFound("the token's user no longer exists")
    return profile


@blueprint.get("/me")
@security_scheme([{"bearer": []}])
@validate_response(ProfileOut, 200)
async def my_profile() -> dict[str, Any]:
    return await _own()


@blueprint.patch("/me")
@security_scheme([{"bearer": []}])
@validate_request(UpdateProfileBody)
@validate_response(ProfileOut, 200)
async def update_my_profile(data: UpdateProfileBody) -> dict[str, Any]:
    """Only the caller's own profile can change: the user comes from the token, never the body."""
    await app_context().profiles.update(require_principal().user_id, data.model_dump(exclude_unset=True))
    return await _own()


@blueprint.get("/<username>")
@validate_response(ProfileOut, 200)
async def profile(username: str) -> dict[str, Any]:
    """Public read, no token needed."""
    found = await app_context().profiles.by_username(username)
    if found is None:
        raise NotFound("no such user", field="username")
    return found
