"""Sealing the id_token signing keys at rest: AES-256-GCM under a key derived from the app's
secret, so that reading the database is not enough to sign id_tokens as us. Pure.

A sealed value is base64 of a random 12-byte nonce and the ciphertext (with GCM's tag). The
key's id is the associated data: a sealed key moved to another row does not open.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"chairside smart signing key"
_NONCE_BYTES = 12


class SealBroken(ValueError):
    """The sealed value was changed, or was sealed under another secret or key id."""


def _key(secret: str) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        secret.encode()
    )
    return AESGCM(derived)


def seal(plain: bytes, secret: str, kid: str) -> str:
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _key(secret).encrypt(nonce, plain, kid.encode())
    return base64.b64encode(nonce + sealed).decode("ascii")


def open_sealed(sealed: str, secret: str, kid: str) -> bytes:
    try:
        raw = base64.b64decode(sealed.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise SealBroken("not a sealed value") from None
    if len(raw) <= _NONCE_BYTES:
        raise SealBroken("not a sealed value")
    try:
        return _key(secret).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], kid.encode())
    except InvalidTag:
        raise SealBroken("the sealed value does not open with this secret") from None
