"""What billing's work queue shows and filters by, beside the alerts themselves: the filters
the queue and its CSV export share, the names of whom and what each alert is about (read for
a whole page in one query), and who an alert may be assigned to. Reads only."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal, NamedTuple, TypeVarTuple

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.users import User
from insurance.facts import LIVE
from insurance.models import (
    NOT_BILLING_KINDS,
    NURSING_KINDS,
    PHARMACY_KINDS,
    Alert,
    Authorization,
    Payer,
)
from patients.models import Patient

# `?assigned_to=none`: the alerts nobody has taken.
UNASSIGNED = "none"
# `?status=live`: the alerts still on the queue (open or acknowledged).
LIVE_STATUS = "live"
# Who may be given an alert to work on.
ASSIGNABLE_ROLES = ("billing", "admin")

Assignee = uuid.UUID | Literal["none"]
Columns = TypeVarTuple("Columns")


@dataclass(frozen=True)
class AlertFilter:
    """The work queue's filters; None leaves a field unfiltered."""

    kind: str | None = None
    status: str | None = None  # open, acknowledged, resolved, or `live` (open or acknowledged)
    payer_id: uuid.UUID | None = None
    patient_id: uuid.UUID | None = None
    authorization_id: uuid.UUID | None = None
    due_before: date | None = None
    queue: str | None = None  # nursing, pharmacy or billing (see Alert.queue)
    assigned_to: Assignee | None = None  # a user's id, or `none` for nobody's

    def apply(self, query: Select[*Columns]) -> Select[*Columns]:
        if self.queue == "nursing":
            query = query.where(Alert.kind.in_(NURSING_KINDS))
        elif self.queue == "pharmacy":
            query = query.where(Alert.kind.in_(PHARMACY_KINDS))
        elif self.queue == "billing":
            query = query.where(Alert.kind.not_in(NOT_BILLING_KINDS))
        if self.kind is not None:
            query = query.where(Alert.kind == self.kind)
        if self.status == LIVE_STATUS:
            query = query.where(Alert.status.in_(LIVE))
        elif self.status is not None:
            query = query.where(Alert.status == self.status)
        if self.payer_id is not None:
            query = query.where(Alert.payer_id == self.payer_id)
        if self.patient_id is not None:
            query = query.where(Alert.patient_id == self.patient_id)
        if self.authorization_id is not None:
            query = query.where(Alert.authorization_id == self.authorization_id)
        if self.due_before is not None:
            query = query.where(Alert.due_date < self.due_before)
        if self.assigned_to == UNASSIGNED:
            query = query.where(Alert.assigned_to.is_(None))
        elif self.assigned_to is not None:
            query = query.where(Alert.assigned_to == self.assigned_to)
        return query


class AlertNames(NamedTuple):
    """What a biller reads instead of an alert's ids."""

    patient_name: str  # "Family, Given", as the day board writes it
    mrn: str
    payer_name: str | None
    auth_number: str | None
    assignee_email: str | None


async def names_of(session: AsyncSession, alerts: Sequence[Alert]) -> dict[uuid.UUID, AlertNames]:
    """The names for these alerts, in one query however many there are."""
    if not alerts:
        return {}
    rows = await session.execute(
        select(
            Alert.id,
            Patient.family_name,
            Patient.given_name,
            Patient.mrn,
            Payer.name,
            Authorization.auth_number,
            User.email,
        )
        .select_from(Alert)
        .join(Patient, Patient.id == Alert.patient_id)
        .outerjoin(Payer, Payer.id == Alert.payer_id)
        .outerjoin(Authorization, Authorization.id == Alert.authorization_id)
        .outerjoin(User, User.id == Alert.assigned_to)
        .where(Alert.id.in_([a.id for a in alerts]))
    )
    return {
        alert_id: AlertNames(f"{family}, {given}", mrn, payer, number, email)
        for alert_id, family, given, mrn, payer, number, email in rows
    }


async def assignees(session: AsyncSession) -> list[User]:
    """The active billing and admin users, by email: whom an alert may be assigned to."""
    return list(
        await session.scalars(
            select(User)
            .where(User.role.in_(ASSIGNABLE_ROLES), User.active.is_(True))
            .order_by(User.email)
        )
    )


def may_be_assigned(user: User | None) -> bool:
    return user is not None and user.role in ASSIGNABLE_ROLES and user.active
