"""A lean HTTP/1.1 GET client (keep-alive pool on asyncio protocols) for the ``rest`` scenario's load.

httpx costs this harness 2-11 ms of CPU per request here (more with more pooled
connections), so it could not offer more than a few hundred requests a second;
this client costs well under 100 µs. It only does what the load needs: GET,
a body by Content-Length or chunked, keep-alive. Set-up requests still use httpx.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit


class HttpError(Exception):
    """The connection failed or the response could not be read."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reusable = True
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Response] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send(self, request: bytes) -> asyncio.Future[Response]:
        assert self.transport is not None and self._waiter is None
        self._waiter = asyncio.get_running_loop().create_future()
        self._buffer.clear()
        self.transport.write(request)
        return self._waiter

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        try:
            response = self._parse()
        except (ValueError, IndexError) as exc:
            self._fail(HttpError(f"unreadable response: {exc}"))
            return
        if response is not None and self._waiter is not None and not self._waiter.done():
            waiter, self._waiter = self._waiter, None
            waiter.set_result(response)

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self._fail(HttpError(f"connection lost: {exc}" if exc else "connection closed"))

    def _fail(self, error: HttpError) -> None:
        self.reusable = False
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)
        self._waiter = None
        if self.transport is not None:
            self.transport.abort()

    def _parse(self) -> Response | None:
        buffer = self._buffer
        head_end = buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        lines = bytes(buffer[:head_end]).split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length: int | None = None
        chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and value.strip().lower() == b"close":
                self.reusable = False
        start = head_end + 4
        if chunked:
            body = self._chunked(start)
            if body is None:
                return None
        elif length is not None:
            if len(buffer) < start + length:
                return None
            body = bytes(buffer[start : start + length])
        else:
            return None  # read to close: connection_lost ends it (not a reusable connection)
        return Response(status, body)

    def _chunked(self, pos: int) -> bytes | None:
        buffer = self._buffer
        parts: list[bytes] = []
        while True:
            line_end = buffer.find(b"\r\n", pos)
            if line_end < 0:
                return None
            size = int(bytes(buffer[pos:line_end]).split(b";")[0], 16)
            pos = line_end + 2
            if size == 0:
                return b"".join(parts) if buffer.find(b"\r\n", pos) >= 0 else None
            if len(buffer) < pos + size + 2:
                return None
            parts.append(bytes(buffer[pos : pos + size]))
            pos += size + 2


class HttpPool:
    """Up to ``size`` keep-alive connections to one origin; ``get`` waits for a free one."""

    def __init__(self, base_url: str, *, size: int, headers: dict[str, str], timeout: float = 30) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http":
            raise ValueError(f"only http:// is supported, got {base_url!r}")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self._headers = f"Host: {self.host}:{self.port}\r\n{extra}".encode()
        self.size = size
        self.timeout = timeout
        self._idle: list[_Connection] = []
        self._open = 0
        self._freed = asyncio.Condition()

    async def get(self, path: str) -> Response:
        request = b"GET " + (self.prefix + path).encode() + b" HTTP/1.1\r\n" + self._headers + b"\r\n"
        connection = await self._acquire()
        try:
            async with asyncio.timeout(self.timeout):
                return await connection.send(request)
        except TimeoutError:
            connection.reusable = False
            raise HttpError("timeout") from None
        finally:
            await self._release(connection)

    async def _acquire(self) -> _Connection:
        async with self._freed:
            while True:
                if self._idle:
                    return self._idle.pop()
                if self._open < self.size:
                    self._open += 1
                    break
                await self._freed.wait()
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(_Connection, self.host, self.port)
        except OSError as exc:
            await self._release(None)
            raise HttpError(f"connect: {exc}") from None
        return connection

    async def _release(self, connection: _Connection | None) -> None:
        async with self._freed:
            if connection is not None and connection.reusable:
                self._idle.append(connection)
            else:
                self._open -= 1
                if connection is not None and connection.transport is not None:
                    connection.transport.abort()
            self._freed.notify()

    def close(self) -> None:
        for connection in self._idle:
            if connection.transport is not None:
                connection.transport.close()
        self._idle.clear()
