"""Sign in and out."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Form, Request, Response, status
from pydantic import BaseModel

from app.api.deps import Allowed, Session, get_db, get_settings
from app.auth import service, throttle
from core.problems import TooManyRequests, Unauthorized

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the scheme name, not a secret
    expires_in: int


@router.post(
    "/token",
    response_model=TokenOut,
    responses={
        401: {"description": "Wrong email or password"},
        429: {"description": "Too many failed sign-ins: wait Retry-After seconds"},
    },
)
async def issue_token(
    request: Request,
    username: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=200)],
) -> TokenOut:
    """Unknown emails and wrong passwords get the same answer in the same time; too many
    failures for an account, or from an address, are turned away for a while (429)."""
    settings, db = get_settings(request), get_db(request)
    account = throttle.account_key(username, settings.secret_key)
    address = request.client.host if request.client is not None else "unknown"
    limits = throttle.Limits(
        settings.sign_in_failures_per_account,
        settings.sign_in_failures_per_address,
        timedelta(minutes=settings.sign_in_window_minutes),
    )
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
    return TokenOut(access_token=token, expires_in=expires_in)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(caller: Allowed, session: Session) -> Response:
    await service.revoke(session, caller.token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class MeOut(BaseModel):
    id: uuid.UUID
    role: str
    patient_id: uuid.UUID | None


@router.get("/me", response_model=MeOut)
async def who_am_i(caller: Allowed) -> MeOut:
    """The signed-in user: their id (to assign work to), role and, for patients, their record."""
    return MeOut(id=caller.user_id, role=caller.role, patient_id=caller.patient_id)
