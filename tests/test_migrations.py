"""The schema comes only from migrations: they apply, match the models, and step back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, insert, text, update
from sqlalchemy.exc import IntegrityError

from app.migrate import downgrade, head_revision, upgrade
from app.models import Appointment, Base, Center, Chair, Patient
from core.db import create_engine
from tests.support.databases import backends, drop_database, fresh_database


@pytest.fixture(params=backends())
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    url = fresh_database(request.param, tmp_path)
    try:
        yield url
    finally:
        drop_database(url)


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def _run(url: str, fn: Any) -> Any:
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(fn)
    finally:
        await engine.dispose()


def test_upgrade_from_empty_matches_the_models(empty_db: str) -> None:
    upgrade(empty_db)
    assert asyncio.run(_run(empty_db, _diff)) == []
    version = asyncio.run(
        _run(
            empty_db, lambda c: c.execute(text("SELECT version_num FROM alembic_version")).scalar()
        )
    )
    assert version == head_revision()


def test_latest_revision_downgrades_and_upgrades_again(empty_db: str) -> None:
    upgrade(empty_db)
    downgrade(empty_db, "-1")
    upgrade(empty_db)
    assert asyncio.run(_run(empty_db, _diff)) == []


def test_stepping_back_past_a_table_rebuild_keeps_the_data(empty_db: str) -> None:
    """On SQLite a column drop rebuilds the table; rows that point at it must not stop it."""
    upgrade(empty_db)

    def a_center_with_a_chair(connection: Connection) -> None:
        center, now = uuid.uuid4(), datetime.now(UTC)
        common = {"version": 1, "created_at": now, "updated_at": now}
        connection.execute(
            insert(Center).values(
                id=center, name="c", timezone="UTC", patients_per_nurse=4, **common
            )
        )
        connection.execute(
            insert(Chair).values(
                id=uuid.uuid4(), center_id=center, label="A", kind="chair", active=True, **common
            )
        )

    asyncio.run(_run(empty_db, a_center_with_a_chair))
    downgrade(empty_db, "0009")  # drops centers.address
    upgrade(empty_db)
    assert asyncio.run(_run(empty_db, _diff)) == []
    count = "SELECT (SELECT count(*) FROM centers) + (SELECT count(*) FROM chairs)"
    assert asyncio.run(_run(empty_db, lambda c: c.execute(text(count)).scalar())) == 2


def _overlapping_rows(connection: Connection) -> None:
    center, chair, patient = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    connection.execute(
        insert(Center).values(
            id=center,
            name="c",
            timezone="UTC",
            patients_per_nurse=4,
            version=1,
            created_at=now,
            updated_at=now,
        )
    )
    connection.execute(
        insert(Chair).values(
            id=chair,
            center_id=center,
            label="A",
            kind="chair",
            active=True,
            version=1,
            created_at=now,
            updated_at=now,
        )
    )

    def add_patient(patient_id: uuid.UUID) -> None:
        connection.execute(
            insert(Patient).values(
                id=patient_id,
                mrn=uuid.uuid4().hex[:10],
                given_name="g",
                family_name="f",
                birth_date=datetime(1970, 1, 1).date(),
                sex="female",
                version=1,
                created_at=now,
                updated_at=now,
            )
        )

    add_patient(patient)

    def add(
        start: str,
        end: str,
        status: str = "booked",
        turnover: int = 0,
        who: uuid.UUID | None = None,
    ) -> uuid.UUID:
        appointment_id = uuid.uuid4()
        connection.execute(
            insert(Appointment).values(
                id=appointment_id,
                center_id=center,
                chair_id=chair,
                patient_id=who or patient,
                turnover_minutes=turnover,
                start_at=datetime.fromisoformat(start),
                end_at=datetime.fromisoformat(end),
                status=status,
                version=1,
                status_changed_at=now,
                created_at=now,
                updated_at=now,
            )
        )
        return appointment_id

    add("2027-01-01T09:00:00+00:00", "2027-01-01T12:00:00+00:00")
    add("2027-01-01T12:00:00+00:00", "2027-01-01T13:00:00+00:00")  # back to back is fine
    add("2027-01-01T10:00:00+00:00", "2027-01-01T11:00:00+00:00", "cancelled")  # inactive is fine
    with pytest.raises(IntegrityError), connection.begin_nested():
        add("2027-01-01T11:00:00+00:00", "2027-01-01T12:30:00+00:00")

    # The chair is held through the turnover after a visit, for anyone; the patient is not.
    other = uuid.uuid4()
    add_patient(other)
    add("2027-01-02T09:00:00+00:00", "2027-01-02T11:00:00+00:00", turnover=15)
    with pytest.raises(IntegrityError), connection.begin_nested():
        add("2027-01-02T11:00:00+00:00", "2027-01-02T12:00:00+00:00", who=other)
    with pytest.raises(IntegrityError), connection.begin_nested():
        add("2027-01-02T11:14:00+00:00", "2027-01-02T12:00:00+00:00", who=other)
    with pytest.raises(IntegrityError), connection.begin_nested():  # its own turnover too
        add("2027-01-02T08:00:00+00:00", "2027-01-02T08:50:00+00:00", turnover=15, who=other)
    add("2027-01-02T11:15:00+00:00", "2027-01-02T12:00:00+00:00", turnover=15, who=other)
    add("2027-01-02T07:45:00+00:00", "2027-01-02T08:45:00+00:00", turnover=15, who=other)
    # A visit given still holds its chair through its turnover (revision 0017).
    add("2027-01-03T09:00:00+00:00", "2027-01-03T11:00:00+00:00", "completed", turnover=15)
    with pytest.raises(IntegrityError), connection.begin_nested():
        add("2027-01-03T11:05:00+00:00", "2027-01-03T12:00:00+00:00", who=other)
    add("2027-01-03T11:15:00+00:00", "2027-01-03T12:00:00+00:00", who=other)
    # No visit lasts more than a day (revision 0036): reads of a day bound their scans by it.
    whole_day = add("2027-02-01T00:00:00+00:00", "2027-02-02T00:00:00+00:00")
    with pytest.raises(IntegrityError), connection.begin_nested():
        add("2027-02-10T00:00:00+00:00", "2027-02-11T00:01:00+00:00", "cancelled")
    with pytest.raises(IntegrityError), connection.begin_nested():
        connection.execute(
            update(Appointment)
            .where(Appointment.id == whole_day)
            .values(end_at=datetime.fromisoformat("2027-02-02T00:01:00+00:00"))
        )


def test_the_database_itself_refuses_overlapping_active_appointments(empty_db: str) -> None:
    """Bypassing the service entirely: the constraint (PostgreSQL) or trigger (SQLite) holds."""
    upgrade(empty_db)
    asyncio.run(_run(empty_db, _overlapping_rows))
