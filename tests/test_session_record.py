"""The session record (issue 12): reactions as {kind, grade, action}, the tolerated rate in
mg/kg/min or mL/h, pre-infusion screening, and every record readable, course or not."""

from __future__ import annotations

import asyncio
import math
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import insert, select, text

from app.migrate import downgrade, upgrade
from core.db import Database
from scheduling.appointments.models import Appointment
from scheduling.catalog.titration import (
    concentration_mg_per_ml,
    ml_per_hour_from_rate,
    rate_from_ml_per_hour,
)
from scheduling.courses.models import REACTION_ACTIONS, REACTION_KINDS, SEVERITIES, SessionRecord
from scheduling.courses.schemas import (
    ReactionAction,
    ReactionKind,
    SessionRecordIn,
    Severity,
)
from scheduling.courses.service import severity
from tests.support.databases import backends, drop_database, fresh_database
from tests.support.factories import (
    MONDAY,
    book,
    make_patient,
    order_maintenance,
    weekday_center,
)
from tests.support.records import a_center, a_chair, a_patient
from tests.support.servers import at

HEADACHE = {"kind": "headache", "grade": 2, "action": "slowed"}

# --- converting a pump rate: pure ------------------------------------------------------------

rates = st.floats(0.01, 50, allow_nan=False)
pumps = st.floats(0.1, 1000, allow_nan=False)
strengths = st.floats(10, 200, allow_nan=False)  # mg/mL: 1 % to 20 % solutions
weights = st.floats(2, 300, allow_nan=False)


def test_a_ten_percent_solution_at_one_mg_per_kg_min_runs_at_0_6_ml_per_kg_per_hour() -> None:
    assert concentration_mg_per_ml(10) == 100
    assert math.isclose(ml_per_hour_from_rate(1, 100, 70), 42)  # 0.6 mL/kg/h x 70 kg
    assert math.isclose(rate_from_ml_per_hour(42, 100, 70), 1)
    with pytest.raises(ValueError):
        rate_from_ml_per_hour(0, 100, 70)
    with pytest.raises(ValueError):
        rate_from_ml_per_hour(42, 100, 0)


@settings(max_examples=300)
@given(rates, strengths, weights)
def test_a_rate_survives_the_round_trip_through_ml_per_hour(
    rate: float, mg_per_ml: float, kg: float
) -> None:
    back = rate_from_ml_per_hour(ml_per_hour_from_rate(rate, mg_per_ml, kg), mg_per_ml, kg)
    assert math.isclose(back, rate, rel_tol=1e-9)


@settings(max_examples=300)
@given(pumps, strengths, weights)
def test_a_pump_rate_survives_the_round_trip_through_mg_per_kg_min(
    ml: float, mg_per_ml: float, kg: float
) -> None:
    back = ml_per_hour_from_rate(rate_from_ml_per_hour(ml, mg_per_ml, kg), mg_per_ml, kg)
    assert math.isclose(back, ml, rel_tol=1e-9)


@settings(max_examples=300)
@given(pumps, pumps, strengths, weights, weights)
def test_a_faster_pump_or_a_lighter_patient_means_a_higher_rate(
    a: float, b: float, mg_per_ml: float, w1: float, w2: float
) -> None:
    slow, fast = sorted((a, b))
    light, heavy = sorted((w1, w2))
    assert rate_from_ml_per_hour(slow, mg_per_ml, heavy) <= rate_from_ml_per_hour(
        fast, mg_per_ml, heavy
    )
    assert rate_from_ml_per_hour(fast, mg_per_ml, heavy) <= rate_from_ml_per_hour(
        fast, mg_per_ml, light
    )


# --- the record's rules: pure ----------------------------------------------------------------


def test_the_vocabularies_are_the_databases() -> None:
    assert get_args(ReactionKind) == REACTION_KINDS
    assert get_args(ReactionAction) == REACTION_ACTIONS
    assert get_args(Severity) == SEVERITIES


