"""Text no column can store: refused at the door, on sockets and over REST alike."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def unstorable(value: str) -> bool:
    """A NUL, or a lone surrogate (JSON allows ``"\\ud800"``): Postgres refuses both."""
    if "\x00" in value:
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return True
    return False


def unstorable_fields(value: Any, path: str = "") -> Iterator[str]:
    """The paths (``a.b.0``) of the strings, keys included, in a JSON value that cannot be stored."""
    if isinstance(value, str):
        if unstorable(value):
            yield path
    elif isinstance(value, bytes | bytearray):  # msgpack bin: text fields would decode it
        if b"\x00" in value or not _utf8(bytes(value)):
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            if unstorable(str(key)):
                yield path
            else:
                yield from unstorable_fields(item, inner)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from unstorable_fields(item, f"{path}.{i}" if path else str(i))


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    return True
