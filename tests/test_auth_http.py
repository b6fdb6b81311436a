"""Register, login and /me over real HTTP against a real database."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import JWT_SECRET

PASSWORD = "correct horse battery"


async def register(http: httpx.AsyncClient, username: str, email: str | None = None) -> dict[str, Any]:
    r = await http.post(
        "/api/v1/auth/register",
        json={"email": email or f"{username}@example.com", "username": username, "password": PASSWORD},
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def error_of(r: httpx.Response) -> dict[str, Any]:
    body = r.json()
    assert set(body) == {"error"}
    err: dict[str, Any] = body["error"]
    assert {"code", "message"} <= set(err)
    return err


async def test_register_login_me(http: httpx.AsyncClient) -> None:
    reg = await register(http, "Ana_Smith")
    assert reg["token_type"] == "bearer"
    assert reg["expires_in"] > 0
    assert reg["user"]["username"] == "ana_smith"  # case-insensitive: stored lower-case
    assert reg["user"]["role"] == "user"
    claims = jwt.decode(reg["access_token"], JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == reg["user"]["id"] and claims["role"] == "user"

    for login in ({"username": "ANA_SMITH"}, {"email": "Ana_Smith@Example.com"}):
        r = await http.post("/api/v1/auth/login", json={**login, "password": PASSWORD})
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        me = await http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
        assert me.json()["id"] == reg["user"]["id"]
        assert me.json()["username"] == "ana_smith"


async def test_wrong_password_and_unknown_user_are_401(http: httpx.AsyncClient) -> None:
    await register(http, "ben")
    r = await http.post("/api/v1/auth/login", json={"username": "ben", "password": "wrong password"})
    assert r.status_code == 401
    assert error_of(r)["code"] == "unauthorized"
    r = await http.post("/api/v1/auth/login", json={"username": "nobody_here", "password": PASSWORD})
    assert r.status_code == 401


async def test_duplicates_are_409_naming_the_field(http: httpx.AsyncClient) -> None:
    await register(http, "cleo", "cleo@example.com")
    r = await http.post(
        "/api/v1/auth/register", json={"email": "other@example.com", "username": "CLEO", "password": PASSWORD}
    )
    assert r.status_code == 409
    assert error_of(r) == {
        "code": "conflict",
        "message": "that username is already taken",
        "details": {"field": "username"},
    }
    r = await http.post(
        "/api/v1/auth/register", json={"email": "CLEO@example.com", "username": "cleo2", "password": PASSWORD}
    )
    assert r.status_code == 409
    assert error_of(r)["details"]["field"] == "email"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "d@example.com", "username": "ab", "password": PASSWORD}, "username"),
        ({"email": "d@example.com", "username": "has space", "password": PASSWORD}, "username"),
        ({"email": "d@example.com", "username": "x" * 31, "password": PASSWORD}, "username"),
        ({"email": "not-an-email", "username": "dan", "password": PASSWORD}, "email"),
        ({"email": "d@example.com", "username": "dan", "password": "short"}, "password"),
        ({"email": "d@example.com", "username": "dan"}, "password"),
        ({"email": "d@example.com", "username": 7, "password": PASSWORD}, "username"),
        ({"email": "d@example.com", "username": "dan", "password": PASSWORD, "role": "admin"}, "role"),
    ],
)
async def test_register_validation_names_the_field(
    http: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    r = await http.post("/api/v1/auth/register", json=body)
    assert r.status_code == 422, r.text
    err = error_of(r)
    assert err["code"] == "bad_request"
    assert err["details"]["field"] == field
    assert field in err["message"]


async def test_malformed_bodies_are_400(http: httpx.AsyncClient) -> None:
    r = await http.post(
        "/api/v1/auth/register", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400
    assert error_of(r) == {
        "code": "bad_request",
        "message": "request body is not valid JSON",
        "details": {"field": "body"},
    }
    r = await http.post("/api/v1/auth/register", json=["a", "list"])
    assert r.status_code == 400
    assert error_of(r)["details"]["field"] == "body"
    r = await http.post("/api/v1/auth/login", json={"password": PASSWORD})
    assert r.status_code == 422
    assert "email or username" in error_of(r)["message"]


def _token(claims: dict[str, Any], secret: str = JWT_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


async def test_bad_tokens_are_401(http: httpx.AsyncClient) -> None:
    user = (await register(http, "eve"))["user"]
    now = int(time.time())
    good = {"sub": user["id"], "role": "user", "iat": now, "exp": now + 60}
    unsigned = jwt.encode(good, None, algorithm="none")  # type: ignore[arg-type]
    cases = {
        "expired": _token({**good, "iat": now - 120, "exp": now - 60}),
        "forged": _token(good, secret="some-other-secret-" + "y" * 32),
        "alg none": unsigned,
        "garbage": "not.a.jwt",
        "no exp": _token({"sub": user["id"], "role": "user"}),
        "bad sub": _token({**good, "sub": "not-a-uuid"}),
        "bad role": _token({**good, "role": "emperor"}),
        "HS512": _token(good, algorithm="HS512"),
    }
    for name, token in cases.items():
        r = await http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, name
        assert error_of(r)["code"] == "unauthorized", name
    for header in ("Basic abc", "Bearer", "Token abc"):
        r = await http.get("/api/v1/me", headers={"Authorization": header})
        assert r.status_code == 401, header
    r = await http.get("/api/v1/me")
    assert r.status_code == 401


async def test_a_token_made_elsewhere_with_the_same_secret_works(http: httpx.AsyncClient) -> None:
    user = (await register(http, "finn"))["user"]
    now = int(time.time())
    # Supabase-style: extra claims, role "authenticated", an audience.
    token = _token(
        {
            "sub": user["id"],
            "role": "authenticated",
            "aud": "authenticated",
            "iat": now,
            "exp": now + 60,
            "email": "x",
        }
    )
    r = await http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert r.json()["username"] == "finn"
    ghost = _token({"sub": str(uuid.uuid4()), "role": "user", "exp": now + 60})
    r = await http.get("/api/v1/me", headers={"Authorization": f"Bearer {ghost}"})
    assert r.status_code == 401


async def test_health_ready_metrics_openapi(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    assert (await http.get("/readyz")).json() == {"status": "ready"}
    await http.get("/healthz")
    for made_up in ("FROB", "XYZZY"):
        assert (await http.request(made_up, "/healthz")).status_code == 405
    metrics = await http.get("/metrics")
    assert metrics.status_code == 200
    counted = {
        line.split("{", 1)[1].split("}", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in metrics.text.splitlines()
        if line.startswith("seda_http_requests_total{")
    }
    assert counted['method="GET",status="200"'] >= 3
    # a method the client made up is one label value, not one per made-up name
    assert counted['method="OTHER",status="405"'] == 2
    assert not any("FROB" in labels or "XYZZY" in labels for labels in counted)
    spec = (await http.get("/openapi.json")).json()
    assert "/api/v1/auth/register" in spec["paths"]
    register_schema = spec["paths"]["/api/v1/auth/register"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]
    assert register_schema["title"] == "RegisterBody"
    assert set(register_schema["required"]) == {"email", "username", "password"}
    r = await http.get("/api/v1/no/such/path")
    assert r.status_code == 404
    assert error_of(r)["code"] == "not_found"
