"""Signing deliveries the Standard Webhooks way (https://www.standardwebhooks.com), so that a
receiver's off-the-shelf verifier (the `standardwebhooks` libraries) checks them unchanged.

A secret is `whsec_` and the base64 of its key. The signature is `v1,` and the base64 of
HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}"). While a rotated-out secret is still
honoured, a delivery carries one signature per secret, space-separated, the newest first; a
receiver accepts the delivery when any of them matches a secret it holds.

Plain functions over plain values: no session, no clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence
from datetime import datetime
from secrets import token_bytes

PREFIX = "whsec_"
# The specification's bounds for an HMAC key: at least 192 bits, at most 512.
MIN_KEY_BYTES, MAX_KEY_BYTES = 24, 64
NEW_KEY_BYTES = 32
# Standard base64 only: the verifiers decode leniently and would drop `-` and `_` (the URL-safe
# alphabet) without a word, and so sign with another key than ours.
_FORM = re.compile(r"whsec_[A-Za-z0-9+/]+={0,2}")


def new_secret() -> str:
    """A fresh secret: 32 random bytes."""
    return PREFIX + base64.b64encode(token_bytes(NEW_KEY_BYTES)).decode()


def key_of(secret: str) -> bytes:
    """The HMAC key a stored secret stands for. Stored secrets converted from before the
    standard (see `from_legacy`) may fall outside the bounds new ones must keep."""
    if not secret.startswith(PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    body = secret.removeprefix(PREFIX)
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except binascii.Error:
        raise ValueError("a webhook secret is whsec_ followed by base64") from None


def check_secret(secret: str) -> str:
    """A secret someone chose: `whsec_` + standard base64 of a 24 to 64-byte key, else
    ValueError saying what is wrong (never repeating the secret)."""
    if _FORM.fullmatch(secret) is None:
        raise ValueError("give whsec_ followed by standard base64 (letters, digits, + and /)")
    key = key_of(secret)
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ValueError(
            f"the key must be {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes; this one is {len(key)}"
        )
    return secret


def from_legacy(raw: str) -> str:
    """A secret from before the standard (free-form text whose UTF-8 bytes were the HMAC key)
    in the standard form: the same key, so a receiver keeps verifying with what it holds."""
    return PREFIX + base64.b64encode(raw.encode()).decode()


def to_legacy(secret: str) -> str | None:
    """The free-form text `from_legacy` made this secret from, or None when its key is no such
    text (one made or rotated in since: random bytes, which the old form cannot carry)."""
    try:
        text = key_of(secret).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    # What the old form accepted: 16 to 200 printable ASCII characters without spaces.
    if not (16 <= len(text) <= 200 and all("\x21" <= c <= "\x7e" for c in text)):
        return None
    return text


def signing_secrets(
    current: str, previous: str | None, previous_until: datetime | None, now: datetime
) -> list[str]:
    """The secrets a delivery made at `now` is signed with: the current one, and the one it
    replaced while the rotation's overlap lasts (until `previous_until`, exclusive)."""
    if previous is not None and previous_until is not None and now < previous_until:
        return [current, previous]
    return [current]


def signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature of a delivery under one secret."""
    content = f"{webhook_id}.{timestamp}.".encode() + body
    mac = hmac.new(key_of(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signature_header(secrets: Sequence[str], webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header: one signature per secret, space-separated, in order."""
    return " ".join(signature(s, webhook_id, timestamp, body) for s in secrets)


def headers(secrets: Sequence[str], webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt at a delivery."""
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, webhook_id, timestamp, body),
    }
