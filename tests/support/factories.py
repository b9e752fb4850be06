"""Small factories that make what a test needs through the public API, as a client would:
centers, chairs, patients, bookings, course orders and a patient with a portal login."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime, timedelta
from typing import Any

import httpx

from app.auth.service import create_user
from core.db import Database
from tests.support.servers import PASSWORD, Server

# --- factories -------------------------------------------------------------------------------

WEEK = range(7)


def make_center(
    api: httpx.Client,
    *,
    timezone: str = "America/New_York",
    opens: str = "07:00",
    closes: str = "19:00",
    nurses: int = 4,
    patients_per_nurse: int = 4,
    days: range = WEEK,
    **settings: Any,
) -> dict[str, Any]:
    r = api.post(
        "/api/v1/centers",
        json={
            "name": f"Center {uuid.uuid4().hex[:6]}",
            "timezone": timezone,
            "patients_per_nurse": patients_per_nurse,
            "opening_hours": [{"weekday": d, "opens": opens, "closes": closes} for d in days],
            "staffing": [
                {"weekday": d, "start": opens, "end": closes, "nurses": nurses} for d in days
            ],
            **settings,
        },
    )
    assert r.status_code == 201, r.text
    center: dict[str, Any] = r.json()
    return center


def make_chair(api: httpx.Client, center_id: str, kind: str = "chair") -> dict[str, Any]:
    r = api.post(
        f"/api/v1/centers/{center_id}/chairs",
        json={"label": f"{kind[0].upper()}-{uuid.uuid4().hex[:6]}", "kind": kind},
    )
    assert r.status_code == 201, r.text
    chair: dict[str, Any] = r.json()
    return chair


def patient_body(**overrides: Any) -> dict[str, Any]:
    """A new patient as POST /api/v1/patients takes it, with a fresh MRN."""
    return {
        "mrn": f"T{uuid.uuid4().hex[:12]}",
        "given_name": "Test",
        "family_name": "Patient",
        "birth_date": "1961-04-12",
        "sex": "female",
        "weight_kg": 70.5,
        "height_cm": 168,
        **overrides,
    }


def make_patient(api: httpx.Client, **overrides: Any) -> dict[str, Any]:
    r = api.post("/api/v1/patients", json=patient_body(**overrides))
    assert r.status_code == 201, r.text
    patient: dict[str, Any] = r.json()
    return patient


def book(
    api: httpx.Client, patient_id: str, chair_id: str, start: str, minutes: int = 180, **extra: Any
) -> httpx.Response:
    return api.post(
        "/api/v1/appointments",
        json={
            "patient_id": patient_id,
            "chair_id": chair_id,
            "start": start,
            "duration_minutes": minutes,
            **extra,
        },
    )


def patient_user(server: Server, api: httpx.Client) -> tuple[dict[str, Any], httpx.Client]:
    """A new patient, and a client signed in as the patient user linked to them (close it)."""

    patient = make_patient(api)
    email = f"p-{uuid.uuid4().hex[:8]}@test.local"

    async def add() -> None:
        db = Database(server.database_url)
        try:
            async with db.unit_of_work() as session:
                await create_user(session, email, "patient", PASSWORD, uuid.UUID(patient["id"]))
        finally:
            await db.dispose()

    asyncio.run(add())
    token = server.login(email)
    client = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"})
    return patient, client


MONDAY = date(2027, 1, 11)


def gamunex(api: httpx.Client) -> str:
    items = api.get("/api/v1/products", params={"limit": 500}).json()["items"]
    product_id: str = next(p["id"] for p in items if p["hcpcs_code"] == "J1561")
    return product_id


def weekday_center(api: httpx.Client, chairs: int = 2) -> tuple[dict[str, Any], list[str]]:
    center = make_center(api, days=range(5))  # Monday to Friday, 07:00-19:00, EST/EDT
    return center, [make_chair(api, center["id"])["id"] for _ in range(chairs)]


def order(api: httpx.Client, center_id: str, **overrides: Any) -> httpx.Response:
    body = {
        "patient_id": make_patient(api, weight_kg=70, height_cm=165, sex="female")["id"],
        "center_id": center_id,
        "product_id": gamunex(api),
        "diagnosis_code": "G61.81",
        "start_date": MONDAY.isoformat(),
        "preferred_weekdays": [0],
        "preferred_start_time": "09:00",
        **overrides,
    }
    return api.post("/api/v1/courses", json=body)


def local_day(instant: str) -> date:
    return datetime.fromisoformat(instant).date()


def order_maintenance(nurse: httpx.Client, center_id: str, cycles: int = 3) -> dict[str, Any]:
    """An MMN maintenance course (1 g/kg every 28 days, window 21-42), ordered, not booked."""
    course = order(
        nurse,
        center_id,
        diagnosis_code="G61.82",
        induction=None,
        maintenance={
            "dose_g_per_kg": 1,
            "interval_days": 28,
            "window_min_days": 21,
            "window_max_days": 42,
            "cycles": cycles,
        },
    ).json()
    assert isinstance(course, dict)
    return course


def maintenance_course(nurse: httpx.Client, center_id: str, cycles: int = 3) -> dict[str, Any]:
    """An MMN maintenance course with all its `cycles` booked."""
    course = order_maintenance(nurse, center_id, cycles)
    r = nurse.post(
        f"/api/v1/courses/{course['id']}/book",
        json={"through": (MONDAY + timedelta(weeks=12)).isoformat()},
    )
    assert r.status_code == 200 and len(r.json()["booked"]) == cycles, r.text
    return course


def sessions_of(nurse: httpx.Client, patient_id: str) -> list[dict[str, Any]]:
    items = nurse.get("/api/v1/appointments", params={"patient_id": patient_id}).json()["items"]
    return [a for a in items if a["status"] == "booked"]


def receive_lot(
    api: httpx.Client, center_id: str, product_id: str, **overrides: Any
) -> dict[str, Any]:
    """A lot of ten 10 g vials received at the center (refrigerated, expiring mid-2028)."""
    r = api.post(
        "/api/v1/inventory/lots",
        json={
            "center_id": center_id,
            "product_id": product_id,
            "lot_number": f"L{uuid.uuid4().hex[:8].upper()}",
            "vial_size_g": 10,
            "vials": 10,
            "expires_on": "2028-06-30",
            "storage": "refrigerated",
            **overrides,
        },
    )
    assert r.status_code == 201, r.text
    lot: dict[str, Any] = r.json()
    return lot
