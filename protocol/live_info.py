"""Where a client finds the live gateway (``GET /api/v1/live``): a browser page knows only the
REST origin it was loaded from, and the live gateway listens on its own port."""

from __future__ import annotations

from pydantic import BaseModel, Field


class LiveInfoOut(BaseModel):
    url: str = Field(description="The live gateway's base URL, e.g. ws://127.0.0.1:8765")
    path: str = Field(description="A room's socket path under it, {room_id} to be filled in")
    subprotocols: list[str] = Field(description="The encodings offered by subprotocol, preferred first")
    token_subprotocol_prefix: str = Field(
        description="A client that cannot set headers may offer its bearer token as the subprotocol "
        "this prefix + the token, beside an encoding, instead of putting it in the URL"
    )
