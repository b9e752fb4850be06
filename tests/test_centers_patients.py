"""Centers, chairs and patients: create, read, edit with ETags, search and page."""

from __future__ import annotations

import base64
import uuid

import httpx

from tests.support.factories import make_center, make_chair, make_patient


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


def test_list_cursors_carry_no_patient_names(nurse: httpx.Client) -> None:
    family = f"Cursorcheck{uuid.uuid4().hex[:6]}"
    for given in ("Ann", "Bea", "Cy"):
        make_patient(nurse, family_name=family, given_name=given)
    page = nurse.get("/api/v1/patients", params={"q": family, "limit": 1}).json()
    cursor = page["next_cursor"]
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    assert family.encode() not in raw and b"Ann" not in raw
    rest = nurse.get("/api/v1/patients", params={"q": family, "limit": 5, "cursor": cursor}).json()
    assert [p["given_name"] for p in rest["items"]] == ["Bea", "Cy"]


def test_closures_and_chair_blocks_can_be_listed_and_followed(nurse: httpx.Client) -> None:
    center = make_center(nurse)
    chair = make_chair(nurse, center["id"])
    created = nurse.post(
        f"/api/v1/centers/{center['id']}/closures", json={"date": "2027-12-25", "reason": "holiday"}
    )
    assert nurse.get(created.headers["Location"]).json() == created.json()
    closures = nurse.get(f"/api/v1/centers/{center['id']}/closures").json()
    assert closures == {"items": [created.json()], "next_cursor": None}
    block = nurse.post(
        f"/api/v1/chairs/{chair['id']}/blocks",
        json={"start": "2027-03-01T08:00:00Z", "end": "2027-03-01T10:00:00Z", "reason": "repair"},
    )
    followed = nurse.get(block.headers["Location"])
    assert followed.json() == block.json() and block.json()["start"] == "2027-03-01T03:00:00-05:00"
    assert nurse.get(f"/api/v1/chairs/{chair['id']}/blocks").json()["items"] == [block.json()]
    other = make_chair(nurse, center["id"])
    assert nurse.get(f"/api/v1/chairs/{other['id']}/blocks/{block.json()['id']}").status_code == 404


def test_weak_etags_do_not_satisfy_if_match(nurse: httpx.Client) -> None:
    center = make_center(nurse)
    url = f"/api/v1/centers/{center['id']}"
    tags: list[str | bytes] = ['W/"1"', "1", '"²"'.encode(), '"1", "2"']
    for tag in tags:
        headers: dict[str, str] | dict[bytes, bytes] = (
            {"If-Match": tag} if isinstance(tag, str) else {b"If-Match": tag}
        )
        assert nurse.patch(url, json={"name": "x"}, headers=headers).status_code == 412
    assert nurse.get(url).json()["name"] == center["name"]
