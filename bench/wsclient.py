"""A lean WebSocket client (RFC 6455) on asyncio protocols, for the live protocol's JSON encoding.

Why not trio-websocket: a listener in a big room receives tens of thousands of
frames a second, and in Python the cost per received frame is what limits the
harness. A trio task blocked in ``recv`` costs ~40 µs of CPU per wake-up on this
machine (``wait_readable`` re-arms epoll and switches tasks each time), an
asyncio ``Protocol`` callback ~14 µs and a bare epoll loop ~11 µs (500 sockets,
20k small messages/s, see bench/README.md). So every socket here is an asyncio
``Protocol``: the event loop calls :meth:`WsClient.data_received` with whatever
the kernel had, the frame headers are parsed with a few byte indexings, and
each text payload is handed to :meth:`WsClient.on_message` as bytes; the
subclass decides how much of it to decode (a chat listener reads only ``seq``
and the sender's timestamp, see :mod:`bench.chatwire`).

Server frames are never masked or compressed (no extension is offered);
client frames are masked as the RFC requires.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import hashlib
import json
import os
import random
import struct
import time
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
JSON_SUBPROTOCOL = "seda.v1.json"
CLOSE_NORMAL = 1000
CLOSE_ABNORMAL = 1006  # no close frame: the connection was lost (never sent on the wire)
_MAX_HANDSHAKE_BYTES = 64 * 1024


class ConnectFailed(Exception):
    """A socket that never got its welcome; ``code`` is what the error tables count."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code


@dataclass(frozen=True)
class LiveEndpoint:
    """Where the live gateway listens: an address to connect to and the Host header to send."""

    host: str
    port: int
    host_header: str
    path_prefix: str = ""

    @classmethod
    def from_url(cls, url: str) -> LiveEndpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "http"):
            raise ValueError(f"live URL must be ws://HOST:PORT (wss is not supported), got {url!r}")
        host = parts.hostname or "127.0.0.1"
        port = parts.port or 80
        return cls(host, port, f"{host}:{port}", parts.path.rstrip("/"))

    def room_path(self, room_id: str, since: int | None = None) -> str:
        path = f"{self.path_prefix}/ws/rooms/{room_id}"
        return path if since is None else f"{path}?since={since}"


def _mask(payload: bytes, key: bytes) -> bytes:
    size = len(payload)
    if size == 0:
        return payload
    stream = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(stream, "little")).to_bytes(size, "little")


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One final, masked client frame."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    key = random.getrandbits(32).to_bytes(4, "little")
    return header + key + _mask(payload, key)


