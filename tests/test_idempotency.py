"""Idempotency-Key on POST /appointments: retries are safe."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from tests.support.factories import make_center, make_chair, make_patient
from tests.support.servers import Server


def _body(patient: str, chair: str, hhmm: str = "09:00") -> dict[str, object]:
    return {
        "patient_id": patient,
        "chair_id": chair,
        "start": f"2027-02-16T{hhmm}:00-05:00",
        "duration_minutes": 120,
    }


def _count(api: httpx.Client, center_id: str) -> int:
    return len(api.get("/api/v1/appointments", params={"center_id": center_id}).json()["items"])


def test_same_key_same_body_replays_the_first_reply(nurse: httpx.Client) -> None:
    center = make_center(nurse)
    chair, patient = make_chair(nurse, center["id"]), make_patient(nurse)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = nurse.post("/api/v1/appointments", json=_body(patient["id"], chair["id"]), headers=key)
    again = nurse.post("/api/v1/appointments", json=_body(patient["id"], chair["id"]), headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert first.headers["Location"] == again.headers["Location"]
    assert _count(nurse, center["id"]) == 1


def test_same_key_other_body_is_422(nurse: httpx.Client) -> None:
    center = make_center(nurse)
    chair, patient = make_chair(nurse, center["id"]), make_patient(nurse)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    assert (
        nurse.post(
            "/api/v1/appointments", json=_body(patient["id"], chair["id"]), headers=key
        ).status_code
        == 201
    )
    other = nurse.post(
        "/api/v1/appointments", json=_body(patient["id"], chair["id"], "13:00"), headers=key
    )
    assert other.status_code == 422 and other.headers["content-type"] == "application/problem+json"
    assert _count(nurse, center["id"]) == 1


def test_a_failed_booking_does_not_burn_the_key(nurse: httpx.Client) -> None:
    center = make_center(nurse)
    chair = make_chair(nurse, center["id"])
    nurse.post("/api/v1/appointments", json=_body(make_patient(nurse)["id"], chair["id"]))
    patient = make_patient(nurse)["id"]
    key = {"Idempotency-Key": uuid.uuid4().hex}
    assert (
        nurse.post(
            "/api/v1/appointments", json=_body(patient, chair["id"]), headers=key
        ).status_code
        == 409
    )
    # The chair is freed; the same retry now succeeds.
    first = nurse.get("/api/v1/appointments", params={"center_id": center["id"]}).json()["items"][0]
    nurse.post(f"/api/v1/appointments/{first['id']}/cancel")
    assert (
        nurse.post(
            "/api/v1/appointments", json=_body(patient, chair["id"]), headers=key
        ).status_code
        == 201
    )


def test_racing_retries_with_one_key_book_once(server: Server, nurse: httpx.Client) -> None:
    center = make_center(nurse)
    chair, patient = make_chair(nurse, center["id"]), make_patient(nurse)
    body = _body(patient["id"], chair["id"])
    headers = {
        "Authorization": f"Bearer {server.tokens['nurse']}",
        "Idempotency-Key": uuid.uuid4().hex,
    }

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=60) as c:
            return list(
                await asyncio.gather(
                    *(c.post("/api/v1/appointments", json=body) for _ in range(10))
                )
            )

    responses = asyncio.run(race())
    assert all(r.status_code in (201, 409) for r in responses), [r.status_code for r in responses]
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == 1  # replays carry the same id
    assert _count(nurse, center["id"]) == 1
