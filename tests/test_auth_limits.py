"""Limits on login and sign-up, over real HTTP: failed logins per account (with lockouts that
double), attempts per client address (X-Forwarded-For only from declared proxies), and the
bounded number of Argon2 hashes at once.

Time is trio's MockClock where a test reads Retry-After: it only moves when the test jumps it.
"""

from __future__ import annotations

import ipaddress
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import trio
import trio.testing
from argon2 import PasswordHasher

import server.auth
import server.http.accounts
from protocol.errors import RateLimited
from server import auth_limits
from server.auth import PasswordHashing, usable_cores
from server.auth_limits import MAX_LOCKOUT_S, AuthLimits, client_address
from server.config import Settings
from server.context import AppContext
from tests.live_client import Live
from tests.process import running

PASSWORD = "correct horse battery"
WRONG = "not the password"
LOGIN = "/api/v1/auth/login"
REGISTER = "/api/v1/auth/register"


@pytest.fixture
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 at its cheapest, for tests of the limits rather than of the hashing."""
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(server.auth, "_hasher", cheap)
    monkeypatch.setattr(server.http.accounts, "DUMMY_HASH", cheap.hash("a dummy password"))


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """The suite's settings, with what a test's ``indirect`` parameter changes."""
    changes: dict[str, Any] = getattr(request, "param", {})
    return replace(settings, **changes)


def with_settings(**changes: Any) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("settings", [changes], indirect=True, ids=[""])


async def register(http: httpx.AsyncClient, name: str, **headers: str) -> httpx.Response:
    return await http.post(
        REGISTER,
        json={"email": f"{name}@example.com", "username": name, "password": PASSWORD},
        headers=headers,
    )


async def login(http: httpx.AsyncClient, name: str, password: str = WRONG, **headers: str) -> httpx.Response:
    return await http.post(LOGIN, json={"username": name, "password": password}, headers=headers)


def assert_rate_limited(r: httpx.Response, retry_after_s: int) -> str:
    """A 429 whose header and body both say when to try again; returns its message."""
    assert r.status_code == 429, r.text
    assert r.headers["Retry-After"] == str(retry_after_s)
    assert r.json() == {
        "error": {
            "code": "rate_limited",
            "message": r.json()["error"]["message"],
            "retry_after_ms": retry_after_s * 1000,
        }
    }
    message: str = r.json()["error"]["message"]
    return message


async def fail_times(http: httpx.AsyncClient, name: str, times: int, **body: str) -> None:
    for _ in range(times):
        r = await http.post(LOGIN, json={"username": name, "password": WRONG, **body})
        assert r.status_code == 401, r.text


# -- per account ---------------------------------------------------------------------------------


async def test_failed_logins_lock_the_account_with_a_lockout_that_doubles(
    http: httpx.AsyncClient, mock_clock: trio.testing.MockClock, cheap_hashes: None
) -> None:
    assert (await register(http, "ana")).status_code == 201
    assert (await register(http, "ben")).status_code == 201
    await fail_times(http, "ana", 5)
    assert "account" in assert_rate_limited(await login(http, "ana"), 60)
    assert_rate_limited(await login(http, "ana", PASSWORD), 60)  # locked: the right password too
    assert (await login(http, "ben", PASSWORD)).status_code == 200  # other accounts are not
    mock_clock.jump(59)
    assert_rate_limited(await login(http, "ana"), 1)

    mock_clock.jump(1)  # the lockout is over: five more tries, then twice as long
    await fail_times(http, "ana", 5)
    assert_rate_limited(await login(http, "ana", PASSWORD), 120)
    mock_clock.jump(120)
    await fail_times(http, "ana", 5)
    assert_rate_limited(await login(http, "ana"), 240)

    # Up to a cap.
    for lockout in (240, 480, 900, 900):
        mock_clock.jump(lockout)
        await fail_times(http, "ana", 5)
    assert_rate_limited(await login(http, "ana"), int(MAX_LOCKOUT_S))

    # A right password after the lockout starts the account over at a minute.
    mock_clock.jump(MAX_LOCKOUT_S)
    assert (await login(http, "ana", PASSWORD)).status_code == 200
    await fail_times(http, "ana", 5)
    assert_rate_limited(await login(http, "ana"), 60)


async def test_a_successful_login_clears_the_failures(
    http: httpx.AsyncClient, mock_clock: trio.testing.MockClock, cheap_hashes: None
) -> None:
    assert (await register(http, "cleo")).status_code == 201
    for _ in range(3):  # 12 failures in no time at all, never 5 without a success between
        await fail_times(http, "cleo", 4)
        assert (await login(http, "cleo", PASSWORD)).status_code == 200
    await fail_times(http, "cleo", 5)
    assert_rate_limited(await login(http, "cleo"), 60)


async def test_failures_refill_at_the_configured_rate(
    http: httpx.AsyncClient, mock_clock: trio.testing.MockClock, cheap_hashes: None
) -> None:
    assert (await register(http, "dina")).status_code == 201
    for _ in range(10):  # one failure every 12 s is five a minute, forever
        await fail_times(http, "dina", 1)
        mock_clock.jump(12)
    await fail_times(http, "dina", 5)
    assert_rate_limited(await login(http, "dina"), 60)


async def test_email_and_username_count_against_one_account_and_unknown_logins_alike(
    http: httpx.AsyncClient, mock_clock: trio.testing.MockClock, cheap_hashes: None
) -> None:
    assert (await register(http, "eve")).status_code == 201
    await fail_times(http, "eve", 3)
    for _ in range(2):
        r = await http.post(LOGIN, json={"email": "EVE@example.com", "password": WRONG})
        assert r.status_code == 401
    assert_rate_limited(await login(http, "eve"), 60)

    # Someone who does not exist is limited the same way: a 429 tells nothing about accounts.
    await fail_times(http, "nobody_here", 5)
    assert_rate_limited(await login(http, "Nobody_Here"), 60)


async def test_concurrent_wrong_logins_get_no_more_tries_than_the_limit(
    http: httpx.AsyncClient, mock_clock: trio.testing.MockClock, cheap_hashes: None
) -> None:
    assert (await register(http, "finn")).status_code == 201
    statuses: list[int] = []

    async def one() -> None:
        statuses.append((await login(http, "finn")).status_code)

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(one)
    assert sorted(statuses) == [401] * 5 + [429] * 15


@with_settings(login_fails_per_min=2)
async def test_the_account_limit_is_configurable(
    http: httpx.AsyncClient, mock_clock: trio.testing.MockClock, cheap_hashes: None
) -> None:
    assert (await register(http, "gus")).status_code == 201
    await fail_times(http, "gus", 2)
    assert_rate_limited(await login(http, "gus"), 60)


@with_settings(login_fails_per_min=0, auth_per_min_per_addr=0)
async def test_zero_turns_both_limits_off(http: httpx.AsyncClient, cheap_hashes: None) -> None:
    statuses: list[int] = []

    async def sign_up(n: int) -> None:
        statuses.append((await register(http, f"user_{n}")).status_code)

    async with trio.open_nursery() as nursery:
        for n in range(25):  # more than the default 20 per address
            nursery.start_soon(sign_up, n)
    assert statuses == [201] * 25
    await fail_times(http, "user_0", 12)  # more than the default 5 per account
    assert (await login(http, "user_0", PASSWORD)).status_code == 200


# -- per client address --------------------------------------------------------------------------


@with_settings(auth_per_min_per_addr=3)
async def test_login_and_sign_up_attempts_share_a_limit_per_address(
    http: httpx.AsyncClient, mock_clock: trio.testing.MockClock, cheap_hashes: None
) -> None:
    assert (await register(http, "hana")).status_code == 201
    assert (await login(http, "hana")).status_code == 401
    assert (await login(http, "hana", PASSWORD)).status_code == 200
    # Three a minute: one every 20 s.
    assert "address" in assert_rate_limited(await register(http, "ivan"), 20)
    assert_rate_limited(await login(http, "hana", PASSWORD), 20)
    mock_clock.jump(20)
    assert (await register(http, "ivan")).status_code == 201
    assert_rate_limited(await login(http, "ivan", PASSWORD), 20)


@with_settings(auth_per_min_per_addr=2)
async def test_forwarded_for_is_ignored_without_trusted_proxies(
    http: httpx.AsyncClient, mock_clock: trio.testing.MockClock, cheap_hashes: None
) -> None:
    # Each request claims another client; the socket's peer (127.0.0.1) is what counts.
    for n in range(2):
        assert (await login(http, "nobody", **{"X-Forwarded-For": f"203.0.113.{n}"})).status_code == 401
    assert_rate_limited(await login(http, "nobody", **{"X-Forwarded-For": "203.0.113.9"}), 30)


@with_settings(
    auth_per_min_per_addr=2,
    trusted_proxies=(ipaddress.ip_network("127.0.0.1"), ipaddress.ip_network("10.0.0.0/8")),
)
async def test_forwarded_for_names_the_client_behind_trusted_proxies(
    http: httpx.AsyncClient, mock_clock: trio.testing.MockClock, cheap_hashes: None
) -> None:
    async def attempt(forwarded_for: str) -> httpx.Response:
        return await login(http, "nobody", **{"X-Forwarded-For": forwarded_for})

    assert (await attempt("203.0.113.7")).status_code == 401
    # Through a second proxy of ours (10.1.2.3), with a forged entry on the left: still .7.
    assert (await attempt("6.6.6.6, 203.0.113.7, 10.1.2.3")).status_code == 401
    assert_rate_limited(await attempt("1.2.3.4, 203.0.113.7"), 30)
    assert (await attempt("203.0.113.8")).status_code == 401  # another client behind the proxy
    # No header: the proxy itself is the client.
    assert (await login(http, "nobody")).status_code == 401


def test_client_address_walks_forwarded_for_from_the_right() -> None:
    proxies = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8:ffff::/48"))
    assert client_address("198.51.100.1", ["203.0.113.7"], proxies) == "198.51.100.1"  # not a proxy
    assert client_address("10.0.0.2", ["203.0.113.7"], ()) == "10.0.0.2"  # nobody declared
    assert client_address("10.0.0.2", ["1.1.1.1, 203.0.113.7", "10.9.9.9"], proxies) == "203.0.113.7"
    assert client_address("10.0.0.2", ["10.0.0.3, 10.0.0.4"], proxies) == "10.0.0.3"  # all ours
    assert client_address("10.0.0.2", [], proxies) == "10.0.0.2"
    assert client_address("10.0.0.2", ["203.0.113.7:5150"], proxies) == "203.0.113.7"
    assert client_address("10.0.0.2", ["evil, garbage"], proxies) == "10.0.0.2"  # not an address
    # IPv6 clients count by /64; v4-mapped addresses as IPv4.
    assert client_address("2001:db8:1:2:aaaa::1", [], ()) == "2001:db8:1:2::/64"
    assert client_address("2001:db8:ffff::9", ["[2001:db8:1:2::77]:443"], proxies) == "2001:db8:1:2::/64"
    assert client_address("::ffff:198.51.100.4", [], ()) == "198.51.100.4"
    assert client_address(None, [], proxies) == "unknown"


def test_rested_entries_are_forgotten() -> None:
    now = [0.0]
    limits = AuthLimits(fails_per_min=5, per_min_per_addr=20, clock=lambda: now[0])
    for n in range(100):
        limits.attempt_from(f"198.51.100.{n}")
        limits.login_attempt(f"login:user{n}")
        limits.login_failed(f"login:user{n}")
    for _ in range(5):
        limits.login_attempt("login:locked")
        limits.login_failed("login:locked")
    assert limits.entries == 201
    now[0] = 61.0  # refilled, except the locked account
    limits.attempt_from("198.51.100.1")
    assert limits.entries == 2
    now[0] = 60.0 + MAX_LOCKOUT_S + 61.0
    limits.attempt_from("198.51.100.2")
    assert limits.entries == 1


def test_a_flood_of_made_up_logins_and_addresses_is_held_to_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Between sweeps, distinct logins and addresses cannot grow the tables past MAX_ENTRIES each:
    the oldest entry makes room (found in review: each made-up login stayed for a minute)."""
    monkeypatch.setattr(auth_limits, "MAX_ENTRIES", 50)
    limits = AuthLimits(fails_per_min=5, per_min_per_addr=20, clock=lambda: 0.0)
    for n in range(500):
        limits.attempt_from(f"2001:db8:{n:x}::1")
        limits.login_attempt(f"login:made-up-{n}")
    assert limits.entries == 100
    # the newest are the ones held: the last login is still limited as it should be
    for _ in range(4):
        limits.login_attempt("login:made-up-499")
    with pytest.raises(RateLimited):
        limits.login_attempt("login:made-up-499")


