"""Schemathesis against the real server: every operation in ``/openapi.json``, fuzzed.

The server runs in this test's trio run (the ``server`` fixture, on the embedded
Postgres) and schemathesis drives it over real HTTP from a worker thread. Before each
operation a small world is made (a public and a private room of the caller, another
member, a pending join request, a live DJ session with two queued tracks, a pending report) and half of
the generated requests aim at it, so they get past "no such room". Each request goes
as one of: the caller, a site admin, another user, or nobody.

Every response must be: no 5xx; a documented status, content type and schema; a 4xx
for schemathesis's invalid (negative) requests; a 401 without the token an operation
documents as required; and every error in the project's shape, a 400/422 naming its
field. The 500s this found have regression tests below.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
import requests
import schemathesis
import trio
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from server.config import Settings
from server.context import AppContext
from server.http.pagination import encode_cursor
from server.runtime import Bound
from tests.live_client import PASSWORD


@pytest.fixture(name="settings")
def _social_on(settings: Settings) -> Settings:
    """Every endpoint is fuzzed, the social ones (behind FEATURE_SOCIAL) too."""
    return replace(settings, feature_social=True)


# Examples for the whole API, shared out between its operations (within the bounds below) so
# the file stays well under a minute and a half on two cores as the API grows. Raise
# SEDA_FUZZ_EXAMPLES for a longer hunt.
TOTAL_EXAMPLES = int(os.environ.get("SEDA_FUZZ_EXAMPLES", "1500"))
MIN_PER_OPERATION, MAX_PER_OPERATION = 10, 500

Case = schemathesis.Case[Any]
Operation = schemathesis.APIOperation[Any, Any, Any, Any]
Check = Callable[[Any, schemathesis.Response, Case], bool | None]


def error_shape(ctx: Any, response: schemathesis.Response, case: Case) -> bool | None:
    """A 4xx/5xx body is ``{"error": {"code", "message", "details"?}}``; a 400/422 names its field."""
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"a {response.status_code} body is not JSON: {response.text[:200]!r}") from None
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict), body
    assert set(error) <= {"code", "message", "details", "retry_after_ms"}, body
    assert isinstance(error.get("code"), str) and error["code"], body
    assert isinstance(error.get("message"), str) and error["message"], body
    details = error.get("details")
    assert details is None or isinstance(details, dict), body
    if response.status_code in (400, 422):
        assert isinstance(details, dict) and isinstance(details.get("field"), str) and details["field"], (
            f"a {response.status_code} must name the field: {body}"
        )
    return None


CHECKS: list[Check] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
    error_shape,
]


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token is not None else {}


@dataclass
class Users:
    tokens: dict[str, str | None]  # who -> bearer token; "anonymous" sends none
    ids: dict[str, str]
    names: dict[str, str]


async def make_users(http: httpx.AsyncClient, ctx: AppContext) -> Users:
    """A caller and another user, registered over REST, and a site admin (as ``seda user create`` makes)."""
    users = Users(tokens={"anonymous": None}, ids={}, names={})
    for who in ("fan", "other"):
        username = f"fuzz_{who}"
        r = await http.post(
            "/api/v1/auth/register",
            json={"email": f"{username}@example.com", "username": username, "password": PASSWORD},
        )
        assert r.status_code == 201, r.text
        users.tokens[who] = r.json()["access_token"]
        users.ids[who], users.names[who] = r.json()["user"]["id"], username
    admin = await ctx.users.create(
        email="fuzz_admin@example.com", username="fuzz_admin", password_hash="not-a-hash", role="admin"
    )
    users.tokens["admin"] = ctx.tokens.issue(admin.id, admin.role)
    users.ids["admin"], users.names["admin"] = str(admin.id), admin.username
    return users


async def make_world(http: httpx.AsyncClient, users: Users) -> list[dict[str, str]]:
    """Fresh rooms, a join request, a live DJ session, a shared private playlist and a pending artist
    verification; three sets of path parameters reaching them."""
    fan, other = bearer(users.tokens["fan"]), bearer(users.tokens["other"])

    async def post(path: str, headers: dict[str, str], body: dict[str, Any] | None = None) -> Any:
        r = await http.post(path, json=body, headers=headers)
        assert r.status_code in (200, 201), f"{path}: {r.status_code} {r.text}"
        return r.json()

    room = await post("/api/v1/rooms", fan, {"name": "Fuzz Room", "genres": ["jazz"], "tags": ["fuzz"]})
    private = await post("/api/v1/rooms", fan, {"name": "Fuzz Club", "type": "private"})
    await post(f"/api/v1/rooms/{room['id']}/join", other)
    request = await post(f"/api/v1/rooms/{private['id']}/requests", other, {"message": "let me in"})
    session_id = (await post(f"/api/v1/rooms/{room['id']}/dj/start", fan, {"mode": "fan"}))["session_id"]
    await post(f"/api/v1/dj/sessions/{session_id}/rotation/join", fan)
    items = []
    for n in (1, 2):
        track = {
            "url": f"https://www.deezer.com/track/{n}",
            "title": f"T{n}",
            "artist": "A",
            "duration_ms": 90_000,
        }
        added = await post(f"/api/v1/dj/sessions/{session_id}/queue", fan, {"track": track})
        items.append(added["item_id"])
    playing, queued = items
    playlist = await post("/api/v1/playlists", fan, {"name": "Fuzz Mix", "is_public": False})
    track = {"url": "https://www.deezer.com/track/9", "title": "T9", "artist": "A", "duration_ms": 90_000}
    entry = await post(f"/api/v1/playlists/{playlist['id']}/items", fan, {"track": track})
    await post(f"/api/v1/playlists/{playlist['id']}/collaborators", fan, {"username": users.names["other"]})
    # one pending request per user: a later world (or the fuzzing itself) may have made it already
    await http.post(
        "/api/v1/artist/verification/request",
        json={"artist_name": "Fuzz", "links": ["https://x.io/fuzz"]},
        headers=other,
    )
    mine = await http.get("/api/v1/artist/verification/requests", headers=other)
    verification = next(v for v in mine.json()["items"] if v["status"] == "pending")
    # a pending report of the other user (one may be pending already; fuzzing may have filed many)
    await http.post(
        "/api/v1/reports",
        json={"target_type": "user", "target_id": users.ids["other"], "reason": "spam"},
        headers=fan,
    )
    queue = await http.get("/api/v1/admin/reports", headers=bearer(users.tokens["admin"]))
    reports = [r["id"] for r in queue.json()["items"]][:1]
    return [
        {
            "playlist_id": playlist["id"],
            "item_id": entry["id"],
            "user_id": users.ids["other"],
            "request_id": verification["id"],
            "entity_type": "playlist",
            "entity_id": playlist["id"],
            "target_id": users.ids["other"],
        },
        {
            "room_id": room["id"],
            "user_id": users.ids["other"],
            "session_id": session_id,
            "item_id": queued,
            "username": users.names["fan"],
        },
        {
            "room_id": private["id"],
            "user_id": users.ids["fan"],
            "session_id": session_id,
            "item_id": playing,
            "request_id": request["id"],
            "username": users.names["other"],
            **({"report_id": reports[0]} if reports else {}),
        },
    ]


async def lift_sanctions(http: httpx.AsyncClient, users: Users) -> None:
    """Fuzzing as the admin bans and mutes the world's users; lift it before the next operation."""
    admin = bearer(users.tokens["admin"])
    for who in ("fan", "other"):
        for act in ("unban", "unmute"):
            r = await http.post(f"/api/v1/admin/users/{users.ids[who]}/{act}", headers=admin)
            assert r.status_code == 200, r.text


