"""Loose numbers and echoed input (issue 14, 7 and 8): integers in request bodies are strict —
`true`, `1.5`, `60.0` and `"60"` are refused (422), never read as 1 or 60 — and an error body
names the field and the rule, never the caller's value."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.support.factories import book, make_center, make_chair, make_patient

INJECTED = "' UNION SELECT password_hash FROM users --"


def tomorrow_at_ten() -> str:
    day = datetime.now(ZoneInfo("America/New_York")).date() + timedelta(days=1)
    return datetime(
        day.year, day.month, day.day, 10, tzinfo=ZoneInfo("America/New_York")
    ).isoformat()


@pytest.mark.parametrize("minutes", [True, 1.5, 60.0, "60", [60]])
def test_a_loose_number_books_nothing(nurse: httpx.Client, minutes: object) -> None:
    """Reproduces issue 14: `"duration_minutes": true` booked a 1-minute visit (201)."""
    center = make_center(nurse)
    chair = make_chair(nurse, center["id"])
    patient = make_patient(nurse)["id"]
    r = book(nurse, patient, chair["id"], tomorrow_at_ten(), minutes)  # type: ignore[arg-type]
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert ["body", "duration_minutes"] in [e["loc"] for e in r.json()["errors"]]
    listed = nurse.get("/api/v1/appointments", params={"patient_id": patient}).json()["items"]
    assert listed == []
    assert book(nurse, patient, chair["id"], tomorrow_at_ten(), 60).status_code == 201


def test_strict_integers_in_other_bodies(nurse: httpx.Client) -> None:
    """A center's nurse ratio and a staffing row's nurses, as every body's integers."""
    for loose in (True, "4", 4.5):
        bad = make_center_body() | {"patients_per_nurse": loose}
        r = nurse.post("/api/v1/centers", json=bad)
        assert r.status_code == 422, (loose, r.text)
        staffing = make_center_body()
        staffing["staffing"][0]["nurses"] = loose
        assert nurse.post("/api/v1/centers", json=staffing).status_code == 422, loose
    assert nurse.post("/api/v1/centers", json=make_center_body()).status_code == 201


def make_center_body() -> dict[str, Any]:
    days = range(7)
    return {
        "name": f"Center {uuid.uuid4().hex[:6]}",
        "timezone": "America/New_York",
        "patients_per_nurse": 4,
        "opening_hours": [{"weekday": d, "opens": "07:00", "closes": "19:00"} for d in days],
        "staffing": [{"weekday": d, "start": "07:00", "end": "19:00", "nurses": 4} for d in days],
    }


def test_an_error_names_the_field_not_the_value(nurse: httpx.Client, admin: httpx.Client) -> None:
    """Reproduces issue 14: an invalid time zone was quoted in the 422."""
    r = nurse.post("/api/v1/centers", json=make_center_body() | {"timezone": INJECTED})
    assert r.status_code == 422, r.text
    assert "UNION" not in r.text and "timezone" in r.text
    center = make_center(nurse)
    label = f"Bay {INJECTED}"[:40]
    url = f"/api/v1/centers/{center['id']}/chairs"
    assert nurse.post(url, json={"label": label, "kind": "chair"}).status_code == 201
    r = nurse.post(url, json={"label": label, "kind": "chair"})
    assert r.status_code == 409, r.text
    assert "UNION" not in r.text and "label" in r.text
