"""Request and response models for drug lots and their administrations."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints

from core.schemas import Input, LocalDate, Output, Text, printable

Storage = Literal["refrigerated", "room_temperature"]
LotStatus = Literal["available", "quarantined", "recalled"]
LotNumber = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=40),
    AfterValidator(printable),
]


class LotReceive(Input):
    """Vials of one lot and size received at a center."""

    center_id: uuid.UUID
    product_id: uuid.UUID
    lot_number: LotNumber
    vial_size_g: float = Field(gt=0, le=1000, description="one of the product's vial sizes")
    vials: int = Field(ge=1, le=100_000)
    expires_on: LocalDate = Field(description="the expiry on the label")
    storage: Storage = "refrigerated"
    location: Text | None = Field(default=None, description="where it is kept: fridge, shelf")


class LotUpdate(Input):
    """Fields sent change; `location: null` clears it."""

    storage: Storage | None = Field(
        default=None,
        description="`room_temperature`: out of the fridge, the expiry becomes the earlier of "
        "the one it had and today plus the product's room-temperature months. A vial never "
        "goes back to the fridge (409)",
    )
    status: LotStatus | None = Field(
        default=None, description="quarantined and recalled lots are not used; a recall is final"
    )
    location: Text | None = None


class LotOut(Output):
    id: uuid.UUID
    center_id: uuid.UUID
    product_id: uuid.UUID
    lot_number: str
    vial_size_g: float
    vials_received: int
    vials_on_hand: int
    expires_on: date
    storage: Storage
    room_temperature_since: datetime | None
    status: LotStatus
    location: str | None
    received_at: datetime
    version: int


class AdministrationOut(Output):
    """Vials of the lot given at a visit: who received them, and when."""

    patient_id: uuid.UUID
    patient_name: str  # family, given: whom the recall must reach
    mrn: str
    appointment_id: uuid.UUID
    start: datetime
    vials: int
    recorded_at: datetime
    recorded_by: uuid.UUID | None