def test_the_overall_severity_is_the_worst_grade() -> None:
    assert severity([]) == "none"
    assert severity([1]) == "mild"
    assert severity([1, 2]) == "moderate"
    assert [severity([g]) for g in (3, 4, 5)] == ["severe"] * 3


@pytest.mark.parametrize(
    ("reactions", "needs_rate"),
    [
        ([{"kind": "headache", "grade": 2, "action": "none"}], False),
        ([{"kind": "flushing", "grade": 1, "action": "premedicated"}], False),
        ([{"kind": "chills", "grade": 1, "action": "slowed"}], True),
        ([{"kind": "rash", "grade": 1, "action": "paused"}], True),
        ([{"kind": "fever", "grade": 1, "action": "stopped"}], True),
        ([{"kind": "hypotension", "grade": 3, "action": "none"}], True),
        ([{"kind": "nausea", "grade": 1, "action": "none"}, HEADACHE], True),
        ([], False),
    ],
)
def test_which_reactions_need_the_tolerated_rate(
    reactions: list[dict[str, Any]], needs_rate: bool
) -> None:
    if needs_rate:
        with pytest.raises(ValidationError, match="give the rate that was tolerated"):
            SessionRecordIn.model_validate({"reactions": reactions})
    else:
        SessionRecordIn.model_validate({"reactions": reactions})
    for rate in ({"tolerated_rate_mg_per_kg_min": 3}, {"tolerated_rate_ml_per_hour": 120}):
        assert SessionRecordIn.model_validate({"reactions": reactions, **rate}).gives_tolerated_rate


@pytest.mark.parametrize(
    "body",
    [
        {"reactions": [{"kind": "headache", "grade": 0, "action": "none"}]},
        {"reactions": [{"kind": "headache", "grade": 6, "action": "none"}]},
        {"reactions": [{"kind": "migraine", "grade": 1, "action": "none"}]},
        {"reactions": [{"kind": "headache", "grade": 1, "action": "ignored"}]},
        {"reactions": [{"kind": "headache", "grade": 1}]},
        {"reactions": [{"kind": "headache", "grade": 1, "action": "none", "onset": "10:00"}]},
        {"reactions": [HEADACHE], "reaction": "moderate", "tolerated_rate_mg_per_kg_min": 3},
        {"tolerated_rate_mg_per_kg_min": 3, "tolerated_rate_ml_per_hour": 120},
        {"tolerated_rate_ml_per_hour": 0},
        {"tolerated_rate_ml_per_hour": 1500},
        {"creatinine_mg_dl": 0.05},
        {"creatinine_mg_dl": 25},
        {"egfr_ml_min": 0},
        {"egfr_ml_min": 250},
        {"hydrated": "maybe"},
        {"infusion_minutes": 0},
        {"notes": "beep\x07"},
        {"notes": "x" * 2001},
        {"lots": [{"lot_id": str(uuid.uuid4()), "vials": 2}]},  # a later issue
    ],
)
def test_bad_records_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SessionRecordIn.model_validate(body)


def test_a_note_may_run_over_several_lines() -> None:
    assert SessionRecordIn.model_validate({"notes": " line one\nline two "}).notes == (
        "line one\nline two"
    )


# --- through the API -------------------------------------------------------------------------


SESSION_START = datetime.fromisoformat(f"{MONDAY.isoformat()}T09:00:00-05:00")
CHAIRSIDE = SESSION_START - timedelta(minutes=30)  # when the nurse checks in, starts, completes


def first_session(nurse: httpx.Client) -> tuple[dict[str, Any], dict[str, Any]]:
    """A maintenance course (70 kg patient, 10 % IVIG, 1 g/kg) with its first session booked,
    checked in and started."""
    center, _ = weekday_center(nurse)
    course = order_maintenance(nurse, center["id"])
    first = nurse.post(
        f"/api/v1/courses/{course['id']}/book", json={"through": MONDAY.isoformat()}
    ).json()["booked"][0]
    assert datetime.fromisoformat(first["start"]) == SESSION_START
    for action in ("check-in", "start"):
        r = nurse.post(f"/api/v1/appointments/{first['id']}/{action}", headers=at(CHAIRSIDE))
        assert r.status_code == 200, r.text
    return course, first


