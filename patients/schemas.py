"""Request and response models for patients."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, field_validator

from core.schemas import Input, Output, printable

Sex = Literal["female", "male", "other", "unknown"]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(printable),
]
Mrn = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9\-]{1,40}$")]
Weight = Annotated[Decimal, Field(gt=0, lt=500, max_digits=5, decimal_places=1)]
Height = Annotated[Decimal, Field(gt=0, lt=300, max_digits=4, decimal_places=1)]


def _not_future(value: date | None) -> date | None:
    if value is not None and (value > date.today() or value.year < 1900):
        raise ValueError("birth_date must be a past date after 1900")
    return value


class PatientCreate(Input):
    mrn: Mrn
    given_name: Name
    family_name: Name
    birth_date: date
    sex: Sex
    weight_kg: Weight | None = None
    height_cm: Height | None = None

    _birth = field_validator("birth_date")(_not_future)


class PatientUpdate(Input):
    given_name: Name | None = None
    family_name: Name | None = None
    birth_date: date | None = None
    sex: Sex | None = None
    weight_kg: Weight | None = None
    height_cm: Height | None = None

    _birth = field_validator("birth_date")(_not_future)


class PatientOut(Output):
    id: uuid.UUID
    mrn: str
    given_name: str
    family_name: str
    birth_date: date
    sex: Sex
    weight_kg: float | None
    height_cm: float | None
    version: int
