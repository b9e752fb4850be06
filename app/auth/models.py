"""Access tokens, failed sign-ins and idempotency records of POSTs."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import wall_now
from core.db import Base, IdMixin, Instant


class AccessToken(IdMixin, Base):
    """An opaque bearer token; only its keyed hash is stored."""

    __tablename__ = "access_tokens"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(Instant, default=wall_now)
    expires_at: Mapped[datetime] = mapped_column(Instant)
    last_used_at: Mapped[datetime] = mapped_column(Instant, default=wall_now)
    revoked_at: Mapped[datetime | None] = mapped_column(Instant)
    # A SMART app's token (app.smart): which app holds it, and the scopes that bound it.
    # Both null for sign-in and web-session tokens, which no scope restricts.
    client_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("smart_apps.id"), index=True)
    scope: Mapped[str | None] = mapped_column(String(1000))


class IdempotencyRecord(IdMixin, Base):
    """The first reply to a POST made with an Idempotency-Key, replayed on retries."""

    __tablename__ = "idempotency_records"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(Instant, default=wall_now)

    __table_args__ = (
        # One record per caller, route and key: the database settles racing retries.
        UniqueConstraint("user_id", "scope", "key"),
    )


class SignInFailure(Base):
    """A failed sign-in, for throttling guessers: by account (a keyed hash of the email, so
    the table names no one) and by client address."""

    __tablename__ = "sign_in_failures"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    at: Mapped[datetime] = mapped_column(Instant, default=wall_now)
    account: Mapped[bytes] = mapped_column(LargeBinary(32))
    address: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_sign_in_failures_account", "account", "at"),
        Index("ix_sign_in_failures_address", "address", "at"),
    )