def test_a_headache_slowed_for_is_kept_with_the_rate_in_ml_per_hour(nurse: httpx.Client) -> None:
    course, first = first_session(nurse)
    through = {"through": (MONDAY + timedelta(weeks=12)).isoformat()}
    before = nurse.get(f"/api/v1/courses/{course['id']}/plan", params=through).json()
    url = f"/api/v1/appointments/{first['id']}"
    done = nurse.post(
        f"{url}/complete",
        headers=at(CHAIRSIDE),
        json={
            "dose_given_g": 70,
            "infusion_minutes": 190,
            "reactions": [HEADACHE, {"kind": "flushing", "grade": 1, "action": "none"}],
            "tolerated_rate_ml_per_hour": 150,
            "creatinine_mg_dl": 0.9,
            "egfr_ml_min": 84,
            "hydrated": True,
            "thrombosis_risk": False,
            "notes": "paracetamol given;\nrate halved for 30 min",
        },
    )
    assert done.status_code == 200, done.text

    record = nurse.get(f"{url}/record")
    assert record.status_code == 200, record.text
    got = record.json()
    assert got["reactions"] == [HEADACHE, {"kind": "flushing", "grade": 1, "action": "none"}]
    assert got["reaction"] == "moderate"  # the worst grade
    # 150 mL/h x 100 mg/mL / 60 / 70 kg (the patient's weight: none measured today)
    assert got["tolerated_rate_mg_per_kg_min"] == 3.5714
    assert (got["tolerated_rate_ml_per_hour"], got["rate_weight_kg"]) == (150, 70)
    assert got["weight_kg"] is None and got["dose_given_g"] == 70
    assert (got["creatinine_mg_dl"], got["egfr_ml_min"]) == (0.9, 84)
    assert (got["hydrated"], got["thrombosis_risk"]) == (True, False)
    assert got["infusion_minutes"] == 190 and got["notes"].endswith("for 30 min")
    assert got["course_id"] == course["id"] and got["appointment_id"] == first["id"]
    assert got["recorded_at"].endswith("-05:00")  # the center's offset

    # The rate given in mL/h caps the course as one in mg/kg/min does.
    assert nurse.get(f"/api/v1/courses/{course['id']}").json()[
        "tolerated_rate_mg_per_kg_min"
    ] == pytest.approx(3.5714)
    after = nurse.get(f"/api/v1/courses/{course['id']}/plan", params=through).json()
    assert after["sessions"][0]["chair_minutes"] > before["sessions"][1]["chair_minutes"]


def test_a_rate_in_ml_per_hour_is_converted_with_the_weight_measured_that_day(
    nurse: httpx.Client,
) -> None:
    course, first = first_session(nurse)
    url = f"/api/v1/appointments/{first['id']}"
    body = {"weight_kg": 80, "reactions": [HEADACHE], "tolerated_rate_ml_per_hour": 150}
    assert nurse.post(f"{url}/complete", headers=at(CHAIRSIDE), json=body).status_code == 200
    got = nurse.get(f"{url}/record").json()
    assert got["tolerated_rate_mg_per_kg_min"] == 3.125  # 150 x 100 / 60 / 80
    assert got["weight_kg"] == 80 and got["rate_weight_kg"] == 80
    tolerated = nurse.get(f"/api/v1/courses/{course['id']}").json()
    assert tolerated["tolerated_rate_mg_per_kg_min"] == pytest.approx(3.125)


