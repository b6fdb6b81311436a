"""The notification bell over REST; the same notifications arrive live as the private event
``notification`` (see :func:`tell`)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response
from quart_schema import security_scheme_blueprint, validate_querystring, validate_request, validate_response

from protocol.errors import NotFound, ValidationFailed
from protocol.notifications import NotificationPage, Preferences, PreferencesOut, ReadAll, UnreadCount
from server.http.errors import NoContent, documents, no_content
from server.http.pagination import PageQuery, keyed_page
from server.http.params import path_uuid, time_id_after
from server.http.principal import app_context, require_principal

blueprint = Blueprint("notifications", __name__, url_prefix="/api/v1/notifications")
security_scheme_blueprint(blueprint, [{"bearer": []}])


def tell(notes: list[tuple[str, dict[str, Any]]]) -> None:
    """Committed notifications, live to every open socket of their users (any room)."""
    sockets = app_context().user_sockets
    if sockets is not None:
        sockets.tell(notes)


class ListQuery(PageQuery):
    unread_only: bool = False


@blueprint.get("")
@validate_querystring(ListQuery)
@validate_response(NotificationPage, 200)
async def notifications(query_args: ListQuery) -> dict[str, Any]:
    """The caller's notifications, newest first (``unread_only=true`` for the unread ones)."""
    principal = require_principal()
    rows = await app_context().notifications.page(
        principal.user_id, query_args.unread_only, query_args.limit, time_id_after(query_args.cursor)
    )
    return keyed_page(rows, query_args.limit)


@blueprint.get("/unread-count")
@validate_response(UnreadCount, 200)
async def unread_count() -> dict[str, Any]:
    return {"count": await app_context().notifications.unread_count(require_principal().user_id)}


@blueprint.post("/<notification_id>/read")
@documents(NoContent, 204)
async def mark_read(notification_id: str) -> Response:
    """Mark one read; someone else's is 404, as if it did not exist."""
    principal = require_principal()
    nid = path_uuid(notification_id, "notification_id", "notification")
    if not await app_context().notifications.mark_read(principal.user_id, nid):
        raise NotFound("no such notification", field="notification_id")
    return no_content()


@blueprint.post("/read-all")
@validate_response(ReadAll, 200)
async def read_all() -> dict[str, Any]:
    return {"updated": await app_context().notifications.read_all(require_principal().user_id)}


@blueprint.get("/preferences")
@validate_response(PreferencesOut, 200)
async def preferences() -> dict[str, Any]:
    return await app_context().notifications.preferences(require_principal().user_id)


@blueprint.put("/preferences")
@validate_request(Preferences)
@validate_response(PreferencesOut, 200)
async def set_preferences(data: Preferences) -> dict[str, Any]:
    """Switch types on or off; the types left out keep their setting."""
    principal = require_principal()
    changes = data.model_dump(exclude_unset=True)
    for name, value in changes.items():
        if value is None:
            raise ValidationFailed(f"{name} must be true or false", field=name)
    return await app_context().notifications.set_preferences(principal.user_id, changes)
