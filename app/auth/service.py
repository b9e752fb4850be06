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
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import CalendarFeed
from app.auth import throttle
from app.auth.models import AccessToken
from app.smart.models import SmartApp
from core.clock import wall_now
from core.pagination import page
from core.problems import Conflict, Duplicate, Invalid, NotFound, Unauthorized, ensure_version
from core.repository import get_or_404
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
    # A SMART app's token reaches only what these grant (see app.smart.scopes); None: a
    # sign-in or web-session token, which no scope restricts.
    scopes: frozenset[str] | None = None


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise Invalid("passwords have at least 8 characters")
    return _hasher.hash(password)


def token_digest(token: str, secret: str) -> bytes:
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).digest()


def csrf_token(token: str, secret: str) -> str:
    """The CSRF token of a browser session: bound to its session token, so a page from another
    site, which cannot read our pages, cannot know it (the double-submit pattern, signed)."""
    return hmac.new(secret.encode(), b"csrf:" + token.encode(), hashlib.sha256).hexdigest()


async def create_user(
    session: AsyncSession, email: str, role: str, password: str, patient_id: uuid.UUID | None
) -> User:
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}")
    if (role == "patient") != (patient_id is not None):
        raise Invalid("a patient user needs a patient_id, and only a patient user has one")
    if patient_id is not None and await session.get(Patient, patient_id) is None:
        raise Invalid("no such patient")  # a field of the request, not the resource asked for
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
    now = wall_now()
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
        AccessToken.scope,
        AccessToken.client_id,
        SmartApp.active,
    )
    .join(User, User.id == AccessToken.user_id)
    # A SMART app's token works only while its app is on: switching an app off revokes its
    # tokens, but one being issued as the switch commits would miss that.
    .outerjoin(SmartApp, SmartApp.id == AccessToken.client_id)
    .where(AccessToken.token_hash == bindparam("token_hash"))
)


async def resolve(session: AsyncSession, token: str, secret: str, idle: timedelta) -> TokenState:
    row = (await session.execute(_TOKEN, {"token_hash": token_digest(token, secret)})).first()
    if row is None:
        raise Unauthorized("invalid or expired token")
    (
        token_id,
        revoked_at,
        expires_at,
        last_used_at,
        user_id,
        role,
        patient_id,
        active,
        scope,
        client_id,
        app_active,
    ) = row
    app_token = client_id is not None
    now = wall_now()
    # An app's token lasts its own hour, used or not (it promised expires_in); the idle
    # limit is for people who walk away from a signed-in screen.
    idle_out = not app_token and last_used_at + idle <= now
    if revoked_at is not None or expires_at <= now or idle_out or not active:
        raise Unauthorized("invalid or expired token")
    if app_token and app_active is not True:
        raise Unauthorized("invalid or expired token")
    # An app's token reaches what its scopes grant, and with none recorded, nothing.
    scopes = frozenset((scope or "").split()) if app_token else None
    return TokenState(Caller(user_id, role, patient_id, token_id, scopes), last_used_at)


# How often a token in use has its last use written down, at most: a write per request would
# cost every read a write, and a minute's lag is nothing against a 30-minute idle limit.
TOUCH_EVERY = timedelta(seconds=60)


def refresh_interval(idle: timedelta) -> timedelta:
    """How old a token's last use may get before a request writes it down again: a quarter of
    the idle limit (a minute at most), so a token used at least every three quarters of the
    limit never lapses, whatever the limit is set to. Pure."""
    return min(TOUCH_EVERY, idle / 4)


async def touch(session: AsyncSession, token_id: uuid.UUID) -> None:
    await session.execute(
        update(AccessToken).where(AccessToken.id == token_id).values(last_used_at=wall_now())
    )


async def revoke(session: AsyncSession, token_id: uuid.UUID) -> None:
    await session.execute(
        update(AccessToken).where(AccessToken.id == token_id).values(revoked_at=wall_now())
    )


