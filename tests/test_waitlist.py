"""The waitlist (issue 16, first piece) through the real server: putting patients on it,
listing, reading, changing and removing entries, what is refused, and the entries an opening
fits in the order it would offer them."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.support.factories import make_center, make_patient, order

WAITLIST = "/api/v1/waitlist"


def entry_body(center_id: str, patient_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "center_id": center_id,
        "patient_id": patient_id,
        "earliest": "2027-02-01",
        "latest": "2027-02-28",
        "duration_minutes": 180,
        "chair_kind": "chair",
        "priority": 3,
        **overrides,
    }


def add(api: httpx.Client, center_id: str, **overrides: Any) -> dict[str, Any]:
    """An entry for a new patient (unless one is given)."""
    patient_id = overrides.pop("patient_id", None) or make_patient(api)["id"]
    r = api.post(WAITLIST, json=entry_body(center_id, patient_id, **overrides))
    assert r.status_code == 201, r.text
    entry: dict[str, Any] = r.json()
    assert r.headers["Location"] == f"{WAITLIST}/{entry['id']}"
    assert r.headers["ETag"] == f'"{entry["version"]}"'
    return entry


def listed(api: httpx.Client, **params: Any) -> list[str]:
    r = api.get(WAITLIST, params=params)
    assert r.status_code == 200, r.text
    return [e["id"] for e in r.json()["items"]]


def fitting(api: httpx.Client, center_id: str, **params: Any) -> list[str]:
    query = {
        "center_id": center_id,
        "date": "2027-02-10",
        "start": "09:00",
        "duration_minutes": 240,
        "chair_kind": "chair",
        **params,
    }
    r = api.get(f"{WAITLIST}/fits", params=query)
    assert r.status_code == 200, r.text
    return [e["id"] for e in r.json()["items"]]


def test_an_entry_is_added_listed_changed_and_removed(
    nurse: httpx.Client, admin: httpx.Client, billing: httpx.Client
) -> None:
    center = make_center(nurse)
    patient = make_patient(nurse)
    entry = add(nurse, center["id"], patient_id=patient["id"], note="  prefers mornings ")
    assert (entry["status"], entry["course_id"], entry["note"]) == (
        "waiting",
        None,
        "prefers mornings",
    )
    assert (entry["earliest"], entry["latest"], entry["duration_minutes"]) == (
        "2027-02-01",
        "2027-02-28",
        180,
    )
    assert (entry["chair_kind"], entry["priority"], entry["center_id"]) == (
        "chair",
        3,
        center["id"],
    )
    other = add(admin, center["id"], priority=1)

    assert listed(nurse, center_id=center["id"]) == [entry["id"], other["id"]]
    assert listed(nurse, patient_id=patient["id"]) == [entry["id"]]
    assert listed(nurse, center_id=center["id"], status="removed") == []
    r = nurse.get(f"{WAITLIST}/{entry['id']}")
    assert r.status_code == 200 and r.json() == entry
    assert r.headers["ETag"] == f'"{entry["version"]}"'
    assert nurse.get(f"{WAITLIST}/{uuid.uuid4()}").status_code == 404

    # Billing has no business with it.
    assert billing.get(WAITLIST).status_code == 403
    assert billing.get(f"{WAITLIST}/{entry['id']}").status_code == 403
    assert billing.post(WAITLIST, json=entry_body(center["id"], patient["id"])).status_code == 403

    # Changes need If-Match with the version read.
    url = f"{WAITLIST}/{entry['id']}"
    assert nurse.patch(url, json={"priority": 2}).status_code == 428
    r = nurse.patch(url, json={"priority": 2}, headers={"If-Match": '"999"'})
    assert r.status_code == 412, r.text
    r = nurse.patch(
        url,
        json={"priority": 2, "latest": "2027-03-15", "note": "any day"},
        headers={"If-Match": r.headers.get("ETag", f'"{entry["version"]}"')},
    )
    assert r.status_code == 200, r.text
    changed = r.json()
    assert (changed["priority"], changed["latest"], changed["note"]) == (2, "2027-03-15", "any day")
    assert changed["version"] > entry["version"]
    assert r.headers["ETag"] == f'"{changed["version"]}"'
    r = nurse.patch(
        url, json={"earliest": "2027-03-16"}, headers={"If-Match": f'"{changed["version"]}"'}
    )
    assert r.status_code == 422, r.text

    # Removed is final.
    r = nurse.patch(
        url, json={"status": "removed"}, headers={"If-Match": f'"{changed["version"]}"'}
    )
    assert r.status_code == 200 and r.json()["status"] == "removed", r.text
    removed = r.json()
    r = nurse.patch(url, json={"priority": 1}, headers={"If-Match": f'"{removed["version"]}"'})
    assert r.status_code == 409, r.text
    r = nurse.patch(url, json={"status": "waiting"}, headers={"If-Match": '"1"'})
    assert r.status_code == 422, r.text
    assert listed(nurse, center_id=center["id"], status="removed") == [entry["id"]]
    assert listed(nurse, center_id=center["id"], status="waiting") == [other["id"]]


def test_what_is_refused(nurse: httpx.Client) -> None:
    center = make_center(nurse)
    patient = make_patient(nurse)

    def refused(overrides: dict[str, Any], text: str) -> None:
        r = nurse.post(WAITLIST, json={**entry_body(center["id"], patient["id"]), **overrides})
        assert r.status_code == 422, r.text
        assert text in r.text, r.text

    refused({"earliest": "2027-03-01", "latest": "2027-02-01"}, "earliest")
    refused({"center_id": str(uuid.uuid4())}, "center_id")
    refused({"patient_id": str(uuid.uuid4())}, "patient_id")
    refused({"course_id": str(uuid.uuid4())}, "course_id")
    refused({"duration_minutes": 10}, "duration_minutes")
    refused({"duration_minutes": 721}, "duration_minutes")
    refused({"priority": 0}, "priority")
    refused({"priority": 6}, "priority")
    refused({"chair_kind": "sofa"}, "chair_kind")
    refused({"note": "x" * 501}, "note")
    refused({"status": "booked"}, "status")  # not a field one sends

    # One live entry per course: a second is 409; once removed, the course may wait again.
    r = order(nurse, center["id"])
    assert r.status_code == 201, r.text
    course = r.json()
    refused({"course_id": course["id"]}, "another patient")
    first = add(nurse, center["id"], patient_id=course["patient_id"], course_id=course["id"])
    assert first["course_id"] == course["id"]
    body = entry_body(center["id"], course["patient_id"], course_id=course["id"], priority=1)
    r = nurse.post(WAITLIST, json=body)
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem")
    r = nurse.patch(
        f"{WAITLIST}/{first['id']}",
        json={"status": "removed"},
        headers={"If-Match": f'"{first["version"]}"'},
    )
    assert r.status_code == 200, r.text
    assert nurse.post(WAITLIST, json=body).status_code == 201


def test_an_opening_fits_entries_in_rank_order(nurse: httpx.Client, billing: httpx.Client) -> None:
    center = make_center(nurse)
    elsewhere = make_center(nurse)
    # Fitting a chair opening on 2027-02-10 for 240 minutes, in the order it would offer them:
    urgent = add(nurse, center["id"], priority=1, latest="2027-02-28")
    due_soon = add(nurse, center["id"], priority=2, latest="2027-02-12")
    due_later = add(nurse, center["id"], priority=2, latest="2027-02-20")
    same_deadline = add(nurse, center["id"], priority=2, latest="2027-02-20")  # waited less
    exact = add(nurse, center["id"], priority=5, duration_minutes=240, earliest="2027-02-10")
    # ...and what does not fit it:
    add(nurse, center["id"], priority=1, earliest="2027-02-14")  # not yet
    add(nurse, center["id"], priority=1, latest="2027-02-09")  # too late
    add(nurse, center["id"], priority=1, duration_minutes=255)  # too long
    add(nurse, center["id"], priority=1, chair_kind="bed")  # another kind
    add(nurse, center["id"], priority=1, chair_kind="isolation")
    add(nurse, elsewhere["id"], priority=1)  # another center
    gone = add(nurse, center["id"], priority=1)
    r = nurse.patch(
        f"{WAITLIST}/{gone['id']}",
        json={"status": "removed"},
        headers={"If-Match": f'"{gone["version"]}"'},
    )
    assert r.status_code == 200, r.text

    order_ = [urgent, due_soon, due_later, same_deadline, exact]
    assert fitting(nurse, center["id"]) == [e["id"] for e in order_]
    assert fitting(nurse, center["id"], limit=2) == [urgent["id"], due_soon["id"]]
    # A shorter opening drops what needs longer; a bed opening takes bed entries only.
    assert fitting(nurse, center["id"], duration_minutes=180) == [e["id"] for e in order_[:4]]
    bed = fitting(nurse, center["id"], chair_kind="bed")
    assert len(bed) == 1 and bed[0] not in {e["id"] for e in order_}
    # On the 13th the earlier deadline has passed; on a day nobody waits for, nothing fits.
    assert fitting(nurse, center["id"], date="2027-02-13") == [
        urgent["id"],
        due_later["id"],
        same_deadline["id"],
        exact["id"],
    ]
    assert fitting(nurse, center["id"], date="2027-06-01") == []

    r = nurse.get(
        f"{WAITLIST}/fits",
        params={
            "center_id": str(uuid.uuid4()),
            "date": "2027-02-10",
            "start": "09:00",
            "duration_minutes": 60,
        },
    )
    assert r.status_code == 422, r.text
    r = nurse.get(
        f"{WAITLIST}/fits",
        params={"center_id": center["id"], "date": "2027-02-10", "start": "25:00"},
    )
    assert r.status_code == 422, r.text
    r = billing.get(
        f"{WAITLIST}/fits",
        params={
            "center_id": center["id"],
            "date": "2027-02-10",
            "start": "09:00",
            "duration_minutes": 60,
        },
    )
    assert r.status_code == 403