def test_a_severe_or_stopping_reaction_needs_the_tolerated_rate(nurse: httpx.Client) -> None:
    _, first = first_session(nurse)
    url = f"/api/v1/appointments/{first['id']}"
    for reaction in (
        {"kind": "dyspnea", "grade": 3, "action": "none"},
        {"kind": "chest_tightness", "grade": 1, "action": "stopped"},
    ):
        body = {"reactions": [reaction], "notes": "Mrs Quintana-Ferreira wheezed"}
        r = nurse.post(f"{url}/complete", headers=at(CHAIRSIDE), json=body)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert "tolerated" in r.text and "Quintana" not in r.text  # nothing sent comes back
    assert nurse.get(url).json()["status"] == "in_progress"  # nothing was kept
    assert nurse.get(f"{url}/record").status_code == 404
    mild = {"reactions": [{"kind": "headache", "grade": 2, "action": "premedicated"}]}
    assert nurse.post(f"{url}/complete", headers=at(CHAIRSIDE), json=mild).status_code == 200
    got = nurse.get(f"{url}/record").json()
    assert got["reaction"] == "moderate" and got["tolerated_rate_mg_per_kg_min"] is None


def test_a_visit_outside_any_course_keeps_a_record_that_can_be_read(
    nurse: httpx.Client, billing: httpx.Client
) -> None:
    _, chairs = weekday_center(nurse)
    patient = make_patient(nurse, weight_kg=60)
    appt = book(nurse, patient["id"], chairs[0], SESSION_START.isoformat()).json()
    url = f"/api/v1/appointments/{appt['id']}"
    for action in ("check-in", "start"):
        assert nurse.post(f"{url}/{action}", headers=at(CHAIRSIDE)).status_code == 200
    # No course, no product: nothing to convert a pump rate with.
    by_pump = {"reactions": [HEADACHE], "tolerated_rate_ml_per_hour": 100}
    refused = nurse.post(f"{url}/complete", headers=at(CHAIRSIDE), json=by_pump)
    assert refused.status_code == 422 and "tolerated_rate_mg_per_kg_min" in refused.json()["detail"]
    body = {
        "dose_given_g": 24,
        "reactions": [{"kind": "rash", "grade": 1, "action": "none"}, HEADACHE],
        "tolerated_rate_mg_per_kg_min": 2.5,
        "egfr_ml_min": 55,
    }
    assert nurse.post(f"{url}/complete", headers=at(CHAIRSIDE), json=body).status_code == 200
    got = billing.get(f"{url}/record")  # billing reads it too: the dose given is billed
    assert got.status_code == 200, got.text
    record = got.json()
    assert record["course_id"] is None and record["reactions"][1] == HEADACHE
    assert record["tolerated_rate_mg_per_kg_min"] == 2.5 and record["rate_weight_kg"] is None
    assert record["egfr_ml_min"] == 55 and record["creatinine_mg_dl"] is None


def test_the_older_severity_alone_is_still_taken(nurse: httpx.Client) -> None:
    course, first = first_session(nurse)
    url = f"/api/v1/appointments/{first['id']}"
    bare = nurse.post(f"{url}/complete", headers=at(CHAIRSIDE), json={"reaction": "mild"})
    assert bare.status_code == 422  # any reaction in the older form needs the rate
    body = {"reaction": "mild", "tolerated_rate_mg_per_kg_min": 3}
    assert nurse.post(f"{url}/complete", headers=at(CHAIRSIDE), json=body).status_code == 200
    got = nurse.get(f"{url}/record").json()
    assert (got["reaction"], got["reactions"], got["tolerated_rate_mg_per_kg_min"]) == (
        "mild",
        [],
        3,
    )
    outcomes = nurse.get(f"/api/v1/courses/{course['id']}/outcomes").json()
    assert [o["reaction"] for o in outcomes] == ["mild"]


