"""The caller's linked music accounts: tokens go in, and never come back out."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response
from quart_schema import security_scheme_blueprint, validate_request, validate_response

from protocol.errors import NotFound
from protocol.linked_accounts import LINK_PROVIDERS, LinkBody, LinkedAccountOut, LinkedAccounts
from server.http.errors import NoContent, documents, no_content
from server.http.principal import app_context, require_principal

blueprint = Blueprint("linked_accounts", __name__, url_prefix="/api/v1/me/linked-accounts")
security_scheme_blueprint(blueprint, [{"bearer": []}])


def _provider(raw: str) -> str:
    if raw not in LINK_PROVIDERS:
        raise NotFound(f"no provider {raw!r} (one of {', '.join(LINK_PROVIDERS)})", field="provider")
    return raw


@blueprint.get("")
@validate_response(LinkedAccounts, 200)
async def linked_accounts() -> list[dict[str, Any]]:
    return await app_context().linked_accounts.mine(require_principal().user_id)


@blueprint.put("/<provider>")
@validate_request(LinkBody)
@validate_response(LinkedAccountOut, 200)
async def link(provider: str, data: LinkBody) -> dict[str, Any]:
    """Link (or re-link) an account; its tokens are sealed (AES-GCM) before they are stored."""
    principal = require_principal()
    return await app_context().linked_accounts.put(
        principal.user_id,
        _provider(provider),
        data.provider_user_id,
        data.access_token,
        data.refresh_token,
        data.expires_at,
    )


@blueprint.delete("/<provider>")
@documents(NoContent, 204)
async def unlink(provider: str) -> Response:
    principal = require_principal()
    if not await app_context().linked_accounts.remove(principal.user_id, _provider(provider)):
        raise NotFound("that account is not linked", field="provider")
    return no_content()
