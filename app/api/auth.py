"""Sign in and out."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response, status
from pydantic import BaseModel

from app.api.deps import Session, SignedIn, get_db, get_settings
from app.auth import service

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the scheme name, not a secret
    expires_in: int


@router.post(
    "/token",
    response_model=TokenOut,
    responses={401: {"description": "Wrong email or password"}},
)
async def issue_token(
    request: Request,
    username: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=200)],
) -> TokenOut:
    settings = get_settings(request)
    async with get_db(request).unit_of_work() as session:
        token, expires_in = await service.login(
            session,
            username,
            password,
            settings.secret_key,
            timedelta(hours=settings.token_ttl_hours),
        )
    return TokenOut(access_token=token, expires_in=expires_in)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(caller: SignedIn, session: Session) -> Response:
    await service.revoke(session, caller.token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
