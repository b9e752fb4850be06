"""Users, for admins: who may sign in, in what role, and lifting a sign-in lockout."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.auth import sign_in_limits
from app.api.deps import (
    DEFAULT_PAGE,
    Allowed,
    Audited,
    Cursor,
    IfMatch,
    Limit,
    Session,
    etag,
    get_settings,
)
from app.auth import service
from app.auth.schemas import Role, UserCreate, UserOut, UserUpdate
from core.schemas import Page
from core.users import User

router = APIRouter(prefix="/api/v1", tags=["users"])


def user_out(user: User, locked: dict[uuid.UUID, datetime] | None = None) -> UserOut:
    out = UserOut.model_validate(user)
    out.locked_until = (locked or {}).get(user.id)
    return out


async def users_out(request: Request, session: AsyncSession, users: list[User]) -> list[UserOut]:
    """With each one's lockout, if sign-in turns them away now."""
    settings = get_settings(request)
    locked = await service.locked_out(session, users, settings.secret_key, sign_in_limits(settings))
    return [user_out(u, locked) for u in users]


@router.get("/users", response_model=Page[UserOut])
async def list_users(
    request: Request,
    session: Session,
    _: Allowed,
    role: Role | None = None,
    active: bool | None = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Page[UserOut]:
    """By email."""
    items, nxt = await service.list_users(session, role, active, limit, cursor)
    return Page[UserOut](items=await users_out(request, session, items), next_cursor=nxt)


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserOut)
async def create_user(
    data: UserCreate,
    request: Request,
    session: Session,
    _: Allowed,
    trail: Audited,
    response: Response,
) -> UserOut:
    """Add a user: staff with a role, or a patient user tied to their patient record.
    Answers 201 with its Location and ETag; 409 when the email is taken."""
    user = await service.create_user(session, data.email, data.role, data.password, data.patient_id)
    trail.saw(data.patient_id, user.id)
    response.headers["Location"] = f"/api/v1/users/{user.id}"
    response.headers["ETag"] = etag(user.version)
    # An email's failed sign-ins count before its account exists: a new one may be locked.
    return (await users_out(request, session, [user]))[0]


@router.get("/users/{user_id}", response_model=UserOut)
async def get_user(
    user_id: uuid.UUID, request: Request, session: Session, _: Allowed, response: Response
) -> UserOut:
    """One user, with its ETag for a later change."""
    user = await service.get_user(session, user_id)
    response.headers["ETag"] = etag(user.version)
    return (await users_out(request, session, [user]))[0]


@router.patch("/users/{user_id}", response_model=UserOut)
async def update_user(
    user_id: uuid.UUID,
    data: UserUpdate,
    version: IfMatch,
    request: Request,
    session: Session,
    _: Allowed,
    response: Response,
) -> UserOut:
    """`role` between staff roles; `active: false` stops their sign-ins and revokes their
    tokens and calendar link at once. The last active admin cannot be demoted or shut out."""
    user = await service.update_user(session, user_id, version, data.role, data.active)
    response.headers["ETag"] = etag(user.version)
    return (await users_out(request, session, [user]))[0]


@router.post("/users/{user_id}/unlock", response_model=UserOut)
async def unlock_user(
    user_id: uuid.UUID, request: Request, session: Session, _: Allowed
) -> UserOut:
    """Lift a sign-in lockout on the account (too many failed sign-ins)."""
    user = await service.unlock(session, user_id, get_settings(request).secret_key)
    return user_out(user)
