"""Shared pieces of the request and response models."""

from __future__ import annotations

from datetime import date
from types import UnionType
from typing import Annotated, Any, Generic, TypeVar, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

T = TypeVar("T")

# Far enough for any clinic; keeps time-zone arithmetic away from year 1 and year 9999.
FIRST_YEAR, LAST_YEAR = 1900, 2200


def printable(value: str) -> str:
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("control characters are not allowed")
    return value


def _rfc3339_text(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("give an RFC 3339 date-time string with an offset")
    return value


def _sane_year(value: date) -> date:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"dates must fall between {FIRST_YEAR} and {LAST_YEAR}")
    return value


Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(printable),
]
SearchText = Annotated[str, StringConstraints(max_length=100), AfterValidator(printable)]
HHMM = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
# An instant from a client: an RFC 3339 string with an offset, in a sane range of years.
Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(_sane_year)]
LocalDate = Annotated[date, AfterValidator(_sane_year)]


def _integer_field(annotation: Any) -> bool:
    """An int, an optional int, or a list of them (not a bool, which is an int to Python)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _integer_field(get_args(annotation)[0])
    if origin in (Union, UnionType) or origin is list:
        args = [a for a in get_args(annotation) if a is not type(None)]
        return bool(args) and all(_integer_field(a) for a in args)
    return annotation is int


def _whole_number(value: Any) -> bool:
    return value is None or type(value) is int  # not True/False, 1.5, 60.0 or "60"


class Input(BaseModel):
    """Request bodies: unknown fields are an error, never silently dropped; integers are
    strict (`true`, `1.5` and `"60"` are refused, not read as 1, 1 and 60)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _strict_integers(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if field is None or not _integer_field(field.annotation):
            return value
        values = value if isinstance(value, list) else [value]
        if not all(_whole_number(v) for v in values):
            raise ValueError("must be a whole number")
        return value


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(Output, Generic[T]):
    items: list[T]
    next_cursor: str | None
