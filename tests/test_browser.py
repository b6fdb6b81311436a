"""The web client and the admin console in a real browser: the OS's Chromium driven by Playwright,
against a real ``seda serve`` (tests/browser.py). Every wait is one of Playwright's auto-waiting
expectations; a failing test leaves a screenshot of each of its pages (the path is printed)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import trio
import trio_asyncio
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from tests.browser import CHROMIUM, CHROMIUM_ARGS, Served, in_ci
from tests.live_client import PASSWORD, Live
from tests.pg import PgCluster

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists() and not in_ci(), reason="needs Debian's chromium (.ci/run installs it)"
    ),
]

expect.set_options(timeout=20_000)  # a loaded two-core machine

NewPage = Callable[..., Page]
T = TypeVar("T")


def off_loop(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """``trio_asyncio.run(fn, *args)`` on a thread of its own: Playwright's sync API keeps an
    asyncio loop running on this one, and one thread runs one loop at a time."""
    with ThreadPoolExecutor(1) as pool:
        result: T = pool.submit(trio_asyncio.run, fn, *args).result()
        return result


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    # Playwright's sync API runs a plain asyncio loop of its own; trio_asyncio's policy (set when
    # it is imported) would hand it a trio one instead. Between its calls that loop counts as
    # running on this thread, which the other modules' trio_asyncio loops cannot share: so it
    # lives only while this module's tests run (pytest ends it before another module's test).
    policy = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
    try:
        manager = sync_playwright()
        p = manager.start()
    finally:
        asyncio.set_event_loop_policy(policy)
    yield p
    p.stop()


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@contextmanager
def serving(cluster: PgCluster, data_dir: Path) -> Iterator[Served]:
    """A started server on a fresh database of the worker's cluster; stopped and dropped after."""
    name: str = off_loop(cluster.create_database)
    server = Served(data_dir, cluster.dsn_of(name))
    try:
        server.start()
        yield server
    except BaseException:
        print(f"server log:\n{server.log}")
        raise
    finally:
        server.stop()
        off_loop(cluster.drop_database, name)


@pytest.fixture(scope="module")
def served(cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server for the module's tests (each makes its own users and rooms)."""
    with serving(cluster, tmp_path_factory.mktemp("web")) as server:
        yield server


@pytest.fixture
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "screenshots"


@pytest.fixture
def new_page(browser: Browser, request: pytest.FixtureRequest, shots: Path) -> Iterator[NewPage]:
    """Pages, each in its own context (its own sessionStorage: its own signed-in user)."""
    pages: list[tuple[str, Page]] = []
    errors: list[str] = []

    def make(label: str = "page", served: Served | None = None, login: dict[str, Any] | None = None) -> Page:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(f"{label}: {e}"))
        pages.append((label, page))
        if served is not None and login is not None:
            page.goto(served.url + "/")
            sign_in_as(page, login)
        return page

    yield make
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        shots.mkdir(parents=True, exist_ok=True)
        for label, page in pages:
            path = shots / f"{request.node.name}-{label}.png"
            page.screenshot(path=str(path), full_page=True)
            print(f"screenshot on failure: {path}")
    for _, page in pages:
        page.context.close()
    assert not errors, errors  # no script on any page threw


def sign_in_as(page: Page, login: dict[str, Any]) -> None:
    """What the sign-in form stores, stored directly (the form itself is tested once)."""
    page.evaluate(
        "([t, u]) => { sessionStorage.setItem('seda.token', t); sessionStorage.setItem('seda.user', u) }",
        [login["access_token"], json.dumps(login["user"])],
    )


def messages(page: Page) -> Any:
    return page.locator("#messages li.msg .text")


def send(page: Page, text: str) -> None:
    page.locator("#composer-text").fill(text)
    page.locator("#composer-text").press("Enter")