async def deactivate_user(session: AsyncSession, email: str) -> None:
    """The user can no longer sign in, and every token they hold is revoked now."""
    user = await session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise NotFound("no such user")
    user = await _locked(session, user)
    await _still_an_admin_left(session, user, role=user.role, active=False)
    await _shut_out(session, user)


async def _shut_out(session: AsyncSession, user: User) -> None:
    user.active = False
    await session.execute(
        update(AccessToken)
        .where(AccessToken.user_id == user.id, AccessToken.revoked_at.is_(None))
        .values(revoked_at=wall_now())
    )
    if user.patient_id is not None:  # a calendar link is a credential too
        await session.execute(
            update(CalendarFeed)
            .where(CalendarFeed.patient_id == user.patient_id, CalendarFeed.revoked_at.is_(None))
            .values(revoked_at=wall_now())
        )


_ACTIVE_ADMINS = (
    select(User.id).where(User.role == "admin", User.active.is_(True)).order_by(User.id)
)


async def _locked(session: AsyncSession, user: User) -> User:
    """The user's row, locked, as it is now. Changing an admin first locks every active
    admin, in id order: two admins demoting each other at once take turns, and the second
    sees that the first is gone (else both could go, and nobody could manage users again)."""
    if user.role == "admin":
        await session.execute(_ACTIVE_ADMINS.with_for_update())
    locked = await session.get(User, user.id, with_for_update=True, populate_existing=True)
    if locked is None:
        raise NotFound("no such user")
    return locked


async def _still_an_admin_left(
    session: AsyncSession, user: User, *, role: str, active: bool
) -> None:
    """Nobody could manage users again once the last active admin is demoted or shut out."""
    if user.role != "admin" or not user.active or (role == "admin" and active):
        return
    others = await session.scalar(
        select(func.count())
        .select_from(User)
        .where(User.role == "admin", User.active.is_(True), User.id != user.id)
    )
    if not others:
        raise Conflict("this is the last active admin; make another admin first")


async def list_users(
    session: AsyncSession, role: str | None, active: bool | None, limit: int, cursor: str | None
) -> tuple[list[User], str | None]:
    query = select(User)
    if role is not None:
        query = query.where(User.role == role)
    if active is not None:
        query = query.where(User.active.is_(active))
    return await page(session, query, [User.email, User.id], limit, cursor)


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    return await get_or_404(session, User, user_id, "user")


async def update_user(
    session: AsyncSession, user_id: uuid.UUID, version: int, role: str | None, active: bool | None
) -> User:
    """Change a user's role between staff roles, or shut them out (`active` false: their
    tokens and calendar link stop working now) or let them back in."""
    user = await _locked(session, await get_user(session, user_id))
    ensure_version(user.version, version, "user")
    if role is not None and role != user.role and user.role == "patient":
        raise Invalid("a patient user stays a patient user")
    new_role = role or user.role
    new_active = user.active if active is None else active
    await _still_an_admin_left(session, user, role=new_role, active=new_active)
    user.role = new_role
    if user.active and not new_active:
        await _shut_out(session, user)
    user.active = new_active
    user.version += 1
    await session.flush()
    return user


async def emails_of(session: AsyncSession, user_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not user_ids:
        return {}
    rows = await session.execute(select(User.id, User.email).where(User.id.in_(user_ids)))
    return {user_id: email for user_id, email in rows}


async def unlock(session: AsyncSession, user_id: uuid.UUID, secret: str) -> User:
    """Lift a sign-in lockout: the account's failed sign-ins are forgotten (those counted
    against a client address stay: they may be someone else's guesses)."""
    user = await get_user(session, user_id)
    await throttle.succeeded(session, throttle.account_key(user.email, secret))
    return user


async def locked_out(
    session: AsyncSession, users: list[User], secret: str, limits: throttle.Limits
) -> dict[uuid.UUID, datetime]:
    """The users among these whom sign-in turns away now (too many failures), and until when."""
    keys = {throttle.account_key(u.email, secret): u.id for u in users}
    return await throttle.locked_until(session, keys, limits)
