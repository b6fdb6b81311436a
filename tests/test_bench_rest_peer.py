"""The REST peer (bench/peers/rest_peer.py) answers the three reads exactly as seda does."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import trio

from server.runtime import Bound

PEER = Path(__file__).resolve().parents[1] / "bench" / "peers" / "rest_peer.py"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_peer_serves_the_same_json_as_seda(
    server: Bound, http: httpx.AsyncClient, dsn: str, tmp_path: Path
) -> None:
    registered = await http.post(
        "/api/v1/auth/register",
        json={"email": "peer@example.com", "username": "peerfan", "password": "correct horse battery"},
    )
    assert registered.status_code == 201, registered.text
    auth = {"Authorization": f"Bearer {registered.json()['access_token']}"}
    patched = await http.patch(
        "/api/v1/profiles/me", json={"display_name": "Peer", "favorite_genres": ["jazz"]}, headers=auth
    )
    assert patched.status_code == 200, patched.text
    rooms = []
    for n in range(3):
        created = await http.post(
            "/api/v1/rooms",
            json={"name": f"peer room {n}", "tags": ["peertag"], "genres": ["jazz"]},
            headers=auth,
        )
        assert created.status_code == 201, created.text
        rooms.append(created.json())
    paths = [
        "/api/v1/profiles/PeerFan",
        f"/api/v1/rooms/{rooms[0]['id']}",
        f"/api/v1/rooms/{rooms[1]['slug']}",
        "/api/v1/rooms/discover?q=peertag&limit=20",
        "/api/v1/rooms/discover?q=peer&limit=2",
        "/api/v1/rooms/discover?genre=jazz&limit=1",
    ]

    port = _free_port()
    log = open(tmp_path / "peer.log", "wb")  # noqa: SIM115, ASYNC230 (closed below)
    peer = await trio.lowlevel.open_process(
        [sys.executable, str(PEER), "--port", str(port)],
        env={**os.environ, "DATABASE_URL": dsn},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            with trio.fail_after(30):
                while True:
                    try:
                        if (await client.get(paths[0])).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert peer.returncode is None, (tmp_path / "peer.log").read_text()
                    await trio.sleep(0.1)
            for path in paths:
                ours, theirs = await http.get(path), await client.get(path)
                assert ours.status_code == theirs.status_code == 200, (path, ours.text, theirs.text)
                assert ours.json() == theirs.json(), path
            cursor = (await http.get(paths[-2])).json()["next_cursor"]
            assert cursor is not None
            after = f"{paths[-2]}&cursor={cursor}"
            assert (await http.get(after)).json() == (await client.get(after)).json()
            missing = await client.get("/api/v1/profiles/nobody")
            assert missing.status_code == 404
    finally:
        peer.terminate()
        with trio.move_on_after(10):
            await peer.wait()
        if peer.returncode is None:
            peer.kill()
        log.close()