def test_two_people_sign_up_and_chat(served: Served, new_page: NewPage) -> None:
    ana, bob = new_page("ana"), new_page("bob")
    for page, name in ((ana, "ana"), (bob, "bob")):
        page.goto(served.url + "/")
        form = page.locator("#signup")
        form.get_by_label("Email").fill(f"{name}@example.com")
        form.get_by_label("Username").fill(name)
        form.get_by_label("Password").fill(PASSWORD)
        form.get_by_role("button", name="Create account").click()
        expect(page.locator("#account")).to_contain_text(f"@{name}")

    create = ana.locator("#create")
    create.get_by_label("Name").fill("Late Night Jazz")
    create.get_by_label("Genres").fill("jazz, soul")
    create.get_by_role("button", name="Create").click()
    expect(ana).to_have_url(served.url + "/r/late-night-jazz")
    expect(ana.locator("#conn")).to_have_text("live")

    # bob finds it in the lobby and goes in
    bob.goto(served.url + "/")
    bob.get_by_role("tab", name="Discover").click()
    bob.get_by_role("link", name="Late Night Jazz").click()
    expect(bob.locator("#conn")).to_have_text("live")

    # presence, both ways
    expect(ana.locator("#people")).to_contain_text("@bob")
    expect(bob.locator("#people")).to_contain_text("@ana")

    send(ana, "hi @bob, welcome")
    expect(messages(bob)).to_have_text(["hi @bob, welcome"])
    mention = bob.locator("#messages li.msg.mentions-me mark.mention.me")
    expect(mention).to_have_text("@bob")
    expect(bob.locator("#unread")).to_have_text("1")  # the mention's notification, live

    # bob reacts; ana sees the count
    message = bob.locator("#messages li.msg").first
    message.get_by_text("React").click()
    message.get_by_role("button", name="fire").click()
    expect(ana.locator("#messages li.msg").first.locator(".reaction")).to_have_text("🔥 1")
    expect(message.locator(".reaction")).to_have_attribute("aria-pressed", "true")

    # bob replies; ana sees the reply with what it answers, and bob's message
    message.get_by_role("button", name="Reply").click()
    expect(bob.locator("#replying")).to_contain_text("Replying to @ana")
    send(bob, "thanks!")
    expect(messages(ana)).to_have_text(["hi @bob, welcome", "thanks!"])
    expect(ana.locator("#messages li.msg").nth(1).locator(".reply-ctx")).to_contain_text("@ana: hi @bob")

    # ana pins bob's message: both see the pin
    ana.locator("#messages li.msg").nth(1).get_by_role("button", name="Pin").click()
    expect(bob.locator("#pin-list")).to_contain_text("thanks!")

    # bob leaves: ana sees it
    bob.close()
    expect(ana.locator("#people")).not_to_contain_text("@bob")


def test_chat_text_is_never_html(served: Served, new_page: NewPage) -> None:
    eve = served.user("eve")
    room = served.call("POST", "/api/v1/rooms", eve["access_token"], json={"name": "Markup"}).json()
    page = new_page("eve", served, eve)
    page.goto(f"{served.url}/r/{room['slug']}")
    expect(page.locator("#conn")).to_have_text("live")
    attack = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script><b>bold</b>'
    send(page, attack)
    expect(messages(page)).to_have_text([attack])
    assert page.locator("#messages img, #messages script, #messages b").count() == 0
    assert page.evaluate("window.__xss") is None
    # the page carries a CSP that forbids inline script anyway
    response = page.request.get(f"{served.url}/r/{room['slug']}")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


def scroll_to_top(page: Page) -> None:
    """What a reader does to see earlier messages (one scroll event, one page)."""
    page.locator("#scroller").evaluate("node => { node.scrollTop = 0 }")


BURST, RATE, WINDOW, PAGE = 600, 200, 200, 50  # WINDOW and PAGE as in room.js


