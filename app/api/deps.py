"""Request-scoped dependencies: the unit of work, the caller, paging and preconditions."""

from __future__ import annotations

import asyncio
import hmac
import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Header, Query, Request
from fastapi.security import (
    APIKeyCookie,
    HTTPAuthorizationCredentials,
    HTTPBearer,
    OAuth2PasswordBearer,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.api import policy
from app.api.middleware import TIME_LIMIT
from app.api.policy import READ_METHODS
from app.audit import service as audit_trail
from app.audit.service import Entry, Trail
from app.auth import flood
from app.auth import service as auth
from app.settings import Settings
from app.smart import scopes as smart_scopes
from core.clock import wall_now
from core.db import Database
from core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from core.problems import (
    Forbidden,
    PreconditionFailed,
    PreconditionRequired,
    TooManyRequests,
    Unauthorized,
)


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


# A route that commits in transactions of its own takes the database (its row in the policy
# table says transaction="own", and the app refuses to start otherwise).
OwnTransactions = Annotated[Database, Depends(get_db)]


def _writes(request: Request) -> bool:
    rule = policy.rule(request.method, route_path(request) or "")
    return rule.writes(request.method) if rule is not None else request.method not in READ_METHODS


def unlimited(request: Request) -> None:
    """Lift the request time limit (see RequestGuard) for a route the policy exempts."""
    deadline: asyncio.Timeout | None = request.scope.get(TIME_LIMIT)
    if deadline is not None:
        deadline.reschedule(None)


def route_path(request: Request) -> str | None:
    route = request.scope.get("route")
    return getattr(route, "path", None)


async def unit_of_work(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the route returns, rolled back if it raises.

    A route that touches patient data leaves one audit event (see `policy`): in the same
    transaction when it succeeds (on SQLite, a read's event follows in a write of its own), in
    a transaction of its own when it is refused or fails, since the request's rolls back.
    A read request never holds two connections: a token use it must record is written after
    its own transaction has ended. A refusal of someone not signed in is counted in its
    address's tally for the minute instead (see `authenticate`); one turned away for coming
    too often (429) leaves nothing.
    """
    db = get_db(request)
    rule = policy.rule(request.method, route_path(request) or "")
    audit = rule.audit if rule is not None else None
    if rule is not None and not rule.timeout:
        unlimited(request)
    trail = request.state.trail = Trail()
    writes = _writes(request)
    statements = rule is not None and rule.transaction == "statements"
    recorded = False
    try:
        async with db.unit_of_work(write=writes, statements=statements) as session:
            if audit is not None and (writes or db.dialect != "sqlite"):

                async def success() -> None:
                    await audit_trail.record(session, _event(request, audit, trail, "success"))

                trail.on_success = success
            yield session
            if trail.on_success is not None:
                await trail.record_now()  # unless the route did
                recorded = True
            # The callback holds the request, which holds the trail: left in place, that
            # cycle keeps the whole request (its task, session, headers) alive until a full
            # collection, and full collections every second or so were the API's worst pauses.
            trail.on_success = None
    except (Exception, asyncio.CancelledError) as exc:  # a timeout's cancellation is, too
        refused = _unauthenticated(request, exc, audit)
        if refused == "refused":
            await asyncio.shield(_tally_apart(request, audit, trail))
        elif refused is None and audit is not None:
            event = _event(request, audit, trail, _outcome(exc))
            await asyncio.shield(_record_apart(db, event))
        raise
    token_id = getattr(request.state, "touch_token", None)
    if token_id is not None or (audit is not None and not recorded):
        async with db.unit_of_work() as writer:
            if audit is not None and not recorded:
                await audit_trail.record(writer, _event(request, audit, trail, "success"))
            if token_id is not None:
                await auth.touch(writer, token_id)


async def _record_apart(db: Database, event: Entry) -> None:
    async with db.unit_of_work() as writer:
        await audit_trail.record(writer, event)


async def _tally_apart(request: Request, audit: policy.Audit | None, trail: Trail) -> None:
    """Count a refusal of someone not signed in in its address's tally for the minute, on
    any route; the first few of the minute on an audited route are audit events too. One
    row per address and minute, however many come: a flood cannot fill the trail."""
    settings = get_settings(request)
    request_id = getattr(request.state, "request_id", "") or ""
    most = settings.unauthenticated_events_per_address_per_minute if audit is not None else 0
    async with get_db(request).unit_of_work() as writer:
        on_trail = await audit_trail.tally_refusal(
            writer, _client(request), request_id, events=most
        )
        if on_trail and audit is not None:
            await audit_trail.record(writer, _event(request, audit, trail, "denied"))


def _unauthenticated(
    request: Request, exc: BaseException, audit: policy.Audit | None
) -> str | None:
    """How a refused request of no one signed in is recorded: "refused" (tallied), or
    "throttled" (nowhere); None for everyone else. Besides failed authentication (see
    `authenticate`), an audited public route's own credential that did not hold (a calendar
    link's secret: 404) is tallied too, or guessing links would fill the trail."""
    said: str | None = getattr(request.state, UNAUTHENTICATED, None)
    if said is not None or audit is None or getattr(request.state, "caller", None) is not None:
        return said
    return "refused" if _outcome(exc) == "denied" else None


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _event(request: Request, audit: policy.Audit, trail: Trail, outcome: str) -> Entry:
    caller: auth.Caller | None = getattr(request.state, "caller", None)
    client = request.client.host if request.client is not None else None
    # What the route says it touched; else what was asked for.
    resource_id = trail.resource_id or _path_id(request, f"{audit.resource}_id")
    return Entry(
        actor_id=caller.user_id if caller is not None else None,
        role=caller.role if caller is not None else trail.credential,
        action=audit.action,
        patient_id=trail.patient_id or _path_id(request, "patient_id"),
        resource_type=audit.resource,
        resource_id=resource_id,
        outcome=outcome,
        request_id=getattr(request.state, "request_id", "") or "",
        client=client,
    )


def _path_id(request: Request, name: str) -> uuid.UUID | None:
    value = request.path_params.get(name)
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value)) if value is not None else None
    except ValueError:
        return None


def _outcome(exc: BaseException) -> str:
    status = getattr(exc, "status", None) or getattr(exc, "status_code", None)
    return "denied" if status in (401, 403, 404) else "error"


Session = Annotated[AsyncSession, Depends(unit_of_work, scope="function")]


SESSION_COOKIE = "chairside_session"


def same_origin(request: Request) -> bool:
    """Whether a browser sent the request from one of our own pages: its Origin names this
    host, or, without one, its Sec-Fetch-Site says same-origin (or that a person typed it).
    Clients that send neither (not browsers) pass; the CSRF token still binds them."""
    origin = request.headers.get("origin")
    if origin is not None:
        return urlsplit(origin).netloc == request.headers.get("host", "")
    return request.headers.get("sec-fetch-site") in (None, "same-origin", "none")


CSRF_HEADER = "x-csrf-token"


# Where a request refused before anyone was signed in says so for `unit_of_work`: "refused"
# (counted in the address's tally) or "throttled" (429, recorded nowhere).
UNAUTHENTICATED = "unauthenticated"


def _gate(request: Request) -> flood.Gate:
    """The app's gate for failed authentications (one per app, so per process)."""
    gate: flood.Gate = request.app.state.unauthenticated_gate
    return gate


# How to sign in, for the OpenAPI document (its securitySchemes, and each signed-in operation's
# `security`: any one of them). They only describe: they never answer (auto_error=False) and
# what they read goes unused, since `authenticate` reads the credentials itself, so its 401s,
# the cookie's CSRF check and the flood gate stay its own.
PASSWORD = OAuth2PasswordBearer(
    tokenUrl="/api/v1/auth/token",
    scheme_name="password",
    description="Sign in with email (`username`) and password at POST /api/v1/auth/token; "
    "send the access token as `Authorization: Bearer <token>`.",
    auto_error=False,
)
BEARER = HTTPBearer(
    scheme_name="bearer",
    description="An access token from POST /api/v1/auth/token, sent as "
    "`Authorization: Bearer <token>`.",
    auto_error=False,
)
COOKIE = APIKeyCookie(
    name=SESSION_COOKIE,
    scheme_name="session",
    description="The web app's session (POST /api/v1/auth/session): an HttpOnly cookie; "
    "every change made with it carries the session's CSRF token as X-CSRF-Token.",
    auto_error=False,
)


async def authenticate(
    request: Request,
    session: Session,
    _password: Annotated[str | None, Depends(PASSWORD)],
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    _cookie: Annotated[str | None, Depends(COOKIE)],
) -> auth.Caller:
    """The caller behind the bearer token, or the web app's session cookie (401 otherwise),
    checked in the request's own transaction; runs once per request. A change made with the
    cookie must carry the session's CSRF token: a browser sends cookies to us from any site's
    page, but only our own pages know that token.

    An address whose requests fail this too often (see `flood`) gets 429 instead of 401 or
    403 for the next failure; a good credential from it still gets through."""
    try:
        return await _identify(request, session, request.headers.get("authorization"))
    except (Unauthorized, Forbidden):
        wait = _gate(request).admit(_client(request))
        setattr(request.state, UNAUTHENTICATED, "throttled" if wait else "refused")
        if wait:
            raise TooManyRequests(
                "too many requests that failed authentication from this address; try again later",
                wait,
            ) from None
        raise


async def _identify(
    request: Request, session: AsyncSession, authorization: str | None
) -> auth.Caller:
    settings = get_settings(request)
    scheme, _, token = (authorization or "").partition(" ")
    cookie = request.cookies.get(SESSION_COOKIE)
    if authorization is None and cookie:
        token = cookie
        csrf = auth.csrf_token(token, settings.secret_key)
        request.state.csrf_token = csrf
        if request.method not in READ_METHODS:
            if not same_origin(request):
                raise Forbidden("a change made from another site's page is refused")
            sent = request.headers.get(CSRF_HEADER, "").encode("utf-8", "replace")
            if not hmac.compare_digest(sent, csrf.encode()):
                raise Forbidden("this change needs the session's CSRF token (X-CSRF-Token)")
    elif scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send Authorization: Bearer <token>")
    idle = timedelta(minutes=settings.token_idle_minutes)
    state = await auth.resolve(session, token.strip(), settings.secret_key, idle)
    if wall_now() - state.last_used_at >= auth.refresh_interval(idle):
        if _writes(request):
            await auth.touch(session, state.caller.token_id)
        else:
            request.state.touch_token = state.caller.token_id  # see unit_of_work
    request.state.caller = state.caller
    return state.caller


Authenticated = Annotated[auth.Caller, Depends(authenticate)]


async def authorize(request: Request, caller: Authenticated) -> auth.Caller:
    """The caller, if the access policy lets their role use this route (403 otherwise)."""
    rule = policy.rule(request.method, route_path(request) or "")
    if rule is None or caller.role not in rule.roles:
        raise Forbidden("your role may not use this")
    # A SMART app's token reaches only the FHIR reads its scopes grant (app.smart.scopes).
    if caller.scopes is not None and not smart_scopes.reaches(
        caller.scopes, request.method, route_path(request) or ""
    ):
        raise Forbidden("insufficient scope: this app's token does not reach this")
    return caller


# Every signed-in route declares this; what it allows is `policy.POLICY`, one table.
Allowed = Annotated[auth.Caller, Depends(authorize)]


def get_trail(request: Request, _: Session) -> Trail:
    """The request's audit trail (made with its unit of work, hence the Session)."""
    trail: Trail = request.state.trail
    return trail


Audited = Annotated[Trail, Depends(get_trail)]

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=500)]
DEFAULT_PAGE = DEFAULT_LIMIT


def expected_version(_: Allowed, if_match: Annotated[str | None, Header()] = None) -> int:
    """The version named by If-Match (428 without one, 412 when it is not a version of ours).
    Asked only of a caller allowed to make the change: who may not gets 401/403 first."""
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
