"""The live listener: TCP accept, WebSocket handshake, routing to rooms."""

from __future__ import annotations

import logging

import trio
from trio_websocket import wrap_server_stream

from server.context import AppContext

log = logging.getLogger("seda.live")

HANDSHAKE_TIMEOUT_S = 10.0


class LiveGateway:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    async def serve(self, host: str, port: int, *, task_status: trio.TaskStatus[int]) -> None:
        """Listen until cancelled; reports the bound port through ``task_status``."""
        listeners = await trio.open_tcp_listeners(port, host=host)
        bound = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            task_status.started(bound)
            await trio.serve_listeners(self._handle, listeners, handler_nursery=nursery)

    async def _handle(self, stream: trio.SocketStream) -> None:
        async with trio.open_nursery() as nursery:
            with trio.move_on_after(HANDSHAKE_TIMEOUT_S):
                request = await wrap_server_stream(nursery, stream)
                await request.reject(404, body=b"no live rooms on this server yet")
            nursery.cancel_scope.cancel()
        await stream.aclose()