def test_a_chat_burst_keeps_the_page_responsive_and_the_dom_bounded(
    served: Served, new_page: NewPage
) -> None:
    talker, watcher_login = served.user("talker"), served.user("watcher")
    room = served.call("POST", "/api/v1/rooms", talker["access_token"], json={"name": "Loud"}).json()
    page = new_page("watcher", served, watcher_login)
    page.goto(f"{served.url}/r/{room['slug']}")
    expect(page.locator("#conn")).to_have_text("live")
    page.evaluate(
        """() => { window.__longest = 0; new PerformanceObserver((list) => {
             for (const e of list.getEntries()) window.__longest = Math.max(window.__longest, e.duration)
           }).observe({type: "longtask"}) }"""
    )

    async def burst() -> None:
        async with (
            httpx.AsyncClient(base_url=served.url, timeout=30) as http,
            Live(http, served.live_port).connect(room["id"], talker["access_token"]) as sock,
        ):
            start = trio.current_time()
            for n in range(BURST):
                await trio.sleep_until(start + n / RATE)  # the offered rate, not a wait for a result
                await sock.send("chat.send", {"text": f"burst {n}"})
            replies = 0
            while replies < BURST:
                message = await sock.recv()
                if message["type"] == "reply":
                    assert message["ok"], message
                    replies += 1

    off_loop(burst)
    last = page.locator("#messages li.msg .text").last
    expect(last).to_have_text(f"burst {BURST - 1}")
    expect(page.locator("#messages li.msg")).to_have_count(WINDOW)
    longest = page.evaluate("window.__longest")
    print(f"longest task on the page during {BURST} messages at {RATE}/s: {longest:.0f} ms")
    assert longest < 500
    # typing still works at once
    page.locator("#composer-text").fill("still here")
    expect(page.locator("#composer-text")).to_have_value("still here")

    # earlier ones come back on scroll (from memory), the newest go, the DOM stays bounded
    first = page.locator("#messages li.msg .text").first
    expect(first).to_have_text(f"burst {BURST - WINDOW}")
    scroll_to_top(page)
    expect(first).to_have_text(f"burst {BURST - WINDOW - PAGE}")
    expect(page.locator("#messages li.msg")).to_have_count(WINDOW)
    expect(page.locator("#jump")).to_be_hidden()

    # a fresh page has the welcome's 50; earlier ones come from REST history, in order, once
    page.reload()
    expect(page.locator("#conn")).to_have_text("live")
    expect(page.locator("#messages li.msg")).to_have_count(50)
    for step in (1, 2):
        scroll_to_top(page)
        expect(first).to_have_text(f"burst {BURST - 50 - step * PAGE}")
    texts = page.locator("#messages li.msg .text").all_inner_texts()
    assert texts == [f"burst {n}" for n in range(BURST - 150, BURST)]


def test_a_dj_track_plays_and_ends_while_a_listener_votes(served: Served, new_page: NewPage) -> None:
    dj_login, fan_login = served.user("deejay"), served.user("listener")
    room = served.call("POST", "/api/v1/rooms", dj_login["access_token"], json={"name": "Booth"}).json()
    dj = new_page("dj", served, dj_login)
    fan = new_page("fan", served, fan_login)
    for page in (dj, fan):
        page.goto(f"{served.url}/r/{room['slug']}")
        expect(page.locator("#conn")).to_have_text("live")

    dj.get_by_label("Session mode").select_option("fan")
    dj.get_by_role("button", name="Start a DJ session").click()
    dj.get_by_role("button", name="Join the rotation").click()
    expect(dj.locator("#rotation")).to_contain_text("you")
    expect(fan.locator("#rotation")).to_contain_text("@deejay")

    add = dj.locator("#queue-add")
    add.get_by_label("Track link").fill("https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC")
    add.get_by_label("Title").fill("Short One")
    add.get_by_label("Artist").fill("The Testers")
    add.get_by_label("Length (seconds)").fill("2")
    add.get_by_role("button", name="Add to my queue").click()
    expect(add.get_by_label("Title")).to_have_value("")

    # it plays for both, with a progress bar; the listener votes it up and the DJ sees the tally
    expect(fan.locator("#np-title")).to_have_text("Short One")
    expect(dj.locator("#progress")).to_be_visible()
    fan.locator('#votes [data-vote="up"]').click()
    expect(dj.locator('#votes [data-count="up"]')).to_have_text("1")
    # ... and it ends by itself, for both
    expect(fan.locator("#status")).to_contain_text("“Short One” finished (👍 1 👎 0)")
    expect(dj.locator("#now-playing")).to_contain_text("nothing playing")

    # my queue: a long track plays, two more wait; the second is moved above the first
    for title in ("Long Play", "Second", "Third"):
        add.get_by_label("Track link").fill(
            f"https://soundcloud.com/testers/{title.lower().replace(' ', '-')}"
        )
        add.get_by_label("Title").fill(title)
        add.get_by_label("Artist").fill("The Testers")
        add.get_by_label("Length (seconds)").fill("600")
        add.get_by_role("button", name="Add to my queue").click()
        expect(add.get_by_label("Title")).to_have_value("")  # added: the form was cleared
    expect(fan.locator("#np-title")).to_have_text("Long Play")
    expect(dj.locator("#my-queue li")).to_have_count(2)
    dj.get_by_role("button", name="Move Third up").click()
    expect(dj.locator("#my-queue li .grow")).to_have_text(["Third — The Testers", "Second — The Testers"])
    expect(fan.locator("#up-next li .grow")).to_have_text(
        ["Third — The Testers by @deejay", "Second — The Testers by @deejay"]
    )
    # the DJ skips the playing track: the reordered queue plays next
    dj.get_by_role("button", name="Skip track").click()
    expect(fan.locator("#np-title")).to_have_text("Third")


