"""A patient's own appointments as the patient (or their apps) may see them: when, where, in
what kind of chair, for how long, and their status. Nothing clinical or financial: no dose,
diagnosis, course, insurance or notes. Flushes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Row, Select, and_, bindparam, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import appends
from core.clock import utcnow
from core.problems import NotFound
from scheduling.appointments.models import Appointment
from scheduling.centers.models import Center, Chair
from scheduling.localtime import zone

# Upcoming visits include cancelled ones, so that calendars and apps drop them.
UPCOMING_STATUSES = ("booked", "checked_in", "in_progress", "cancelled")
MOST_VISITS = 5000  # one patient's whole history, read at once by FHIR searches and feeds


@dataclass(frozen=True)
class Visit:
    id: uuid.UUID
    patient_id: uuid.UUID
    center_id: uuid.UUID
    center_name: str
    center_address: str | None
    timezone: str
    chair_kind: str
    start: datetime  # in the center's offset
    end: datetime
    status: str
    version: int
    center_version: int  # the center's name and address are part of what a visit shows
    updated_at: datetime

    @property
    def minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)


_VISITS = (
    select(
        Appointment.id,
        Appointment.patient_id,
        Appointment.center_id,
        Center.name.label("center_name"),
        Center.address.label("center_address"),
        Center.timezone,
        Chair.kind.label("chair_kind"),
        Appointment.start_at,
        Appointment.end_at,
        Appointment.status,
        Appointment.version,
        Center.version.label("center_version"),
        Appointment.updated_at,
    )
    .join(Center, Center.id == Appointment.center_id)
    .join(Chair, Chair.id == Appointment.chair_id)
)


def _visit(row: Row[*tuple[Any, ...]]) -> Visit:
    tz = zone(row.timezone)
    return Visit(
        id=row.id,
        patient_id=row.patient_id,
        center_id=row.center_id,
        center_name=row.center_name,
        center_address=row.center_address,
        timezone=row.timezone,
        chair_kind=row.chair_kind,
        start=row.start_at.astimezone(tz),
        end=row.end_at.astimezone(tz),
        status=row.status,
        version=row.version,
        center_version=row.center_version,
        updated_at=row.updated_at.astimezone(tz),
    )


async def upcoming(
    session: AsyncSession,
    patient_id: uuid.UUID,
    *,
    include_past: bool,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> list[Visit]:
    """Soonest first: visits not yet over (or, with `include_past`, all of them). `after`: the
    (start, id) of the last visit of the previous page. Up to `limit` + 1 come back: one more
    when there is a next page."""
    # The statements are built once: the portal's first page is the hottest read there is.
    params: dict[str, Any] = {"patient_id": patient_id, "limit": limit + 1}
    if after is not None:
        params["after_start"], params["after_id"] = after
    if not include_past:
        params["now"] = utcnow()
    # With what the request holds to write (its audit event), on PostgreSQL: see `riding`.
    query, params = appends.riding(session, _PAGES[(include_past, after is not None)], params)
    # Plain rows, no entities: on the connection, past the ORM's result machinery.
    connection = await session.connection()
    return [_visit(r) for r in await connection.execute(query, params)]


def _page(include_past: bool, after: bool) -> Select[*tuple[Any, ...]]:
    query = _VISITS.where(Appointment.patient_id == bindparam("patient_id"))
    if not include_past:
        query = query.where(Appointment.end_at > bindparam("now"), _UPCOMING)
    if after:
        start = bindparam("after_start", type_=Appointment.start_at.type)
        query = query.where(
            or_(
                Appointment.start_at > start,
                and_(Appointment.start_at == start, Appointment.id > bindparam("after_id")),
            )
        )
    return query.order_by(Appointment.start_at, Appointment.id).limit(bindparam("limit"))


_UPCOMING = Appointment.status.in_([literal_column(f"'{s}'") for s in UPCOMING_STATUSES])
_PAGES = {(past, after): _page(past, after) for past in (False, True) for after in (False, True)}


async def between(
    session: AsyncSession,
    patient_id: uuid.UUID,
    first: datetime | None,
    last: datetime | None,
    statuses: Sequence[str] | None = None,
) -> list[Visit]:
    """The patient's visits starting in [first, last), soonest first (at most MOST_VISITS)."""
    query = _VISITS.where(Appointment.patient_id == patient_id)
    if first is not None:
        query = query.where(Appointment.start_at >= first)
    if last is not None:
        query = query.where(Appointment.start_at < last)
    if statuses is not None:
        query = query.where(Appointment.status.in_(list(statuses)))
    rows = await session.execute(
        query.order_by(Appointment.start_at, Appointment.id).limit(MOST_VISITS)
    )
    return [_visit(r) for r in rows]


class Witness(Protocol):
    def saw(
        self, patient_id: uuid.UUID | None = None, resource_id: uuid.UUID | None = None
    ) -> None: ...


async def visit(
    session: AsyncSession,
    appointment_id: uuid.UUID,
    patient_id: uuid.UUID | None,
    witness: Witness | None = None,
) -> Visit:
    """One visit; with `patient_id`, only if it is that patient's: another patient's gets the
    same 404 as an appointment that does not exist. `witness` (the audit trail) is told whose
    appointment was asked for, for the record only: never for the answer."""
    query = _VISITS.where(Appointment.id == appointment_id)
    if patient_id is not None:
        query = query.where(Appointment.patient_id == patient_id)
    row = (await session.execute(query)).first()
    if row is None:
        if witness is not None:
            owner = await session.scalar(
                select(Appointment.patient_id).where(Appointment.id == appointment_id)
            )
            witness.saw(owner, appointment_id)
        raise NotFound("no such appointment")
    return _visit(row)
