"""Registered SMART apps, their authorization codes and refresh tokens, and the keys that sign
id_tokens. Codes and tokens are stored as keyed hashes only, like access tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, LargeBinary, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import wall_now
from core.db import Base, IdMixin, Instant


class SmartApp(IdMixin, Base):
    """A patient app an admin registered: a public client (no secret; PKCE instead)."""

    __tablename__ = "smart_apps"

    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    redirect_uris: Mapped[list[str]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(Instant, default=wall_now)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class SmartAuthorizationCode(IdMixin, Base):
    """What a patient allowed an app, until the app exchanges it (once, within minutes)."""

    __tablename__ = "smart_authorization_codes"

    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    app_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("smart_apps.id"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    scope: Mapped[str] = mapped_column(String(1000))
    code_challenge: Mapped[str] = mapped_column(String(128))
    code_challenge_method: Mapped[str] = mapped_column(String(10))
    # OpenID Connect's nonce, as the app sent it: its id_token carries it back.
    nonce: Mapped[str | None] = mapped_column(String(255))
    # When the patient allowed: the id_token's auth_time, and where online access starts.
    created_at: Mapped[datetime] = mapped_column(Instant, default=wall_now)
    expires_at: Mapped[datetime] = mapped_column(Instant)
    used_at: Mapped[datetime | None] = mapped_column(Instant)


class SmartRefreshToken(IdMixin, Base):
    """A refresh token; each use replaces it with a new one (rotation). `family_id` is the
    authorization code it descends from: a replaced token used again revokes the family."""

    __tablename__ = "smart_refresh_tokens"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    app_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("smart_apps.id"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    scope: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(Instant, default=wall_now)
    expires_at: Mapped[datetime] = mapped_column(Instant)
    revoked_at: Mapped[datetime | None] = mapped_column(Instant)


class SmartSigningKey(Base):
    """An RS256 key pair that signs id_tokens (made on first need; its public half is at
    /fhir/r4/.well-known/jwks.json). The private JWK is sealed under the app's secret
    (`app.smart.sealing`): the database alone cannot sign id_tokens."""

    __tablename__ = "smart_signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_jwk_sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Instant, default=wall_now)
