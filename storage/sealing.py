"""Secrets at rest: AES-GCM (the key comes from ``SEDA_ENCRYPTION_KEY`` or the data dir; see server.context).

Each sealed value is bound to where it belongs (its ``context``, e.g. the user,
provider and field), so a ciphertext copied into another row does not open.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE = 12


def new_key_text() -> str:
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode()


def key_bytes(text: str) -> bytes:
    """The 32-byte key that ``text`` (base64url) holds; anything else is a ValueError."""
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise ValueError("SEDA_ENCRYPTION_KEY must be 32 bytes, base64url-encoded")
    return key


class Sealer:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, plain: str, context: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, plain.encode(), context.encode())

    def open(self, sealed: bytes, context: str) -> str:
        """Raises ``cryptography.exceptions.InvalidTag`` for a wrong key or context."""
        return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], context.encode()).decode()
