"""Reports over REST: anyone signed in files one; admins work the queue and resolve with an action."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from quart import Blueprint
from quart_schema import security_scheme_blueprint, validate_querystring, validate_request, validate_response

from protocol.errors import Conflict, NotFound, ValidationFailed
from protocol.moderation import (
    ReportBody,
    ReportDetail,
    ReportOut,
    ReportPage,
    ReportStatus,
    ResolveBody,
    TargetType,
)
from protocol.ops import MessageRefData
from server.auth import Principal
from server.http.notifications import tell
from server.http.pagination import PageQuery, keyed_page
from server.http.params import path_uuid, time_id_after
from server.http.principal import app_context, require_admin, require_principal
from server.http.room_ops import run_op
from server.http.sanctions import enforce, may_sanction
from storage.reports import Target

blueprint = Blueprint("reports", __name__, url_prefix="/api/v1")
security_scheme_blueprint(blueprint, [{"bearer": []}])


@blueprint.post("/reports")
@validate_request(ReportBody)
@validate_response(ReportOut, 201)
async def file_report(data: ReportBody) -> tuple[dict[str, Any], int]:
    """Report a user, message or room: 404 if unseen, 422 yourself, 409 while pending, 429 past 20 an hour."""
    principal = require_principal()
    ctx = app_context()
    target = await ctx.reports.target(data.target_type, data.target_id, principal.user_id, principal.is_admin)
    if target is None:
        raise NotFound(f"no such {data.target_type}", field="target_id")
    if target.user_id == principal.user_id:
        raise ValidationFailed("you cannot report yourself or your own things", field="target_id")
    description = (data.description or "").strip() or None
    report = await ctx.reports.create(
        principal.user_id, data.target_type, data.target_id, data.reason, description
    )
    return report, 201


class QueueQuery(PageQuery):
    status: ReportStatus = "pending"
    target_type: TargetType | None = None


@blueprint.get("/admin/reports")
@validate_querystring(QueueQuery)
@validate_response(ReportPage, 200)
async def queue(query_args: QueueQuery) -> dict[str, Any]:
    """Admins: reports of one status (pending by default), oldest first."""
    require_admin()
    rows = await app_context().reports.page(
        query_args.status, query_args.target_type, query_args.limit, time_id_after(query_args.cursor)
    )
    return keyed_page(rows, query_args.limit)


async def _report(report_id: str) -> dict[str, Any]:
    found = await app_context().reports.get(path_uuid(report_id, "report_id", "report"))
    if found is None:
        raise NotFound("no such report", field="report_id")
    return found


@blueprint.get("/admin/reports/<report_id>")
@validate_response(ReportDetail, 200)
async def report_detail(report_id: str) -> dict[str, Any]:
    """Admins: a report with its target: message text, the user's moderation status, the room."""
    require_admin()
    report = await _report(report_id)
    return {**report, "target": await app_context().reports.target_detail(report)}


@blueprint.post("/admin/reports/<report_id>/resolve")
@validate_request(ResolveBody)
@validate_response(ReportOut, 200)
async def resolve(report_id: str, data: ResolveBody) -> dict[str, Any]:
    """Admins: close a pending report (409 if already closed), applying its action; the reporter is told."""
    admin = require_admin()
    ctx = app_context()
    report = await _report(report_id)
    if report["status"] != "pending":
        raise Conflict(f"this report is already {report['status']}", field="status")
    action = data.action
    if action is not None and data.status == "dismissed":
        raise ValidationFailed("a dismissed report takes no action", field="action")
    if action is not None and action.type == "mute" and action.seconds is None:
        raise ValidationFailed("a mute needs its length in seconds", field="action.seconds")
    if action is not None and action.type == "delete_message" and report["target_type"] != "message":
        raise ValidationFailed("only a reported message can be deleted", field="action.type")
    target = await ctx.reports.subject(report["target_type"], uuid.UUID(report["target_id"]))
    if target is None and action is not None:  # with no action, a report of what is gone can still close
        raise NotFound(f"the reported {report['target_type']} no longer exists", field="target_id")
    if action is not None and action.type in ("ban", "mute", "warn") and target is not None:
        user = await ctx.users.get(target.user_id)
        if user is not None:
            may_sanction(admin, user.id, user.role)
    if action is not None and action.type == "delete_message" and target is not None:
        await _delete_message(target, admin)
    resolved, notes = await ctx.reports.resolve(
        uuid.UUID(report["id"]),
        admin.user_id,
        data.status,
        action.model_dump(exclude_none=True) if action is not None else None,
        target,
    )
    if action is not None and action.type == "ban" and target is not None:
        enforce(str(target.user_id))
    tell(notes)
    return resolved


async def _delete_message(target: Target, admin: Principal) -> None:
    """The room deletes it as it would for a moderator (broadcast and logged); gone already is fine."""
    assert target.room_id is not None and target.message_id is not None
    with contextlib.suppress(NotFound):
        await run_op(target.room_id, "chat.delete", MessageRefData(message_id=target.message_id), admin)
