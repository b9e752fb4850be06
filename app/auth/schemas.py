"""Request and response models for users (admins manage them)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints

from core.schemas import Input, Output, printable

Role = Literal["admin", "nurse", "billing", "pharmacy", "patient"]
StaffRole = Literal["admin", "nurse", "billing", "pharmacy"]
Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, to_lower=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$"
    ),
    AfterValidator(printable),
]


class UserCreate(Input):
    email: Email
    role: Role
    password: str = Field(min_length=8, max_length=200)
    patient_id: uuid.UUID | None = Field(
        default=None, description="the patient a patient user is; staff have none"
    )


class UserUpdate(Input):
    role: StaffRole | None = Field(
        default=None, description="between staff roles; a patient user stays a patient user"
    )
    active: bool | None = Field(
        default=None, description="false: no more sign-ins, and every token is revoked now"
    )


class UserOut(Output):
    id: uuid.UUID
    email: str
    role: Role
    patient_id: uuid.UUID | None
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime
    locked_until: datetime | None = Field(
        default=None, description="too many failed sign-ins: turned away until then (unlock)"
    )
