"""Set-up through the REST API: users (with an optional cache) and rooms."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

PASSWORD = "bench correct horse battery"
REGISTER_CONCURRENCY = 8


class SetupFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class User:
    username: str
    user_id: str
    token: str


class RestApi:
    """The few REST calls a bench run needs to set itself up."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = httpx.AsyncClient(base_url=self.base_url, timeout=120)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _json(self, response: httpx.Response, *expected: int) -> dict[str, Any]:
        if response.status_code not in expected:
            raise SetupFailed(
                f"{response.request.method} {response.request.url.path}: "
                f"HTTP {response.status_code} {response.text[:300]}"
            )
        body: dict[str, Any] = response.json()
        return body

    async def register(self, username: str) -> User:
        body = await self._json(
            await self.client.post(
                "/api/v1/auth/register",
                json={"email": f"{username}@bench.example.com", "username": username, "password": PASSWORD},
            ),
            201,
        )
        return User(username, str(body["user"]["id"]), str(body["access_token"]))

    async def login(self, username: str, password: str = PASSWORD) -> str:
        """A token for an existing user (e.g. an admin made with ``seda user create``)."""
        body = await self._json(
            await self.client.post("/api/v1/auth/login", json={"username": username, "password": password}),
            200,
        )
        return str(body["access_token"])

    async def get_json(self, path: str, token: str) -> tuple[int, Any]:
        """GET with a bearer token: the status and the decoded body (None if it is not JSON)."""
        response = await self.client.get(path, headers={"Authorization": f"Bearer {token}"})
        try:
            body = response.json()
        except ValueError:
            body = None
        return response.status_code, body

    async def token_works(self, token: str) -> bool:
        response = await self.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        return response.status_code == 200

    async def create_room(self, token: str, name: str, **fields: Any) -> str:
        body = await self._json(
            await self.client.post(
                "/api/v1/rooms",
                json={"name": name, **fields},
                headers={"Authorization": f"Bearer {token}"},
            ),
            201,
        )
        return str(body["id"])

    async def block(self, token: str, user_id: str) -> None:
        """The token's user blocks ``user_id`` (personal blocks; already blocked is fine)."""
        await self._json(
            await self.client.post(
                "/api/v1/me/blocks", json={"user_id": user_id}, headers={"Authorization": f"Bearer {token}"}
            ),
            200,
            201,
        )

    async def unblock(self, token: str, user_id: str) -> None:
        """The token's user no longer blocks ``user_id`` (not blocking it is fine: 404)."""
        response = await self.client.delete(
            f"/api/v1/me/blocks/{user_id}", headers={"Authorization": f"Bearer {token}"}
        )
        if response.status_code not in (204, 404) or (
            response.status_code == 404 and "block" not in response.text
        ):
            raise SetupFailed(
                f"DELETE /api/v1/me/blocks/{user_id}: HTTP {response.status_code} {response.text[:300]}"
            )

    async def get(self, path: str) -> httpx.Response:
        return await self.client.get(path)


class UserPool:
    """Registered users to hand out, kept in ``cache`` (a JSON file) between runs if given.

    Registration hashes a password with Argon2id on the server (~0.25 s of CPU
    each), so a run with a thousand voters spends minutes registering them the
    first time; with a cache (``--user-cache``, or the spawned server's
    ``--data-dir``) later runs against the same database reuse them.
    """

    def __init__(self, api: RestApi, cache: Path | None, on_progress: Callable[[int, int], None]) -> None:
        self.api = api
        self.cache = cache
        self.on_progress = on_progress
        self._users: list[User] = []
        self._handed_out = 0
        self._loaded = False

    async def _load(self) -> None:
        self._loaded = True
        if self.cache is None or not self.cache.exists():
            return
        users = [User(**entry) for entry in json.loads(self.cache.read_text())["users"]]
        if users and await self.api.token_works(users[0].token):
            self._users = users

    def _save(self) -> None:
        if self.cache is not None:
            self.cache.parent.mkdir(parents=True, exist_ok=True)
            self.cache.write_text(json.dumps({"users": [asdict(u) for u in self._users]}))

    async def take(self, count: int) -> list[User]:
        """``count`` users no earlier ``take`` of this run returned."""
        if not self._loaded:
            await self._load()
        missing = self._handed_out + count - len(self._users)
        if missing > 0:
            await self._register(missing)
        users = self._users[self._handed_out : self._handed_out + count]
        self._handed_out += count
        return users

    async def _register(self, count: int) -> None:
        tag = secrets.token_hex(3)
        done = 0
        slots = asyncio.Semaphore(REGISTER_CONCURRENCY)
        fresh: list[User] = []

        async def one(index: int) -> None:
            nonlocal done
            async with slots:
                fresh.append(await self.api.register(f"b{tag}_{index}"))
            done += 1
            self.on_progress(done, count)

        try:
            await asyncio.gather(*(one(i) for i in range(count)))
        finally:
            self._users.extend(fresh)
            self._save()
