"""The chat text the harness sends, and reading ``seq`` and the send time back cheaply.

A bench message's text is ``~<sender's time.time_ns()> <filler>``. Listeners
compute delivery latency as their own ``time.time_ns()`` minus that stamp (all
processes share the machine's wall clock).

The server encodes events compactly with the keys in a fixed order
(``{"type":"event","name":"chat.message","seq":42,...,"data":{...,"text":"~..."}}``),
so a chat event is recognised by its prefix and ``seq`` and the stamp are cut
out of the bytes without decoding the rest. That shortcut is only an
optimisation: anything that does not match exactly is decoded with ``json``
and read by key, so a server that orders keys differently is still measured
correctly, only more slowly.
"""

from __future__ import annotations

import json
from typing import Any

STAMP = "~"
_CHAT_PREFIX = b'{"type":"event","name":"chat.message","seq":'
_SEQ_AT = len(_CHAT_PREFIX)
_TEXT_KEY = b'"text":"' + STAMP.encode()
_STAMP_AT = len(_TEXT_KEY)


def stamped_text(sent_ns: int, size: int) -> str:
    """A chat text of about ``size`` characters carrying its send time."""
    head = f"{STAMP}{sent_ns} "
    return head + "x" * max(1, size - len(head))


def stamp_of(text: Any) -> int:
    """The send time in a bench text, 0 if the text is not one of ours."""
    if isinstance(text, str) and text.startswith(STAMP):
        digits = text[1:].partition(" ")[0]
        if digits.isdigit():
            return int(digits)
    return 0


def fast_chat(payload: bytes) -> tuple[int, int] | None:
    """``(seq, sent_ns)`` of a compactly encoded ``chat.message`` event; None: decode it fully."""
    if not payload.startswith(_CHAT_PREFIX):
        return None
    comma = payload.find(b",", _SEQ_AT)
    digits = payload[_SEQ_AT:comma]
    if comma < 0 or not digits.isdigit():
        return None
    text_at = payload.find(_TEXT_KEY, comma)
    if text_at < 0:
        return int(digits), 0
    begin = text_at + _STAMP_AT
    end = payload.find(b" ", begin, begin + 24)
    stamp = payload[begin:end]
    return int(digits), int(stamp) if end > 0 and stamp.isdigit() else 0


def decode(payload: bytes) -> dict[str, Any]:
    """The whole message, for everything that is not on the hot path."""
    message = json.loads(payload)
    if not isinstance(message, dict):
        raise TypeError("a live message is a JSON object")
    return message
