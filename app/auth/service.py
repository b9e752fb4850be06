"""Users, password checks and opaque bearer tokens. Flushes; never commits."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import CalendarFeed
from app.auth.models import AccessToken
from core.clock import utcnow
from core.problems import Duplicate, Invalid, NotFound, Unauthorized
from core.users import ROLES, User
from patients.models import Patient

_hasher = PasswordHasher()
# Verifying against this keeps a login for an unknown email as slow as one for a known email.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


@dataclass(frozen=True)
class Caller:
    user_id: uuid.UUID
    role: str
    patient_id: uuid.UUID | None
    token_id: uuid.UUID


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise Invalid("passwords have at least 8 characters")
    return _hasher.hash(password)


def token_digest(token: str, secret: str) -> bytes:
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).digest()


async def create_user(
    session: AsyncSession, email: str, role: str, password: str, patient_id: uuid.UUID | None
) -> User:
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}")
    if (role == "patient") != (patient_id is not None):
        raise Invalid("a patient user needs --patient-id, and only a patient user has one")
    if patient_id is not None and await session.get(Patient, patient_id) is None:
        raise NotFound("no such patient")
    user = User(
        email=email.strip().lower(),
        role=role,
        password_hash=hash_password(password),
        patient_id=patient_id,
    )
    session.add(user)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Duplicate("a user with this email already exists") from exc
    return user


@dataclass(frozen=True)
class LoginCandidate:
    user_id: uuid.UUID | None
    password_hash: str
    active: bool


async def login_candidate(session: AsyncSession, email: str) -> LoginCandidate:
    """Who a sign-in claims to be; an unknown email gets a stand-in that never verifies."""
    row = (
        await session.execute(
            select(User.id, User.password_hash, User.active).where(
                User.email == email.strip().lower()
            )
        )
    ).first()
    if row is None:
        return LoginCandidate(None, _DUMMY_HASH, False)
    return LoginCandidate(*row)


def password_matches(candidate: LoginCandidate, password: str) -> bool:
    """Slow on purpose (argon2, ~0.1 s): run it off the event loop and outside transactions.

    Unknown emails are verified against a stand-in hash so they take as long as known ones.
    """
    try:
        _hasher.verify(candidate.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    return candidate.user_id is not None and candidate.active


async def issue_token(
    session: AsyncSession, user_id: uuid.UUID, secret: str, ttl: timedelta
) -> tuple[str, int]:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        AccessToken(
            token_hash=token_digest(token, secret),
            user_id=user_id,
            created_at=now,
            last_used_at=now,
            expires_at=now + ttl,
        )
    )
    await session.flush()
    return token, int(ttl.total_seconds())


@dataclass(frozen=True)
class TokenState:
    caller: Caller
    last_used_at: datetime


# Every request runs this; the statement is built once.
_TOKEN = (
    select(
        AccessToken.id,
        AccessToken.revoked_at,
        AccessToken.expires_at,
        AccessToken.last_used_at,
        User.id,
        User.role,
        User.patient_id,
        User.active,
    )
    .join(User, User.id == AccessToken.user_id)
    .where(AccessToken.token_hash == bindparam("token_hash"))
)


async def resolve(session: AsyncSession, token: str, secret: str, idle: timedelta) -> TokenState:
    row = (await session.execute(_TOKEN, {"token_hash": token_digest(token, secret)})).first()
    if row is None:
        raise Unauthorized("invalid or expired token")
    token_id, revoked_at, expires_at, last_used_at, user_id, role, patient_id, active = row
    now = utcnow()
    if revoked_at is not None or expires_at <= now or last_used_at + idle <= now or not active:
        raise Unauthorized("invalid or expired token")
    return TokenState(Caller(user_id, role, patient_id, token_id), last_used_at)


async def touch(session: AsyncSession, token_id: uuid.UUID) -> None:
    await session.execute(
        update(AccessToken).where(AccessToken.id == token_id).values(last_used_at=utcnow())
    )


async def revoke(session: AsyncSession, token_id: uuid.UUID) -> None:
    await session.execute(
        update(AccessToken).where(AccessToken.id == token_id).values(revoked_at=utcnow())
    )


async def deactivate_user(session: AsyncSession, email: str) -> None:
    """The user can no longer sign in, and every token they hold is revoked now."""
    user = await session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise NotFound("no such user")
    user.active = False
    await session.execute(
        update(AccessToken)
        .where(AccessToken.user_id == user.id, AccessToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    if user.patient_id is not None:  # a calendar link is a credential too
        await session.execute(
            update(CalendarFeed)
            .where(CalendarFeed.patient_id == user.patient_id, CalendarFeed.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
    await session.flush()