# -- concurrent hashes ---------------------------------------------------------------------------


async def test_hashes_never_exceed_the_slots(
    http: httpx.AsyncClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ctx.passwords.slots == usable_cores()
    running, peak = 0, 0
    lock = threading.Lock()
    real_verify: Callable[[str, str], bool] = server.auth.verify_password

    def counted(password_hash: str, password: str) -> bool:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            return real_verify(password_hash, password)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(server.auth, "verify_password", counted)
    statuses: list[int] = []

    async def one(n: int) -> None:  # a different unknown account each: every one is hashed
        statuses.append((await login(http, f"nobody_{n}")).status_code)

    async with trio.open_nursery() as nursery:
        for n in range(4 * ctx.passwords.slots + 4):
            nursery.start_soon(one, n)
    assert statuses == [401] * (4 * ctx.passwords.slots + 4)
    assert peak == ctx.passwords.slots


async def test_a_flood_past_the_slots_wait_is_turned_away_with_retry_after(
    http: httpx.AsyncClient, ctx: AppContext
) -> None:
    ctx.passwords = PasswordHashing(slots=1, wait_s=0.05)  # an Argon2 verify takes longer than that
    responses: dict[str, httpx.Response] = {}

    async def one(name: str) -> None:
        responses[name] = await login(http, name)

    async with trio.open_nursery() as nursery:
        for n in range(8):
            nursery.start_soon(one, f"nobody_{n}")
    statuses = sorted(r.status_code for r in responses.values())
    assert statuses[0] == 401 and statuses[-1] == 429, statuses
    turned_away = [name for name, r in responses.items() if r.status_code == 429]
    for name in turned_away:
        assert_rate_limited(responses[name], 1)
    # A try that was turned away before its password was checked is given back to the account.
    for _ in range(5):
        ctx.auth_limits.login_attempt(f"login:{turned_away[0]}")


# -- a login flood against a real server ---------------------------------------------------------

ARGON2_MIB = 64  # argon2-cffi's default memory cost per hash
FLOOD_TASKS = 40
FLOOD_S = 6.0


@dataclass
class FloodFigures:
    rss_base: int = 0
    rss_peak: int = 0
    threads_base: int = 0
    threads_peak: int = 0
    chat_rtt: list[float] = field(default_factory=list)
    healthz: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)

    def summary(self) -> str:
        return (
            f"RSS {self.rss_base / 2**20:.0f} -> peak {self.rss_peak / 2**20:.0f} MiB, "
            f"threads {self.threads_base} -> peak {self.threads_peak}, "
            f"chat round trip max {max(self.chat_rtt) * 1000:.0f} ms (n={len(self.chat_rtt)}), "
            f"/healthz max {max(self.healthz) * 1000:.0f} ms, logins {dict(self.statuses)}"
        )