def test_reconnects_after_a_restart_with_no_gap_and_no_duplicate(
    cluster: PgCluster, tmp_path: Path, new_page: NewPage
) -> None:
    with serving(cluster, tmp_path / "restart") as server:
        reader_login, writer_login = server.user("reader"), server.user("writer")
        room = server.call(
            "POST", "/api/v1/rooms", writer_login["access_token"], json={"name": "Steady"}
        ).json()
        page = new_page("reader", server, reader_login)
        page.goto(f"{server.url}/r/{room['slug']}")
        expect(page.locator("#conn")).to_have_text("live")

        sent: list[str] = []

        async def chat(texts: list[str]) -> None:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                live = Live(http, server.live_port)
                async with live.connect(room["id"], writer_login["access_token"]) as sock:
                    for text in texts:
                        await sock.chat(text, nonce=text)

        before = [f"before {n}" for n in range(5)]
        off_loop(chat, before)
        sent += before
        expect(messages(page)).to_have_text(sent)

        server.stop()
        expect(page.locator("#conn")).to_have_text("reconnecting…")
        server.start()
        during = [f"while you were away {n}" for n in range(30)]
        off_loop(chat, during)
        sent += during
        expect(page.locator("#conn")).to_contain_text("live")
        after = [f"after {n}" for n in range(3)]
        off_loop(chat, after)
        sent += after
        # every message once, in the order sent (the DOM in seq order)
        expect(messages(page)).to_have_text(sent)
        seqs = [
            int(s)
            for s in page.locator("#messages li.msg").evaluate_all("els => els.map(e => e.dataset.seq)")
        ]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_admin_console_sees_nodes_live_rooms_and_resolves_a_report(
    served: Served, new_page: NewPage, shots: Path
) -> None:
    admin_login = served.user("root", role="admin")
    owner, reporter = served.user("roomowner"), served.user("reporter")
    room = served.call("POST", "/api/v1/rooms", owner["access_token"], json={"name": "Busy Room"}).json()

    # the room is live: a DJ session plays, two people talk, and one says something rude
    token = owner["access_token"]
    session = served.call("POST", f"/api/v1/rooms/{room['id']}/dj/start", token, json={"mode": "fan"}).json()
    served.call("POST", f"/api/v1/dj/sessions/{session['session_id']}/rotation/join", token)
    for title, artist in (
        ("So What", "Miles Davis"),
        ("Blue in Green", "Miles Davis"),
        ("Naima", "John Coltrane"),
    ):
        track = {"url": f"https://www.deezer.com/en/track/{abs(hash(title)) % 10**8}", "title": title,
                 "artist": artist, "duration_ms": 540_000}  # fmt: skip
        r = served.call(
            "POST", f"/api/v1/dj/sessions/{session['session_id']}/queue", token, json={"track": track}
        )
        assert r.status_code == 201, r.text
    room_page = new_page("room", served, owner)
    room_page.goto(f"{served.url}/r/{room['slug']}")
    listener = new_page("reporter", served, reporter)
    listener.goto(f"{served.url}/r/{room['slug']}")
    expect(room_page.locator("#people")).to_contain_text("@reporter")
    send(listener, "what a night for modal jazz")
    send(room_page, "welcome @reporter, requests are open")
    send(room_page, "buy my mixtape at totally-not-spam.example")
    expect(messages(listener)).to_have_count(3)
    listener.locator("#messages li.msg").first.get_by_text("React").click()
    listener.locator("#messages li.msg").first.get_by_role("button", name="fire").click()
    listener.locator('#votes [data-vote="up"]').click()
    expect(room_page.locator('#votes [data-count="up"]')).to_have_text("1")
    message_id = room_page.locator("#messages li.msg").last.get_attribute("data-id")
    r = served.call(
        "POST",
        "/api/v1/reports",
        reporter["access_token"],
        json={"target_type": "message", "target_id": message_id, "reason": "spam", "description": "ads"},
    )
    assert r.status_code == 201, r.text

    admin = new_page("admin", served, admin_login)
    admin.goto(served.url + "/admin")
    expect(admin.locator("#nodes tbody tr")).to_have_count(1)
    expect(admin.locator("#live-rooms")).to_contain_text("Busy Room")
    expect(admin.locator("#live-rooms")).to_contain_text("fan · So What")
    expect(admin.locator("#journal")).to_contain_text("batches")
    report = admin.locator("#reports tbody tr", has_text="ads")
    expect(report).to_contain_text("spam")
    report.get_by_label("Action").select_option("warn")
    report.get_by_role("button", name="Resolve").click()
    expect(admin.locator("#reports")).not_to_contain_text("ads")

    # the author's moderation status shows the warning
    admin.get_by_label("Username").fill("roomowner")
    admin.get_by_role("button", name="Look up").click()
    expect(admin.locator("#user-status")).to_contain_text("warnings: 1")

    # the pictures the README shows, always taken
    shots.mkdir(parents=True, exist_ok=True)
    room_page.screenshot(path=str(shots / "room.png"))
    admin.screenshot(path=str(shots / "admin.png"), full_page=True)
    print(f"screenshots of the room page and the admin console: {shots}")


