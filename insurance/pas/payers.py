"""A payer's electronic prior authorization settings: its endpoint and the credentials it gave
us, kept write-only (replies say whether a secret is on file, never what it is)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Set
from typing import Any

from insurance.models import Payer

PAS_FIELDS = (
    "pas_base_url",
    "pas_token_url",
    "pas_client_id",
    "pas_client_secret",
    "pas_notification_token",
)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def set_pas(payer: Payer, data: Any, sent: Set[str]) -> None:
    """Copy the PAS fields that were sent (null clears one). A URL is stored without a
    trailing slash, so `{base}/Claim/$submit` has one."""
    for name in PAS_FIELDS:
        if name not in sent:
            continue
        value = getattr(data, name)
        if name in ("pas_base_url", "pas_token_url"):
            setattr(payer, name, str(value).rstrip("/") if value is not None else None)
        elif name == "pas_client_secret":
            payer.pas_client_secret = value.get_secret_value() if value is not None else None
        elif name == "pas_notification_token":
            payer.pas_notification_token_hash = (
                token_hash(value.get_secret_value()) if value is not None else None
            )
        else:
            setattr(payer, name, value)


def notification_token_matches(payer: Payer, token: str | None) -> bool:
    if payer.pas_notification_token_hash is None or not token:
        return False
    return hmac.compare_digest(payer.pas_notification_token_hash, token_hash(token))


def token_url(payer: Payer) -> str | None:
    if payer.pas_base_url is None:
        return None
    return payer.pas_token_url or f"{payer.pas_base_url}/token"
