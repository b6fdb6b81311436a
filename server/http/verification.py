"""Artist verification over REST: artists ask, admins review."""

from __future__ import annotations

from typing import Any, Literal

from quart import Blueprint
from quart_schema import security_scheme_blueprint, validate_querystring, validate_request, validate_response

from protocol.errors import NotFound
from protocol.verification import (
    DenyBody,
    VerificationOut,
    VerificationPage,
    VerificationRequestBody,
)
from server.http.pagination import PageQuery, keyed_page
from server.http.params import path_uuid, time_id_after
from server.http.principal import app_context, require_admin, require_principal

blueprint = Blueprint("verification", __name__)
security_scheme_blueprint(blueprint, [{"bearer": []}])


class QueueQuery(PageQuery):
    status: Literal["pending", "approved", "denied"] = "pending"


@blueprint.post("/api/v1/artist/verification/request")
@validate_request(VerificationRequestBody)
@validate_response(VerificationOut, 201)
async def request_verification(data: VerificationRequestBody) -> tuple[dict[str, Any], int]:
    """Ask to be verified as an artist; one pending request at a time (a second is 409)."""
    principal = require_principal()
    request = await app_context().verification.request(
        principal.user_id, data.artist_name, data.links, data.message
    )
    return request, 201


@blueprint.get("/api/v1/artist/verification/requests")
@validate_querystring(PageQuery)
@validate_response(VerificationPage, 200)
async def my_requests(query_args: PageQuery) -> dict[str, Any]:
    """The caller's own requests and their outcome, newest first."""
    principal = require_principal()
    rows = await app_context().verification.mine(
        principal.user_id, query_args.limit, time_id_after(query_args.cursor)
    )
    return keyed_page(rows, query_args.limit)


@blueprint.get("/api/v1/admin/verification")
@validate_querystring(QueueQuery)
@validate_response(VerificationPage, 200)
async def review_queue(query_args: QueueQuery) -> dict[str, Any]:
    """Admins: requests by status (pending by default), oldest first."""
    require_admin()
    rows = await app_context().verification.queue(
        query_args.status, query_args.limit, time_id_after(query_args.cursor)
    )
    return keyed_page(rows, query_args.limit)


@blueprint.get("/api/v1/admin/verification/<request_id>")
@validate_response(VerificationOut, 200)
async def review_one(request_id: str) -> dict[str, Any]:
    require_admin()
    found = await app_context().verification.get(path_uuid(request_id, "id", "verification request"))
    if found is None:
        raise NotFound("no such verification request", field="id")
    return found


@blueprint.post("/api/v1/admin/verification/<request_id>/approve")
@validate_response(VerificationOut, 200)
async def approve(request_id: str) -> dict[str, Any]:
    """Admins: the user becomes a verified artist (role ``artist`` in tokens issued from now on)."""
    admin = require_admin()
    rid = path_uuid(request_id, "id", "verification request")
    return await app_context().verification.decide(rid, admin.user_id, approve=True, reason=None)


@blueprint.post("/api/v1/admin/verification/<request_id>/deny")
@validate_request(DenyBody)
@validate_response(VerificationOut, 200)
async def deny(request_id: str, data: DenyBody) -> dict[str, Any]:
    """Admins: refuse with a reason the user can read; they may ask again."""
    admin = require_admin()
    rid = path_uuid(request_id, "id", "verification request")
    return await app_context().verification.decide(rid, admin.user_id, approve=False, reason=data.reason)