def test_a_non_admin_is_refused_at_admin(served: Served, new_page: NewPage) -> None:
    page = new_page("user", served, served.user("plainuser"))
    with page.expect_response(lambda r: r.url.endswith("/api/v1/admin/nodes")) as nodes:
        page.goto(served.url + "/admin")
    assert nodes.value.status == 403
    expect(page.locator("#refused")).to_contain_text("Admins only")
    expect(page.locator("#console")).to_be_hidden()


def test_docs_render_the_openapi_locally(served: Served, new_page: NewPage) -> None:
    page = new_page("docs")
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(served.url) else outside.append(r.url))
    page.goto(served.url + "/docs")
    expect(page.locator("#ops .op").first).to_be_visible()
    page.get_by_label("Filter").fill("/api/v1/live")
    op = page.locator("#ops .op:visible", has_text="/api/v1/live")
    expect(op.first).to_be_visible()
    op.first.locator("summary").click()
    expect(op.first).to_contain_text("token_subprotocol_prefix")
    assert outside == []


UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button')]
    .filter(el => el.type !== 'hidden')
    .filter(el => !((el.getAttribute('aria-label') || '').trim()
        || el.getAttribute('aria-labelledby')
        || (el.labels && el.labels.length)
        || (el.tagName === 'BUTTON' && el.textContent.trim())
        || (el.getAttribute('title') || '').trim()))
    .map(el => el.outerHTML.slice(0, 120))"""
CONTROLS = "() => document.querySelectorAll('input, select, textarea, button').length"


def test_signing_in_by_keyboard_and_every_control_has_a_label(served: Served, new_page: NewPage) -> None:
    """The pages are usable by keyboard: from the top of the page, Tab reaches the sign-in form,
    which is filled and sent with keys alone; and every control on the home page, a room and the
    admin console has an accessible name (a label, aria-label or its text)."""
    login = served.user("kim")
    page = new_page("kim")
    page.goto(served.url + "/")
    expect(page.locator("#signin")).to_be_visible()
    for _ in range(30):  # Tab until the sign-in form's first field has the focus
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement && document.activeElement.name") == "login":
            break
    else:
        raise AssertionError("Tab never reached the sign-in form")
    page.keyboard.type("kim")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("#account")).to_contain_text("@kim")
    assert page.evaluate(CONTROLS) > 3 and page.evaluate(UNLABELLED) == []

    room = served.call("POST", "/api/v1/rooms", login["access_token"], json={"name": "Keys Room"})
    assert room.status_code == 201, room.text
    page.goto(served.url + "/r/" + room.json()["slug"])
    expect(page.locator("#conn")).to_have_text("live")
    assert page.evaluate(CONTROLS) > 3 and page.evaluate(UNLABELLED) == []

    admin = new_page("admin", served, served.user("kimadmin", role="admin"))
    admin.goto(served.url + "/admin")
    expect(admin.locator("#nodes tbody tr")).to_have_count(1)
    assert admin.evaluate(CONTROLS) > 3 and admin.evaluate(UNLABELLED) == []
