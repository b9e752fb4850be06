"""Request-scoped dependencies: the unit of work, the caller, paging and preconditions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Header, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import service as auth
from app.db import Database, utcnow
from app.pagination import DEFAULT_LIMIT, MAX_LIMIT
from app.problems import Forbidden, PreconditionFailed, PreconditionRequired, Unauthorized
from app.settings import Settings

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOUCH_EVERY = timedelta(seconds=60)


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def authenticate(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> auth.Caller:
    """The caller behind the bearer token (401 otherwise); runs once per request."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send Authorization: Bearer <token>")
    db, settings = get_db(request), get_settings(request)
    idle = timedelta(minutes=settings.token_idle_minutes)
    async with db.unit_of_work(write=False) as session:
        state = await auth.resolve(session, token.strip(), settings.secret_key, idle)
    if utcnow() - state.last_used_at >= TOUCH_EVERY:
        async with db.unit_of_work() as session:
            await auth.touch(session, state.caller.token_id)
    request.state.caller = state.caller
    return state.caller


Authenticated = Annotated[auth.Caller, Depends(authenticate)]


async def _unit_of_work(request: Request, _: Authenticated) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the route returns, rolled back if it raises.

    It depends on `authenticate` so the token check (and its own small transactions) is done
    before this one opens: on SQLite a write unit of work must not wait inside another.
    """
    async with get_db(request).unit_of_work(write=request.method not in READ_METHODS) as session:
        yield session


Session = Annotated[AsyncSession, Depends(_unit_of_work, scope="function")]


class Guard:
    """Who may call a route. Every /api/v1 route but login declares one (a test checks)."""

    def __init__(self, *roles: str) -> None:
        self.roles = frozenset(roles)

    async def __call__(self, caller: Authenticated) -> auth.Caller:
        if caller.role not in self.roles:
            raise Forbidden("your role may not use this")
        return caller


STAFF = Guard("admin", "nurse", "billing")
CLINICAL = Guard("admin", "nurse")
ADMIN = Guard("admin")
SIGNED_IN = Guard("admin", "nurse", "billing", "patient")

Staff = Annotated[auth.Caller, Depends(STAFF)]
Clinical = Annotated[auth.Caller, Depends(CLINICAL)]
SignedIn = Annotated[auth.Caller, Depends(SIGNED_IN)]

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=500)]
DEFAULT_PAGE = DEFAULT_LIMIT


def expected_version(if_match: Annotated[str | None, Header()] = None) -> int:
    """The version named by If-Match (428 without one, 412 when it is not a version of ours)."""
    if if_match is None:
        raise PreconditionRequired("send If-Match with the ETag you read")
    tag = if_match.strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise PreconditionFailed("If-Match does not name a version of this resource")
    return int(tag)


IfMatch = Annotated[int, Depends(expected_version)]


def etag(version: int) -> str:
    return f'"{version}"'
