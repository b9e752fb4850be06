"""The people who sign in: staff (nurses, billers, pharmacists, admins) and patients. The
app's auth signs them in; domains name them as actors and assignees."""

from __future__ import annotations

import uuid

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, IdMixin, TimestampMixin

ROLES = ("admin", "nurse", "billing", "pharmacy", "patient")


class User(IdMixin, TimestampMixin, Base):
    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    patient_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("patients.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __table_args__ = (
        CheckConstraint(
            "role IN ('admin', 'nurse', 'billing', 'pharmacy', 'patient')", name="role"
        ),
        CheckConstraint("(role = 'patient') = (patient_id IS NOT NULL)", name="patient_link"),
    )
