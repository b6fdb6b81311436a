"""A WebSocket client written by hand on a TCP stream, free to break RFC 6455 on purpose.

Frames are built byte by byte (:func:`client_frame`), so a test can set RSV bits, leave a frame
unmasked, use a reserved opcode or fragment a control frame; what the server sends back is read
as raw frames (:meth:`RawWs.recv_frame`) up to its close frame and the end of the TCP stream.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import struct
from dataclasses import dataclass

import trio

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA


def client_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bool = True,
    declared_length: int | None = None,
    length_form: int | None = None,
) -> bytes:
    """One client frame. ``rsv`` is the three RSV bits (0-7); ``declared_length`` overrides the
    length written in the header (the payload sent is still ``payload``); ``length_form`` forces
    the 7-bit (0), 16-bit (126) or 64-bit (127) length encoding, even where it is not minimal."""
    length = len(payload) if declared_length is None else declared_length
    first = (0x80 if fin else 0) | (rsv & 0x7) << 4 | opcode & 0x0F
    mask_bit = 0x80 if mask else 0
    form = length_form
    if form is None:
        form = 0 if length < 126 else 126 if length < 1 << 16 else 127
    if form == 0:
        header = struct.pack("!BB", first, mask_bit | length)
    elif form == 126:
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    if not mask:
        return header + payload
    key = os.urandom(4)
    return header + key + masked(payload, key)


def masked(payload: bytes, key: bytes) -> bytes:
    """``payload`` XOR the 4-byte masking ``key`` (RFC 6455 §5.3); its own inverse."""
    if not payload:
        return b""
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(payload), "big")


def upgrade_request(
    port: int, path: str, *, key: str | None = None, subprotocol: str | None = None
) -> tuple[bytes, str]:
    """The HTTP upgrade request for ``path`` and its Sec-WebSocket-Key."""
    key = key or base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if subprotocol is not None:
        lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), key


@dataclass(frozen=True)
class Frame:
    fin: bool
    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int | None:
        """The status code of a close frame (None if it carries none)."""
        assert self.opcode == OP_CLOSE, self
        if len(self.payload) < 2:
            return None
        code: int = struct.unpack("!H", self.payload[:2])[0]
        return code


@dataclass(frozen=True)
class Ending:
    """How a connection ended: the frames that came before, the close frame if any."""

    frames: list[Frame]
    close: Frame | None

    @property
    def code(self) -> int | None:
        return None if self.close is None else self.close.close_code


class RawWs:
    """An upgraded connection; bytes after the handshake are parsed as server frames."""

    def __init__(self, stream: trio.SocketStream, buffered: bytes) -> None:
        self.stream = stream
        self._buffer = bytearray(buffered)
        self._eof = False

    @classmethod
    async def connect(cls, port: int, path: str, *, subprotocol: str | None = None) -> RawWs:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        request, key = upgrade_request(port, path, subprotocol=subprotocol)
        await stream.send_all(request)
        head = bytearray()
        with trio.fail_after(10):
            while b"\r\n\r\n" not in head:
                chunk = await stream.receive_some(4096)
                assert chunk, f"connection closed during the handshake: {bytes(head)!r}"
                head += chunk
        head_bytes, _, rest = bytes(head).partition(b"\r\n\r\n")
        status, *header_lines = head_bytes.decode("latin-1").split("\r\n")
        assert status.startswith("HTTP/1.1 101"), head_bytes
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        assert headers["sec-websocket-accept"] == accept, headers
        return cls(stream, rest)

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def _fill(self, need: int) -> bool:
        """Read until the buffer holds ``need`` bytes; False if the stream ended first."""
        while len(self._buffer) < need:
            if self._eof:
                return False
            try:
                chunk = await self.stream.receive_some(1 << 16)
            except trio.BrokenResourceError:  # a reset counts as the end of the stream
                chunk = b""
            if not chunk:
                self._eof = True
                return False
            self._buffer += chunk
        return True

    async def recv_frame(self, timeout: float = 5) -> Frame | None:
        """The next whole server frame, or None at the end of the stream."""
        with trio.fail_after(timeout):
            if not await self._fill(2):
                assert not self._buffer, f"stream ended inside a frame header: {bytes(self._buffer)!r}"
                return None
            first, second = self._buffer[0], self._buffer[1]
            assert not second & 0x80, "server frames are unmasked"
            size, at = second & 0x7F, 2
            if size == 126:
                assert await self._fill(4), "stream ended inside a frame header"
                (size,) = struct.unpack_from("!H", self._buffer, 2)
                at = 4
            elif size == 127:
                assert await self._fill(10), "stream ended inside a frame header"
                (size,) = struct.unpack_from("!Q", self._buffer, 2)
                at = 10
            assert await self._fill(at + size), "stream ended inside a frame"
            payload = bytes(self._buffer[at : at + size])
            del self._buffer[: at + size]
            return Frame(bool(first & 0x80), first & 0x0F, payload)

    async def recv_data(self, timeout: float = 5) -> Frame:
        """The next data frame (text or binary), answering nothing; fails on a close or the end."""
        while True:
            frame = await self.recv_frame(timeout)
            assert frame is not None, "the stream ended"
            assert frame.opcode != OP_CLOSE, f"closed with {frame.close_code}: {frame.payload[2:]!r}"
            if frame.opcode in (OP_TEXT, OP_BINARY):
                return frame

    async def ending(self, timeout: float = 10) -> Ending:
        """Read everything until the server ends the TCP stream; the frames and the close frame.

        Once the server's close frame is in, nothing may follow it but the end of the stream.
        """
        frames: list[Frame] = []
        close: Frame | None = None
        with trio.fail_after(timeout):
            while (frame := await self.recv_frame(timeout)) is not None:
                assert close is None, f"a frame after the close frame: {frame}"
                if frame.opcode == OP_CLOSE:
                    close = frame
                    await self.answer_close(frame)
                else:
                    frames.append(frame)
        return Ending(frames, close)

    async def answer_close(self, frame: Frame) -> None:
        """Echo the server's close (RFC 6455 §5.5.1), so it need not wait for us to end the stream."""
        code = frame.close_code
        payload = b"" if code is None else struct.pack("!H", code)
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):  # it may have ended
            await self.stream.send_all(client_frame(OP_CLOSE, payload))

    async def aclose(self) -> None:
        await self.stream.aclose()