@pytest.mark.slow
async def test_a_login_flood_leaves_chat_latency_and_memory_bounded(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """40 clients log in with wrong passwords as fast as they can, each time as someone else (so
    the account limit never spares a hash; the per-address limit is off, as for a botnet), while
    a chat client talks in a room. Before the limits: 2.1 GB and 108 threads."""
    env = {"SEDA_CHAT_RATE": "100000", "SEDA_CHAT_RATE_WINDOW_S": "1", "SEDA_OPS_PER_SECOND": "100000"}
    async with running(tmp_path / "data", nursery, **env) as seda:
        assert seda.process is not None
        proc = psutil.Process(seda.process.pid)
        figures = FloodFigures()
        limits = httpx.Limits(max_connections=FLOOD_TASKS + 10)
        base_url = f"http://127.0.0.1:{seda.http_port}"
        async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as http:
            live = Live(http, seda.live_port)
            token, _ = await live.user("talker")
            room_id = (await live.room(token))["id"]
            async with live.connect(room_id, token) as talker:
                await talker.chat("warm-up")
                assert (await login(http, "warm_up")).status_code == 401
                figures.rss_base, figures.threads_base = proc.memory_info().rss, proc.num_threads()
                flooding = True

                async def flood(task: int) -> None:
                    n = 0
                    while flooding:
                        n += 1
                        figures.statuses[(await login(http, f"flood_{task}_{n}")).status_code] += 1

                async def chat() -> None:
                    n = 0
                    while flooding:
                        n += 1
                        started = trio.current_time()
                        await talker.chat(f"still here {n}")
                        figures.chat_rtt.append(trio.current_time() - started)
                        await trio.sleep(0.1)  # pacing, not waiting for anything

                async def healthz() -> None:
                    while flooding:
                        started = trio.current_time()
                        assert (await http.get("/healthz")).status_code == 200
                        figures.healthz.append(trio.current_time() - started)
                        await trio.sleep(0.1)

                async def sample() -> None:
                    while flooding:
                        with proc.oneshot():
                            figures.rss_peak = max(figures.rss_peak, proc.memory_info().rss)
                            figures.threads_peak = max(figures.threads_peak, proc.num_threads())
                        await trio.sleep(0.02)

                async with trio.open_nursery() as load:
                    for task in range(FLOOD_TASKS):
                        load.start_soon(flood, task)
                    for watcher in (chat, healthz, sample):
                        load.start_soon(watcher)
                    await trio.sleep(FLOOD_S)
                    flooding = False
    print(figures.summary())
    slots = usable_cores()
    assert figures.statuses[401] > 0 and set(figures.statuses) <= {401, 429}, figures.summary()
    # At most one hash per slot in memory at once, plus room for allocator slack.
    assert figures.rss_peak - figures.rss_base < (slots * ARGON2_MIB + 128) * 2**20, figures.summary()
    # A worker thread and Argon2's lane threads per slot.
    assert figures.threads_peak - figures.threads_base <= slots * 5 + 4, figures.summary()
    assert len(figures.chat_rtt) >= 10 and max(figures.chat_rtt) < 1.0, figures.summary()
    assert max(figures.healthz) < 1.0, figures.summary()