def test_no_record_is_404_and_every_look_is_on_the_patients_trail(
    nurse: httpx.Client, admin: httpx.Client
) -> None:
    course, first = first_session(nurse)
    url = f"/api/v1/appointments/{first['id']}"
    missing = nurse.get(f"{url}/record")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert nurse.get(f"/api/v1/appointments/{uuid.uuid4()}/record").status_code == 404
    # Completed without a record: still nothing to read.
    assert nurse.post(f"{url}/complete", headers=at(CHAIRSIDE)).status_code == 200
    assert nurse.get(f"{url}/record").status_code == 404

    other, second = first_session(nurse)
    url = f"/api/v1/appointments/{second['id']}"
    body = {"reactions": [HEADACHE], "tolerated_rate_ml_per_hour": 150}
    assert nurse.post(f"{url}/complete", headers=at(CHAIRSIDE), json=body).status_code == 200
    read = nurse.get(f"{url}/record")
    assert read.status_code == 200
    events = admin.get("/api/v1/audit-events", params={"patient_id": other["patient_id"]})
    looks = [e for e in events.json()["items"] if e["request_id"] == read.headers["x-request-id"]]
    assert [(e["action"], e["resource_type"], e["outcome"], e["role"]) for e in looks] == [
        ("read", "session_record", "success", "nurse")
    ]
    refused = admin.get("/api/v1/audit-events", params={"patient_id": course["patient_id"]})
    assert any(
        e["request_id"] == missing.headers["x-request-id"]
        and e["resource_type"] == "session_record"
        for e in refused.json()["items"]
    )


# --- records kept before revision 0014 -------------------------------------------------------


@pytest.fixture(params=backends())
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    url = fresh_database(request.param, tmp_path)
    try:
        yield url
    finally:
        drop_database(url)


def test_records_kept_before_the_detail_keep_their_severity(empty_db: str) -> None:
    """A record as 0013 kept it survives 0014 both ways, its severity as it was."""
    start = datetime(2027, 1, 11, 14, tzinfo=UTC)

    async def an_appointment() -> uuid.UUID:
        db = Database(empty_db)
        try:
            async with db.unit_of_work() as session:
                center = await a_center(session)
                chair = await a_chair(session, center)
                patient = await a_patient(session)
                appt_id = uuid.uuid4()
                await session.execute(
                    insert(Appointment).values(
                        id=appt_id,
                        center_id=center.id,
                        chair_id=chair.id,
                        patient_id=patient.id,
                        start_at=start,
                        end_at=start + timedelta(hours=3),
                        status="completed",
                        version=1,
                        status_changed_at=start,
                        created_at=start,
                        updated_at=start,
                    )
                )
                return appt_id
        finally:
            await db.dispose()

    async def an_old_record(appt_id: uuid.UUID) -> None:
        db = Database(empty_db)
        try:
            async with db.unit_of_work() as session:
                # Only the columns 0013 had: the ORM's table would name the newer ones.
                await session.execute(
                    text(
                        "INSERT INTO session_records (id, appointment_id, recorded_at, reaction,"
                        " tolerated_rate, incat) VALUES (:id, :appt, :at, 'moderate', 4, 3)"
                    ),
                    {
                        "id": _uuid_param(empty_db, uuid.uuid4()),
                        "appt": _uuid_param(empty_db, appt_id),
                        "at": start,
                    },
                )
        finally:
            await db.dispose()

    async def read(appt_id: uuid.UUID) -> tuple[str, float | None, int | None, int]:
        db = Database(empty_db)
        try:
            async with db.unit_of_work() as session:
                record = await session.scalar(
                    select(SessionRecord).where(SessionRecord.appointment_id == appt_id)
                )
                assert record is not None
                reactions = await session.scalar(text("SELECT count(*) FROM session_reactions"))
                rate = float(record.tolerated_rate) if record.tolerated_rate else None
                return record.reaction, rate, record.incat, int(reactions or 0)
        finally:
            await db.dispose()

    upgrade(empty_db)
    appt_id = asyncio.run(an_appointment())
    downgrade(empty_db, "0013")
    asyncio.run(an_old_record(appt_id))
    upgrade(empty_db)
    assert asyncio.run(read(appt_id)) == ("moderate", 4.0, 3, 0)
    downgrade(empty_db, "0013")  # and back: the severity is still there
    upgrade(empty_db)
    assert asyncio.run(read(appt_id)) == ("moderate", 4.0, 3, 0)


def _uuid_param(url: str, value: uuid.UUID) -> str | uuid.UUID:
    # SQLAlchemy keeps UUIDs on SQLite as 32 hex digits; a raw statement must say it the same.
    return value.hex if url.startswith("sqlite") else value
