"""Admins ban, mute and warn users site-wide; each act is in force before the call returns."""

from __future__ import annotations

import uuid
from typing import Any

from quart import Blueprint
from quart_schema import security_scheme_blueprint, validate_request, validate_response

from actors.moderation_rules import CLOSE_KICKED
from protocol.errors import Forbidden, NotFound, ValidationFailed
from protocol.moderation import BanBody, ModerationStatus, MuteBody, WarnBody
from server.auth import Principal
from server.http.params import path_user, path_uuid
from server.http.principal import app_context, require_admin
from storage.sanctions import SanctionKind

blueprint = Blueprint("sanctions", __name__, url_prefix="/api/v1/admin/users")
security_scheme_blueprint(blueprint, [{"bearer": []}])


def enforce(user_id: str) -> None:
    """A ban just committed: close the user's open sockets in every room with 4010."""
    sockets = app_context().user_sockets
    if sockets is not None:
        sockets.close_all(user_id, CLOSE_KICKED, "banned from seda.fm")


async def _act(
    user_id: str, kind: SanctionKind, *, seconds: int | None = None, reason: str | None = None
) -> dict[str, Any]:
    admin = require_admin()
    ctx = app_context()
    user = await ctx.users.get(path_uuid(user_id, "user_id", "user"))
    if user is None:
        raise NotFound("no such user", field="user_id")
    may_sanction(admin, user.id, user.role)
    row = await ctx.sanctions.apply(
        actor_id=admin.user_id, user_id=user.id, kind=kind, seconds=seconds, reason=reason
    )
    if kind == "ban":
        enforce(row.user_id)
    return ctx.sanctions.describe(row)


def may_sanction(admin: Principal, target_id: uuid.UUID, target_role: str) -> None:
    """Admins do not sanction themselves, and only a super admin sanctions a super admin."""
    if target_id == admin.user_id:
        raise ValidationFailed("admins cannot sanction themselves", field="user_id")
    if target_role == "super_admin" and admin.role != "super_admin":
        raise Forbidden("only a super admin may sanction a super admin")


@blueprint.get("/<user_id>/moderation")
@validate_response(ModerationStatus, 200)
async def status(user_id: str) -> dict[str, Any]:
    """Admins: whether the user is banned or muted now, until when, and how often warned."""
    require_admin()
    return await app_context().sanctions.status(await path_user(user_id))


@blueprint.post("/<user_id>/ban")
@validate_request(BanBody)
@validate_response(ModerationStatus, 200)
async def ban(user_id: str, data: BanBody) -> dict[str, Any]:
    """Ban for ``seconds``, or for good without; login, tokens and sockets are refused at once."""
    return await _act(user_id, "ban", seconds=data.seconds, reason=data.reason)


@blueprint.post("/<user_id>/unban")
@validate_response(ModerationStatus, 200)
async def unban(user_id: str) -> dict[str, Any]:
    return await _act(user_id, "unban")


@blueprint.post("/<user_id>/mute")
@validate_request(MuteBody)
@validate_response(ModerationStatus, 200)
async def mute(user_id: str, data: MuteBody) -> dict[str, Any]:
    """Mute in every room for ``seconds``: their chat gets ``muted``."""
    return await _act(user_id, "mute", seconds=data.seconds, reason=data.reason)


@blueprint.post("/<user_id>/unmute")
@validate_response(ModerationStatus, 200)
async def unmute(user_id: str) -> dict[str, Any]:
    return await _act(user_id, "unmute")


@blueprint.post("/<user_id>/warn")
@validate_request(WarnBody)
@validate_response(ModerationStatus, 200)
async def warn(user_id: str, data: WarnBody) -> dict[str, Any]:
    return await _act(user_id, "warn", reason=data.reason)
