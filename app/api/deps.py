"""Request-scoped dependencies: the unit of work, the caller, paging and preconditions."""

from __future__ import annotations

import re
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
# POSTs that only read (a search with its terms in the body): no write lock for them.
# POSTs whose request transaction only reads: sweeps and jobs write in transactions of their own.
READ_POSTS = frozenset(
    {
        "/api/v1/patients/search",
        "/api/v1/infusion-time",
        "/api/v1/billing/sweep",
        "/api/v1/jobs/{name}/run",
    }
)
TOUCH_EVERY = timedelta(seconds=60)


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _writes(request: Request) -> bool:
    route = request.scope.get("route")
    return request.method not in READ_METHODS and getattr(route, "path", None) not in READ_POSTS


async def _unit_of_work(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the route returns, rolled back if it raises.

    A read request never holds two connections: a token use it must record is written after
    its own transaction has ended.
    """
    db = get_db(request)
    async with db.unit_of_work(write=_writes(request)) as session:
        yield session
    token_id = getattr(request.state, "touch_token", None)
    if token_id is not None:
        async with db.unit_of_work() as writer:
            await auth.touch(writer, token_id)


Session = Annotated[AsyncSession, Depends(_unit_of_work, scope="function")]


async def authenticate(
    request: Request, session: Session, authorization: Annotated[str | None, Header()] = None
) -> auth.Caller:
    """The caller behind the bearer token (401 otherwise), checked in the request's own
    transaction; runs once per request."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send Authorization: Bearer <token>")
    settings = get_settings(request)
    idle = timedelta(minutes=settings.token_idle_minutes)
    state = await auth.resolve(session, token.strip(), settings.secret_key, idle)
    if utcnow() - state.last_used_at >= TOUCH_EVERY:
        if _writes(request):
            await auth.touch(session, state.caller.token_id)
        else:
            request.state.touch_token = state.caller.token_id  # see _unit_of_work
    request.state.caller = state.caller
    return state.caller


Authenticated = Annotated[auth.Caller, Depends(authenticate)]


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
BILLING = Guard("admin", "billing")
Admin = Annotated[auth.Caller, Depends(ADMIN)]
SIGNED_IN = Guard("admin", "nurse", "billing", "patient")

Staff = Annotated[auth.Caller, Depends(STAFF)]
Clinical = Annotated[auth.Caller, Depends(CLINICAL)]
Billing = Annotated[auth.Caller, Depends(BILLING)]
SignedIn = Annotated[auth.Caller, Depends(SIGNED_IN)]

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=500)]
DEFAULT_PAGE = DEFAULT_LIMIT


def expected_version(if_match: Annotated[str | None, Header()] = None) -> int:
    """The version named by If-Match (428 without one, 412 when it is not a version of ours)."""
    if if_match is None:
        raise PreconditionRequired("send If-Match with the ETag you read")
    # Strong comparison (RFC 9110): weak tags never match.
    match = re.fullmatch(r'"([0-9]{1,9})"', if_match.strip())
    if match is None:
        raise PreconditionFailed("If-Match does not name a version of this resource")
    return int(match.group(1))


IfMatch = Annotated[int, Depends(expected_version)]


def etag(version: int) -> str:
    return f'"{version}"'
