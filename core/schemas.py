"""Shared pieces of the request and response models."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
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


class Input(BaseModel):
    """Request bodies: unknown fields are an error, never silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(Output, Generic[T]):
    items: list[T]
    next_cursor: str | None