def fuzz_operation(
    operation: Operation,
    examples: int,
    known: list[dict[str, str]],
    users: Users,
    base_url: str,
    session: requests.Session,
    statuses: Counter[int],
) -> str | None:
    """Run ``examples`` requests against one operation; the failure report, or None."""
    names = {parameter.name for parameter in operation.path_parameters}
    strategies = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        strategies.append(operation.as_strategy(generation_mode=mode))
        for params in known:
            fixed = {name: value for name, value in params.items() if name in names}
            if fixed:
                strategies.append(operation.as_strategy(generation_mode=mode, path_parameters=fixed))

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        report_multiple_bugs=False,
    )
    @given(case=st.one_of(strategies), who=st.sampled_from(sorted(users.tokens)))
    def run(case: Case, who: str) -> None:
        # A negative case may leave out (or spoil) the token the operation requires: then send none.
        negated = case.operation.schema.is_security_param_negated(case)
        headers = bearer(None if negated else users.tokens[who])
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=10)
        statuses[response.status_code] += 1
        case.validate_response(
            response,
            checks=CHECKS,
            headers=headers,
            transport_kwargs={"base_url": base_url, "session": session, "headers": headers},
        )

    try:
        run()
    except (Exception, schemathesis.errors.FailureGroup) as exc:
        return f"{operation.label}:\n{exc}"
    return None


