"""Sign in and out."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Form, Request, Response, status
from pydantic import BaseModel, Field

from app.api.deps import SESSION_COOKIE, Allowed, Session, get_db, get_settings, same_origin
from app.auth import service, throttle
from app.settings import Settings
from core.problems import Forbidden, TooManyRequests, Unauthorized

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the scheme name, not a secret
    expires_in: int


SIGN_IN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Wrong email or password"},
    429: {"description": "Too many failed sign-ins: wait Retry-After seconds"},
}


@router.post("/token", response_model=TokenOut, responses=SIGN_IN_ERRORS)
async def issue_token(
    request: Request,
    username: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=200)],
) -> TokenOut:
    """Unknown emails and wrong passwords get the same answer in the same time; too many
    failures for an account, or from an address, are turned away for a while (429)."""
    token, expires_in = await _sign_in(request, username, password)
    return TokenOut(access_token=token, expires_in=expires_in)


class SessionOut(BaseModel):
    csrf_token: str = Field(description="send it as X-CSRF-Token with every change")
    expires_in: int


@router.post("/session", response_model=SessionOut, responses=SIGN_IN_ERRORS)
async def open_session(
    request: Request,
    response: Response,
    username: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=200)],
) -> SessionOut:
    """Sign in from the web app: the session token travels in an HttpOnly, SameSite=Strict
    cookie (Secure outside development) with the same idle and absolute limits as a bearer
    token, and every change must carry the CSRF token returned here (also on /auth/me)."""
    settings = get_settings(request)
    if not same_origin(request):
        # Another site's form would sign this browser in as someone else (login CSRF).
        raise Forbidden("sign in from Chairside's own sign-in page")
    token, expires_in = await _sign_in(request, username, password)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=expires_in,
        path="/",
        httponly=True,
        samesite="strict",
        secure=settings.environment != "development",
    )
    return SessionOut(
        csrf_token=service.csrf_token(token, settings.secret_key), expires_in=expires_in
    )


@router.delete("/session", status_code=status.HTTP_204_NO_CONTENT)
async def close_session(request: Request, caller: Allowed, session: Session) -> Response:
    """Sign out of the web app: the session ends for good and the cookie goes."""
    await service.revoke(session, caller.token_id)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=get_settings(request).environment != "development",
    )
    return response


def sign_in_limits(settings: Settings) -> throttle.Limits:
    return throttle.Limits(
        settings.sign_in_failures_per_account,
        settings.sign_in_failures_per_address,
        timedelta(minutes=settings.sign_in_window_minutes),
    )


async def _sign_in(request: Request, username: str, password: str) -> tuple[str, int]:
    settings, db = get_settings(request), get_db(request)
    account = throttle.account_key(username, settings.secret_key)
    address = request.client.host if request.client is not None else "unknown"
    limits = sign_in_limits(settings)
    async with db.unit_of_work() as session:
        attempt = await throttle.attempt(session, account, address)
    async with db.unit_of_work(write=False) as session:
        wait = await throttle.wait(session, account, address, limits)
        # No email has control characters (PostgreSQL would not even take a NUL): a stranger.
        printable = not any(ord(ch) < 32 for ch in username)
        candidate = await service.login_candidate(session, username if printable else "")
    if wait:
        async with db.unit_of_work() as session:
            await throttle.withdraw(session, attempt)
        raise TooManyRequests("too many failed sign-ins; try again later", wait)
    if not await anyio.to_thread.run_sync(service.password_matches, candidate, password):
        raise Unauthorized("wrong email or password")  # the attempt stays on record
    assert candidate.user_id is not None
    async with db.unit_of_work() as session:
        await throttle.succeeded(session, account)
        token, expires_in = await service.issue_token(
            session,
            candidate.user_id,
            settings.secret_key,
            timedelta(hours=settings.token_ttl_hours),
        )
    return token, expires_in


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(caller: Allowed, session: Session) -> Response:
    """Sign out: the token the request was made with is revoked, and later requests with it
    get 401."""
    await service.revoke(session, caller.token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class MeOut(BaseModel):
    id: uuid.UUID
    email: str
    role: str
    patient_id: uuid.UUID | None
    csrf_token: str | None = Field(
        description="for a web-app session (cookie): send it as X-CSRF-Token"
    )


@router.get("/me", response_model=MeOut)
async def who_am_i(request: Request, caller: Allowed, session: Session) -> MeOut:
    """The signed-in user: their id (to assign work to), email, role and, for patients, their
    record."""
    emails = await service.emails_of(session, {caller.user_id})
    return MeOut(
        id=caller.user_id,
        email=emails.get(caller.user_id, ""),
        role=caller.role,
        patient_id=caller.patient_id,
        csrf_token=getattr(request.state, "csrf_token", None),
    )
