"""The pharmacy's day through the API, on both databases: the queue of doses in start order
with their prepare-by times and the vials to pull (first expiry first out, never the same
vial twice), and the steps each dose takes, in order, by the roles that take them."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import httpx

from tests.support.factories import (
    MONDAY,
    gamunex,
    maintenance_course,
    make_center,
    make_chair,
    receive_lot,
)
from tests.support.servers import at


def queue(api: httpx.Client, center_id: str) -> list[dict[str, Any]]:
    r = api.get(f"/api/v1/centers/{center_id}/preparation", params={"date": MONDAY.isoformat()})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def step(
    api: httpx.Client, dose: dict[str, Any], verb: str, when: datetime | None = None
) -> httpx.Response:
    headers = at(when) if when is not None else None
    return api.post(
        f"/api/v1/appointments/{dose['appointment_id']}/preparation/{verb}", headers=headers
    )


def test_the_days_doses_in_start_order_with_the_vials_to_pull(
    admin: httpx.Client, nurse: httpx.Client
) -> None:
    center = make_center(nurse)
    for _ in range(2):
        make_chair(nurse, center["id"])
    ig = gamunex(admin)
    soon = receive_lot(admin, center["id"], ig, vials=10, expires_on="2027-06-30")
    later = receive_lot(admin, center["id"], ig, vials=10, expires_on="2028-06-30")
    gone = receive_lot(admin, center["id"], ig, vial_size_g=20, vials=4, expires_on="2027-01-10")
    courses = [maintenance_course(nurse, center["id"], cycles=1) for _ in range(2)]

    doses = queue(nurse, center["id"])
    assert {d["patient_id"] for d in doses} == {c["patient_id"] for c in courses}
    starts = [datetime.fromisoformat(d["start"]) for d in doses]
    assert starts == sorted(starts)
    pulled: Counter[str] = Counter()
    for d in doses:
        assert d["status"] == "planned" and d["dose_g"] == 70
        assert d["mrn"] and "," in d["patient_name"]  # for the bag's label
        # Prepared ahead (the center's default): the product's lead time before the start.
        lead = datetime.fromisoformat(d["start"]) - datetime.fromisoformat(d["prepare_by"])
        assert lead == timedelta(minutes=30)
        assert sum(v["vial_size_g"] * v["count"] for v in d["vials"]) == 70
        assert d["short_g"] == 0
        for v in d["vials"]:
            pulled[v["lot_id"]] += v["count"]
    # Never more of a lot than it has, nothing from the lot expired by the day, and the lot
    # expiring first is used first.
    assert pulled[soon["id"]] <= 10 and pulled[later["id"]] <= 10
    assert gone["id"] not in pulled
    assert doses[0]["vials"] == [{"vial_size_g": 10, "count": 7, "lot_id": soon["id"]}]


def test_a_dose_goes_from_clearance_to_the_chair_in_order_by_the_right_hands(
    admin: httpx.Client, nurse: httpx.Client, pharmacy: httpx.Client, billing: httpx.Client
) -> None:
    center = make_center(nurse)
    make_chair(nurse, center["id"])
    r = admin.patch(
        f"/api/v1/centers/{center['id']}",
        json={"prepare_policy": "on_clearance"},
        headers={"If-Match": f'"{center["version"]}"'},
    )
    assert r.status_code == 200 and r.json()["prepare_policy"] == "on_clearance", r.text
    receive_lot(admin, center["id"], gamunex(admin), vials=10)
    maintenance_course(nurse, center["id"], cycles=1)
    (dose,) = queue(pharmacy, center["id"])
    assert dose["prepare_by"] is None  # on clearance: not before the nurse clears the patient

    refused = step(pharmacy, dose, "prepare")
    assert refused.status_code == 409 and "clear" in refused.json()["detail"]
    assert step(pharmacy, dose, "clear").status_code == 403  # a nurse's step
    # On the day, by the test clock: cleared at 08:10, the drug at the chair at 08:35.
    cleared_when = datetime.fromisoformat(dose["start"]) - timedelta(minutes=50)
    cleared = step(nurse, dose, "clear", cleared_when)
    assert cleared.status_code == 200, cleared.text
    cleared_at = datetime.fromisoformat(cleared.json()["cleared_at"])
    by = datetime.fromisoformat(cleared.json()["prepare_by"])
    assert cleared.json()["status"] == "cleared" and by - cleared_at == timedelta(minutes=30)

    assert step(nurse, dose, "prepare").status_code == 403  # the pharmacy's
    assert step(pharmacy, dose, "dispense").status_code == 409  # not prepared yet
    prepared = step(pharmacy, dose, "prepare", cleared_when + timedelta(minutes=20))
    assert prepared.json()["status"] == "prepared"
    dispensed = step(pharmacy, dose, "dispense", cleared_when + timedelta(minutes=25))
    assert dispensed.status_code == 200 and dispensed.json()["status"] == "dispensed"
    assert dispensed.json()["drug_wait_minutes"] == 25
    assert step(pharmacy, dose, "dispense").status_code == 409  # once
    given = step(nurse, dose, "administer", cleared_when + timedelta(minutes=30))
    assert given.status_code == 200 and given.json()["status"] == "administered"
    (after,) = queue(nurse, center["id"])
    assert after["status"] == "administered" and after["administered_at"] is not None

    assert (
        billing.get(
            f"/api/v1/centers/{center['id']}/preparation", params={"date": MONDAY.isoformat()}
        ).status_code
        == 403
    )
    missing = nurse.post(
        "/api/v1/appointments/00000000-0000-0000-0000-000000000000/preparation/clear"
    )
    assert missing.status_code == 404
