"""SMART apps, codes and tokens in the database. Flushes; never commits.

Codes and tokens are random strings kept as keyed hashes (`auth.token_digest`), so the
database alone cannot be used to act as anyone. A code is consumed, and a refresh token
rotated, with a conditional UPDATE: of two requests racing with one code, one wins.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import anyio.to_thread
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import AccessToken
from app.auth.service import token_digest
from app.smart import scopes
from app.smart.models import SmartApp, SmartAuthorizationCode, SmartRefreshToken, SmartSigningKey
from app.smart.sealing import SealBroken, open_sealed, seal
from core.clock import wall_now
from core.problems import NotFound
from core.users import User

CODE_LIFETIME = timedelta(minutes=5)
ACCESS_LIFETIME = timedelta(hours=1)
# Refresh tokens only with offline_access or online_access. Online access ends 12 hours after
# the patient allowed it, however often the app refreshes; offline access slides: 90 days
# from the last refresh, until the patient (or an admin) withdraws it.
ONLINE_ACCESS_LIFETIME = timedelta(hours=12)
OFFLINE_REFRESH_LIFETIME = timedelta(days=90)
ID_TOKEN_LIFETIME = timedelta(minutes=5)


# --- apps ------------------------------------------------------------------------------------


async def create_app(session: AsyncSession, name: str, redirect_uris: list[str]) -> SmartApp:
    app = SmartApp(
        id=uuid.uuid4(),
        client_id=secrets.token_urlsafe(24),
        name=name,
        redirect_uris=redirect_uris,
        active=True,
    )
    session.add(app)
    await session.flush()
    return app


async def get_app(session: AsyncSession, app_id: uuid.UUID) -> SmartApp:
    app = await session.get(SmartApp, app_id)
    if app is None:
        raise NotFound("no such SMART app")
    return app


async def list_apps(session: AsyncSession) -> list[SmartApp]:
    return list(await session.scalars(select(SmartApp).order_by(SmartApp.created_at)))


async def shut_out_app(session: AsyncSession, app: SmartApp) -> None:
    """An app switched off loses every token it holds, now."""
    now = wall_now()
    await session.execute(
        update(AccessToken)
        .where(AccessToken.client_id == app.id, AccessToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await session.execute(
        update(SmartRefreshToken)
        .where(SmartRefreshToken.app_id == app.id, SmartRefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def active_app(session: AsyncSession, client_id: str | None) -> SmartApp | None:
    if not client_id or len(client_id) > 64:
        return None
    return await session.scalar(
        select(SmartApp).where(SmartApp.client_id == client_id, SmartApp.active.is_(True))
    )


# --- what a token request needs, read before Authlib runs -----------------------------------


async def code_by_value(
    session: AsyncSession, code: str | None, secret: str
) -> SmartAuthorizationCode | None:
    if not code or len(code) > 200:
        return None
    return await session.scalar(
        select(SmartAuthorizationCode).where(
            SmartAuthorizationCode.code_hash == token_digest(code, secret)
        )
    )


async def refresh_by_value(
    session: AsyncSession, token: str | None, secret: str
) -> SmartRefreshToken | None:
    if not token or len(token) > 200:
        return None
    return await session.scalar(
        select(SmartRefreshToken).where(SmartRefreshToken.token_hash == token_digest(token, secret))
    )


async def access_by_value(
    session: AsyncSession, token: str | None, secret: str
) -> AccessToken | None:
    """A SMART app's access token (never a sign-in or web-session token: apps revoke only
    their own)."""
    if not token or len(token) > 200:
        return None
    return await session.scalar(
        select(AccessToken).where(
            AccessToken.token_hash == token_digest(token, secret),
            AccessToken.client_id.is_not(None),
        )
    )


async def patient_user(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    """The user, if they may still act through an app: an active patient user."""
    user = await session.get(User, user_id)
    if user is None or not user.active or user.role != "patient" or user.patient_id is None:
        return None
    return user


def refresh_expires_at(scope: str, now: datetime, ends_by: datetime) -> datetime:
    """When a new refresh token lapses. `ends_by`: for the code's first refresh token, 12
    hours after the patient allowed; for a rotated one, its parent's expiry, which an online
    chain never outlives. Pure."""
    if scopes.offline(scope):
        return now + OFFLINE_REFRESH_LIFETIME
    return min(now + ONLINE_ACCESS_LIFETIME, ends_by)


# --- the writes Authlib decided on ------------------------------------------------------------


@dataclass(frozen=True)
class NewCode:
    code: str
    app_id: uuid.UUID
    user_id: uuid.UUID
    redirect_uri: str
    scope: str
    code_challenge: str
    code_challenge_method: str
    nonce: str | None = None


async def save_code(session: AsyncSession, new: NewCode, secret: str) -> uuid.UUID:
    now = wall_now()
    row = SmartAuthorizationCode(
        id=uuid.uuid4(),
        code_hash=token_digest(new.code, secret),
        app_id=new.app_id,
        user_id=new.user_id,
        redirect_uri=new.redirect_uri,
        scope=new.scope,
        code_challenge=new.code_challenge,
        code_challenge_method=new.code_challenge_method,
        nonce=new.nonce,
        created_at=now,
        expires_at=now + CODE_LIFETIME,
    )
    session.add(row)
    await session.flush()
    return row.id


async def consume_code(session: AsyncSession, code_id: uuid.UUID) -> bool:
    """Mark the code used; False if another request used it first."""
    done = await session.execute(
        update(SmartAuthorizationCode)
        .where(SmartAuthorizationCode.id == code_id, SmartAuthorizationCode.used_at.is_(None))
        .values(used_at=wall_now())
    )
    return bool(getattr(done, "rowcount", 0) == 1)


async def retire_refresh(session: AsyncSession, refresh_id: uuid.UUID) -> bool:
    """Revoke a refresh token being replaced; False if it was already (a replay)."""
    done = await session.execute(
        update(SmartRefreshToken)
        .where(SmartRefreshToken.id == refresh_id, SmartRefreshToken.revoked_at.is_(None))
        .values(revoked_at=wall_now())
    )
    return bool(getattr(done, "rowcount", 0) == 1)


async def revoke_family(
    session: AsyncSession, family_id: uuid.UUID, app_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    """A code used twice, a replaced refresh token used again, or a refresh token revoked:
    every refresh token of that authorization, and the app's access tokens for the patient,
    stop working (RFC 6749 §4.1.2 and §10.4, RFC 7009 §2.1)."""
    now = wall_now()
    await session.execute(
        update(SmartRefreshToken)
        .where(SmartRefreshToken.family_id == family_id, SmartRefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await session.execute(
        update(AccessToken)
        .where(
            AccessToken.client_id == app_id,
            AccessToken.user_id == user_id,
            AccessToken.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )


async def revoke_access(session: AsyncSession, token_id: uuid.UUID) -> None:
    await session.execute(
        update(AccessToken).where(AccessToken.id == token_id).values(revoked_at=wall_now())
    )


@dataclass(frozen=True)
class NewTokens:
    access_token: str
    refresh_token: str | None
    scope: str
    app_id: uuid.UUID
    user_id: uuid.UUID
    family_id: uuid.UUID
    refresh_expires_at: datetime | None  # None when no refresh token was issued


async def save_tokens(session: AsyncSession, new: NewTokens, secret: str) -> None:
    now = wall_now()
    session.add(
        AccessToken(
            token_hash=token_digest(new.access_token, secret),
            user_id=new.user_id,
            created_at=now,
            last_used_at=now,
            expires_at=now + ACCESS_LIFETIME,
            client_id=new.app_id,
            scope=new.scope,
        )
    )
    if new.refresh_token is not None and new.refresh_expires_at is not None:
        session.add(
            SmartRefreshToken(
                token_hash=token_digest(new.refresh_token, secret),
                app_id=new.app_id,
                user_id=new.user_id,
                family_id=new.family_id,
                scope=new.scope,
                created_at=now,
                expires_at=new.refresh_expires_at,
            )
        )
    await session.flush()


# --- id_tokens --------------------------------------------------------------------------------


def _new_key() -> RSAKey:
    kid = secrets.token_urlsafe(12)
    return RSAKey.generate_key(
        2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"}, private=True
    )


def _opened(row: SmartSigningKey, secret: str) -> RSAKey | None:
    """The key, or None if it does not open: sealed under a secret since replaced (which
    also ended every token), or changed in the database. Such a key neither signs nor is
    published."""
    try:
        jwk = open_sealed(row.private_jwk_sealed, secret, row.kid)
    except SealBroken:
        return None
    return RSAKey.import_key(json.loads(jwk))


async def signing_key(session: AsyncSession, secret: str) -> RSAKey:
    """The newest signing key that opens, made on first need (two first needs at once may
    each make one: both are published, and either signs)."""
    row = await session.scalar(
        select(SmartSigningKey).order_by(SmartSigningKey.created_at.desc()).limit(1)
    )
    if row is not None and (opened := _opened(row, secret)) is not None:
        return opened
    key = await anyio.to_thread.run_sync(_new_key)  # RSA generation takes a moment
    kid = str(key.kid)
    plain = json.dumps(key.as_dict(private=True)).encode()
    session.add(SmartSigningKey(kid=kid, private_jwk_sealed=seal(plain, secret, kid)))
    await session.flush()
    return key


async def public_keys(session: AsyncSession, secret: str) -> dict[str, object]:
    """The JWKS: the public half of every signing key."""
    rows = await session.scalars(select(SmartSigningKey).order_by(SmartSigningKey.created_at))
    keys = KeySet([k for k in (_opened(r, secret) for r in rows) if k is not None])
    return dict(keys.as_dict(private=False))


def id_token(
    key: RSAKey,
    issuer: str,
    client_id: str,
    user_id: uuid.UUID,
    patient_id: uuid.UUID,
    nonce: str | None = None,
    auth_time: datetime | None = None,
) -> str:
    """OpenID Connect's id_token as SMART asks for it: who signed in (`sub`, their user id)
    and, in `fhirUser`, the Patient they are. On the code's exchange also the app's `nonce`
    and `auth_time` (when the patient allowed); a refreshed id_token carries neither
    (OpenID Connect Core §12.2)."""
    now = wall_now()
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": str(user_id),
        "aud": client_id,
        "iat": int(now.timestamp()),
        "exp": int((now + ID_TOKEN_LIFETIME).timestamp()),
        "fhirUser": f"{issuer}/Patient/{patient_id}",
    }
    if nonce is not None:
        claims["nonce"] = nonce
    if auth_time is not None:
        claims["auth_time"] = int(auth_time.timestamp())
    return jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "JWT"}, claims, key)
