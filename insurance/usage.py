"""Units drawn from authorizations by sessions already given, and the settling of sessions
given without cover once an authorization for them arrives. Flushes; never commits."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import (
    delete,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from core import locks
from insurance import rules
from insurance.facts import Facts, load
from insurance.models import (
    Authorization,
    SessionDraw,
)
from scheduling.appointments.models import Appointment
from scheduling.catalog.models import Product
from scheduling.centers.models import Center
from scheduling.courses.models import Course
from scheduling.localtime import zone


async def draw(session: AsyncSession, authorization_id: uuid.UUID, units: int) -> bool:
    """Take units from an authorization unless that would pass what was approved."""
    drawn = await session.execute(
        update(Authorization)
        .where(
            Authorization.id == authorization_id,
            Authorization.units_used + units <= Authorization.units_approved,
        )
        .values(units_used=Authorization.units_used + units, version=Authorization.version + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(drawn.rowcount == 1)  # type: ignore[attr-defined]


async def settle_unpaid(session: AsyncSession, facts: Facts) -> None:
    """A session given without cover is paid for once an authorization that covers its date
    arrives (payers approve retroactively): draw the units now, before upcoming sessions."""
    still: list[tuple[rules.Need, Decimal | None, str]] = []
    for need, price, reason in facts.unpaid:
        cover = rules.allocate([need], [a.grant for a in facts.auths])[0]
        if cover.authorization_id is None:
            still.append((need, price, cover.reason or reason))
            continue
        # Claim the session first: a concurrent settle of the same session then finds it
        # taken (after waiting for this transaction) and draws nothing.
        mine = SessionDraw.appointment_id == need.appointment_id
        claimed = await session.execute(
            update(SessionDraw)
            .where(mine, SessionDraw.authorization_id.is_(None))
            .values(authorization_id=cover.authorization_id, units=cover.units, reason=None)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            continue  # settled meanwhile
        if not await draw(session, cover.authorization_id, cover.units):
            await session.execute(
                update(SessionDraw)
                .where(mine)
                .values(authorization_id=None, units=0, reason="units_exhausted")
            )
            still.append((need, price, "units_exhausted"))
            continue
        facts.auths = [
            a.drew(cover.units) if a.grant.authorization_id == cover.authorization_id else a
            for a in facts.auths
        ]
    facts.unpaid = still


async def consume(
    session: AsyncSession, appointment_id: uuid.UUID, dose_given_g: Decimal | None
) -> SessionDraw | None:
    """A course session was given: draw its units from the authorization that covers it.
    The draw is one conditional UPDATE, so two completions racing for the last unit can never
    both take it; the loser tries the next authorization or stays uncovered."""
    appt = await session.get(Appointment, appointment_id)
    if appt is None or appt.course_id is None or appt.status != "completed":
        return None  # only a session given draws units
    await locks.patient_cover(session, [appt.patient_id])
    row = (
        await session.execute(
            select(Product.hcpcs_code, Product.billing_unit_mg, Center.timezone)
            .join(Course, Course.product_id == Product.id)
            .join(Center, Center.id == Course.center_id)
            .where(Course.id == appt.course_id)
        )
    ).one()
    hcpcs, unit_mg, tz_name = row
    dose = dose_given_g if dose_given_g is not None else appt.dose_g
    need = rules.Need(
        appt.id,
        appt.start_at.astimezone(zone(tz_name)).date(),
        hcpcs,
        appt.course_id,
        dose,
        unit_mg,
    )
    facts = await load(session, [appt.patient_id])
    grants = [a.grant for a in facts[appt.patient_id].auths] if appt.patient_id in facts else []
    cover = rules.allocate([need], grants)[0]
    while cover.authorization_id is not None:
        if await draw(session, cover.authorization_id, cover.units):
            break
        grants = [g for g in grants if g.authorization_id != cover.authorization_id]
        cover = rules.allocate([need], grants)[0]
    await session.execute(delete(SessionDraw).where(SessionDraw.appointment_id == appt.id))
    record = SessionDraw(
        appointment_id=appt.id,
        patient_id=appt.patient_id,
        authorization_id=cover.authorization_id,
        units=cover.units,
        reason=cover.reason,
        consumed=True,
    )
    session.add(record)
    await session.flush()
    return record