async def test_every_operation_survives_fuzzing(
    server: Bound, http: httpx.AsyncClient, ctx: AppContext
) -> None:
    raw = (await http.get("/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(raw, config=schemathesis.Config())
    operations: list[Operation] = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    assert len(operations) >= 40, [op.label for op in operations]
    if only := os.environ.get("SEDA_FUZZ_ONLY"):  # e.g. "GET /api/v1/rooms/discover", for a longer hunt
        operations = [op for op in operations if only in op.label]
    base_url = f"http://127.0.0.1:{server.http_port}"
    users = await make_users(http, ctx)
    examples = min(MAX_PER_OPERATION, max(MIN_PER_OPERATION, TOTAL_EXAMPLES // len(operations)))
    failures: list[str] = []
    statuses: dict[str, Counter[int]] = {}

    def fuzz_all() -> None:
        with requests.Session() as session:
            for operation in operations:
                # A fresh world for each operation that can aim at one (the last may have deleted it).
                known = (
                    trio.from_thread.run(make_world, http, users) if len(operation.path_parameters) else []
                )
                seen = statuses.setdefault(operation.label, Counter())
                failure = fuzz_operation(operation, examples, known, users, base_url, session, seen)
                if failure is not None:
                    failures.append(failure)
                trio.from_thread.run(lift_sanctions, http, users)

    await trio.to_thread.run_sync(fuzz_all)
    assert not failures, f"{len(failures)} operations failed:\n\n" + "\n\n".join(failures)
    # The requests got past authentication and "no such room" often enough to mean something.
    answered = [label for label, seen in statuses.items() if any(200 <= status < 300 for status in seen)]
    assert len(answered) >= len(operations) // 2, statuses


# ---- what the fuzzing found, pinned down ---------------------------------------------------


async def register(http: httpx.AsyncClient, username: str) -> dict[str, str]:
    r = await http.post(
        "/api/v1/auth/register",
        json={"email": f"{username}@example.com", "username": username, "password": PASSWORD},
    )
    assert r.status_code == 201, r.text
    return bearer(r.json()["access_token"])


def refused(r: httpx.Response, status: int, field: str) -> bool:
    return r.status_code == status and r.json()["error"]["details"]["field"] == field


async def test_a_body_that_is_not_utf8_is_a_400_on_body(http: httpx.AsyncClient) -> None:
    r = await http.post(
        "/api/v1/auth/login",
        content=b'{"username": "\xff\xfe"}',
        headers={"content-type": "application/json"},
    )
    assert refused(r, 400, "body"), r.text


async def test_text_postgres_cannot_store_is_refused_naming_its_field(http: httpx.AsyncClient) -> None:
    auth = await register(http, "nul_user")
    r = await http.get("/api/v1/rooms/discover", params={"genre": "ja\x00zz"})
    assert refused(r, 422, "genre"), r.text
    r = await http.post("/api/v1/rooms", json={"name": "Late\x00Night"}, headers=auth)
    assert refused(r, 422, "name"), r.text
    r = await http.post("/api/v1/rooms", json={"name": "Jazz", "tags": ["ok", "b\x00d"]}, headers=auth)
    assert refused(r, 422, "tags.1"), r.text
    lone_surrogate = b'{"name": "Jazz \\ud800"}'  # valid JSON, not valid Unicode
    r = await http.post(
        "/api/v1/rooms", content=lone_surrogate, headers={**auth, "content-type": "application/json"}
    )
    assert refused(r, 422, "name"), r.text
    r = await http.get("/api/v1/profiles/nul%00user")
    assert refused(r, 422, "username"), r.text
    mine = (await http.get("/api/v1/rooms/mine", headers=auth)).json()
    assert mine["items"] == []  # nothing was half-made


async def test_a_null_room_setting_is_refused_and_the_room_lives_on(http: httpx.AsyncClient) -> None:
    auth = await register(http, "null_owner")
    room = (await http.post("/api/v1/rooms", json={"name": "Nulls"}, headers=auth)).json()
    for field in ("name", "visibility", "genres", "tags"):
        r = await http.patch(f"/api/v1/rooms/{room['id']}", json={field: None}, headers=auth)
        assert refused(r, 422, field), r.text
    r = await http.patch(f"/api/v1/rooms/{room['id']}", json={"name": "   "}, headers=auth)
    assert refused(r, 422, "name"), r.text
    r = await http.patch(
        f"/api/v1/rooms/{room['id']}", json={"description": None, "tags": ["late"]}, headers=auth
    )
    assert r.status_code == 200 and r.json()["tags"] == ["late"], r.text  # the room's actor still answers
    r = await http.post("/api/v1/rooms", json={"name": " \t "}, headers=auth)
    assert refused(r, 422, "name"), r.text


async def test_a_points_cursor_out_of_range_is_a_400_on_cursor(http: httpx.AsyncClient) -> None:
    auth = await register(http, "cursor_user")
    for key in (2**70, -1, True):
        r = await http.get(
            "/api/v1/progression/me/points", params={"cursor": encode_cursor([key])}, headers=auth
        )
        assert refused(r, 400, "cursor"), (key, r.text)
    r = await http.get("/api/v1/progression/me/points", params={"cursor": encode_cursor([5])}, headers=auth)
    assert r.status_code == 200 and r.json() == {"items": [], "next_cursor": None}


# Operations whose success is not documented yet: their 204s want ``@documents(NoContent, 204)``
# (server/http/errors.py). Listed so the gap shows; the test fails once one is fixed, to shorten the list.
NOT_YET_DOCUMENTED: set[str] = set()


async def test_the_openapi_document_describes_every_response(http: httpx.AsyncClient) -> None:
    """Every operation documents a success status and the error shape; 204s have no body."""
    document = (await http.get("/openapi.json")).json()
    error = document["components"]["schemas"]["ErrorBody"]
    assert {"code", "message"} <= set(error["required"])
    undocumented = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            successes = [status for status in responses if status.startswith("2")]
            if "4XX" not in responses or not successes:
                undocumented.append(f"{method.upper()} {path}: {sorted(responses)}")
            for status in successes:
                if ("content" in responses[status]) != (status != "204"):
                    undocumented.append(f"{method.upper()} {path}: {status} body?")
    assert set(undocumented) == NOT_YET_DOCUMENTED, "\n".join(sorted(set(undocumented) ^ NOT_YET_DOCUMENTED))
    leave = document["paths"]["/api/v1/rooms/{room_id}/leave"]["post"]["responses"]
    assert set(leave) == {"204", "4XX"}
    discover = document["paths"]["/api/v1/rooms/discover"]["get"]
    assert {p["name"] for p in discover["parameters"] if p["in"] == "query"} == {
        "limit",
        "cursor",
        "q",
        "type",
        "genre",
        "tag",
    }