class WsClient(asyncio.Protocol):
    """One socket to one room. Subclasses override the ``on_*`` hooks; none of them may block.

    The first message of a live socket is always the welcome: it is decoded here,
    kept in :attr:`welcome` and passed to :meth:`on_welcome`; every later text
    message goes raw to :meth:`on_message`.
    """

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.welcomed: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[int] = loop.create_future()
        self.welcome: dict[str, Any] = {}
        self.close_code: int | None = None
        self.started_ns = 0
        self.welcomed_ns = 0
        self._request = b""
        self._key = b""
        self._buffer = b""
        self._upgraded = False
        self._fragments: list[bytes] | None = None
        self._close_sent = False
        self._aborted = False

    # ---- hooks -------------------------------------------------------------------------------

    def on_welcome(self, welcome: dict[str, Any]) -> None:
        """The welcome arrived (the socket counts as connected from now)."""

    def on_message(self, payload: bytes) -> None:
        """A text message after the welcome, undecoded."""

    def on_closed(self, code: int, by_server: bool) -> None:
        """The socket ended: ``code`` from the server's close frame, 1006 if it was lost."""

    # ---- sending -----------------------------------------------------------------------------

    def send_json(self, message: dict[str, Any]) -> bool:
        """Queue one text frame; False if the socket is not open (any more)."""
        if self.transport is None or not self._upgraded or self._close_sent or self.transport.is_closing():
            return False
        self.transport.write(client_frame(0x1, json.dumps(message, separators=(",", ":")).encode()))
        return True

    def start_close(self, code: int = CLOSE_NORMAL) -> None:
        """Send a close frame; the server answers with its own and ends the connection."""
        if self.transport is None or self.transport.is_closing():
            return
        if not self._upgraded:
            self.abort()
            return
        if not self._close_sent:
            self._close_sent = True
            self.transport.write(client_frame(0x8, struct.pack("!H", code)))

    async def close(self, code: int = CLOSE_NORMAL, timeout: float = 5.0) -> None:
        """Close politely, waiting (at most ``timeout``) for the server to end the connection."""
        self.start_close(code)
        if not self.closed.done():
            try:
                await asyncio.wait_for(asyncio.shield(self.closed), timeout)
            except TimeoutError:
                self.abort()

    def abort(self) -> None:
        """Drop the connection at once, with no close handshake (a client gone away)."""
        self._aborted = True
        if self.transport is not None:
            self.transport.abort()

    # ---- asyncio.Protocol --------------------------------------------------------------------

    def prepare(self, endpoint: LiveEndpoint, path: str, token: str | None) -> None:
        self._key = base64.b64encode(os.urandom(16))
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {endpoint.host_header}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {self._key.decode()}",
            "Sec-WebSocket-Version: 13",
            f"Sec-WebSocket-Protocol: {JSON_SUBPROTOCOL}",
        ]
        if token is not None:
            lines.append(f"Authorization: Bearer {token}")
        self._request = ("\r\n".join(lines) + "\r\n\r\n").encode()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        if self._buffer:
            data = self._buffer + data
            self._buffer = b""
        if not self._upgraded:
            rest = self._handshake(data)
            if rest is None:
                return
            data = rest
        pos = 0
        size = len(data)
        on_message = self.on_message
        # The hot path: whole, unmasked, final text frames, often several per read.
        while size - pos >= 2:
            first = data[pos]
            length = data[pos + 1]
            if length < 126:
                start = pos + 2
            elif length == 126:
                if size - pos < 4:
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
                start = pos + 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                start = pos + 10
            else:
                self._fail(1002, "server frames must not be masked")
                return
            end = start + length
            if end > size:
                break
            if first == 0x81 and self.welcomed_ns:
                on_message(data[start:end])
            else:
                self._frame(first, data[start:end])
                if self.transport is None or self.transport.is_closing():
                    return
            pos = end
        if pos < size:
            self._buffer = data[pos:]

    def connection_lost(self, exc: Exception | None) -> None:
        by_server = self.close_code is not None
        code = self.close_code if self.close_code is not None else CLOSE_ABNORMAL
        self.close_code = code
        if not self.welcomed.done():
            detail = str(exc) if exc else ""
            self.welcomed.set_exception(
                ConnectFailed(f"close {code}" if by_server else "closed before welcome", detail)
            )
        if not self.closed.done():
            self.closed.set_result(code)
        if not self._aborted or by_server:
            self.on_closed(code, by_server)

    # ---- internals ---------------------------------------------------------------------------

    def _handshake(self, data: bytes) -> bytes | None:
        head_end = data.find(b"\r\n\r\n")
        if head_end < 0:
            if len(data) > _MAX_HANDSHAKE_BYTES:
                self._refuse(ConnectFailed("bad handshake", "no end of headers"))
            else:
                self._buffer = data
            return None
        head = data[:head_end].decode("latin-1").split("\r\n")
        status_parts = head[0].split(" ", 2)
        status = int(status_parts[1]) if len(status_parts) > 1 and status_parts[1].isdigit() else 0
        if status != 101:
            self._refuse(ConnectFailed(f"http {status}", head[0]))
            return None
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        accept = base64.b64encode(hashlib.sha1(self._key + _GUID).digest()).decode()
        if headers.get("sec-websocket-accept") != accept:
            self._refuse(ConnectFailed("bad handshake", "wrong Sec-WebSocket-Accept"))
            return None
        if headers.get("sec-websocket-extensions"):
            self._refuse(ConnectFailed("bad handshake", "an extension nobody asked for"))
            return None
        self._upgraded = True
        return data[head_end + 4 :]

    def _refuse(self, error: ConnectFailed) -> None:
        if not self.welcomed.done():
            self.welcomed.set_exception(error)
        self.abort()

    def _frame(self, first: int, payload: bytes) -> None:
        opcode = first & 0x0F
        final = bool(first & 0x80)
        if opcode in (0x1, 0x2, 0x0):
            if opcode != 0x0:
                self._fragments = []
            if self._fragments is None:
                self._fail(1002, "continuation without a first frame")
                return
            self._fragments.append(payload)
            if final:
                message = b"".join(self._fragments)
                self._fragments = None
                self._message(message)
        elif opcode == 0x8:
            self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            if not self._close_sent and self.transport is not None:
                self._close_sent = True
                self.transport.write(client_frame(0x8, payload[:2]))
            if self.transport is not None:
                self.transport.close()
        elif opcode == 0x9 and self.transport is not None and not self._close_sent:
            self.transport.write(client_frame(0xA, payload))

    def _message(self, payload: bytes) -> None:
        if self.welcomed_ns:
            self.on_message(payload)
            return
        welcome = json.loads(payload)
        if welcome.get("type") != "welcome":
            self._refuse(ConnectFailed("bad welcome", payload[:200].decode(errors="replace")))
            return
        self.welcome = welcome
        self.welcomed_ns = time.time_ns()
        self.on_welcome(welcome)
        if not self.welcomed.done():
            self.welcomed.set_result(None)

    def _fail(self, code: int, reason: str) -> None:
        self.close_code = code
        self._refuse(ConnectFailed(f"protocol error {code}", reason))


ClientT = TypeVar("ClientT", bound=WsClient)


def _connect_error_code(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0)
    return f"connect {name}" if name else f"connect {type(exc).__name__}"


async def connect(
    client: ClientT,
    endpoint: LiveEndpoint,
    room_id: str,
    *,
    token: str | None = None,
    since: int | None = None,
    timeout: float = 30.0,
) -> ClientT:
    """Open ``client``'s socket to a room and wait for its welcome; ConnectFailed if it never comes."""
    loop = asyncio.get_running_loop()
    client.prepare(endpoint, endpoint.room_path(room_id, since), token)
    client.started_ns = time.time_ns()
    try:
        async with asyncio.timeout(timeout):
            await loop.create_connection(lambda: client, endpoint.host, endpoint.port)
            await client.welcomed
    except TimeoutError:
        client.abort()
        raise ConnectFailed("timeout", f"no welcome within {timeout}s") from None
    except OSError as exc:
        client.abort()
        raise ConnectFailed(_connect_error_code(exc), str(exc)) from None
    return client
