"""Centers, chairs and patients: create, read, edit with ETags, search and page."""

from __future__ import annotations

import uuid

import httpx

from tests.support import make_center, make_chair, make_patient


def test_center_round_trip_and_patch_with_etag(nurse: httpx.Client) -> None:
    center = make_center(nurse, timezone="Europe/Paris", days=range(5))
    url = f"/api/v1/centers/{center['id']}"
    got = nurse.get(url)
    assert got.json() == center and got.headers["ETag"] == '"1"'
    assert center["opening_hours"][0] == {"weekday": 0, "opens": "07:00", "closes": "19:00"}
    patch = {"staffing": [{"weekday": 0, "start": "08:00", "end": "12:00", "nurses": 2}]}
    assert nurse.patch(url, json=patch).status_code == 428
    r = nurse.patch(url, json=patch, headers={"If-Match": '"1"'})
    assert r.status_code == 200, r.text
    assert r.json()["staffing"] == patch["staffing"] and r.json()["version"] == 2
    assert r.headers["ETag"] == '"2"'
    assert nurse.patch(url, json={"name": "x"}, headers={"If-Match": '"1"'}).status_code == 412
    assert nurse.get(url).json()["staffing"] == patch["staffing"]


def test_chairs_page_and_patch(nurse: httpx.Client) -> None:
    center = make_center(nurse)
    made = sorted((make_chair(nurse, center["id"]) for _ in range(5)), key=lambda c: c["label"])
    seen, cursor = [], None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = nurse.get(f"/api/v1/centers/{center['id']}/chairs", params=params).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [c["id"] for c in seen] == [c["id"] for c in made]
    url = f"/api/v1/chairs/{made[0]['id']}"
    r = nurse.patch(url, json={"active": False, "kind": "bed"}, headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["active"] is False and r.json()["kind"] == "bed"
    dup = nurse.patch(url, json={"label": made[1]["label"]}, headers={"If-Match": '"2"'})
    assert dup.status_code == 409
    assert nurse.get(url).json()["label"] == made[0]["label"]


def test_out_of_service_chair_cannot_be_booked(nurse: httpx.Client) -> None:
    center = make_center(nurse)
    chair = make_chair(nurse, center["id"])
    nurse.patch(
        f"/api/v1/chairs/{chair['id']}", json={"active": False}, headers={"If-Match": '"1"'}
    )
    r = nurse.post(
        "/api/v1/appointments",
        json={
            "patient_id": make_patient(nurse)["id"],
            "chair_id": chair["id"],
            "start": "2027-01-12T09:00:00-05:00",
            "duration_minutes": 60,
        },
    )
    assert r.status_code == 422 and "out of service" in r.json()["detail"]


def test_patients_search_edit_and_unique_mrn(nurse: httpx.Client) -> None:
    family = f"Okafor{uuid.uuid4().hex[:6]}"
    p = make_patient(nurse, family_name=family, given_name="Ngozi")
    dup = nurse.post(
        "/api/v1/patients",
        json={**{k: p[k] for k in ("mrn", "given_name", "family_name", "birth_date", "sex")}},
    )
    assert dup.status_code == 409 and dup.headers["content-type"] == "application/problem+json"
    found = nurse.get("/api/v1/patients", params={"q": family.lower()}).json()["items"]
    assert [x["id"] for x in found] == [p["id"]]
    assert nurse.get("/api/v1/patients", params={"q": "%"}).status_code == 200
    body_search = nurse.post("/api/v1/patients/search", json={"q": family.upper()[:8]})
    assert body_search.status_code == 200
    assert p["id"] in [x["id"] for x in body_search.json()["items"]]
    url = f"/api/v1/patients/{p['id']}"
    r = nurse.patch(url, json={"weight_kg": 72.3}, headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["weight_kg"] == 72.3 and r.json()["version"] == 2
    assert nurse.get(url).json()["weight_kg"] == 72.3


def test_health_readiness_and_metrics(anonymous: httpx.Client, nurse: httpx.Client) -> None:
    assert anonymous.get("/healthz").json() == {"status": "ok"}
    ready = anonymous.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    nurse.get("/api/v1/centers")
    metrics = anonymous.get("/metrics").text
    assert 'chairside_requests_total{method="GET",route="/api/v1/centers",status="200"}' in metrics
