"""Drug logistics (issue 15): stock by lot per center, first expiry first out, room
temperature, quarantine and recall, the vials a visit used, and the pharmacy role."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

import httpx

from pharmacy import rules
from tests.support.factories import (
    MONDAY,
    book,
    gamunex,
    make_center,
    make_chair,
    make_patient,
    order_maintenance,
    receive_lot,
    weekday_center,
)
from tests.support.servers import at

LOTS = "/api/v1/inventory/lots"
START = datetime.fromisoformat(f"{MONDAY.isoformat()}T09:00:00-05:00")
CHAIRSIDE = START - timedelta(minutes=30)  # when the nurse checks in, starts, completes


def product(api: httpx.Client, hcpcs: str) -> dict[str, Any]:
    items = api.get("/api/v1/products", params={"limit": 500}).json()["items"]
    found: dict[str, Any] = next(p for p in items if p["hcpcs_code"] == hcpcs)
    return found


def lots_of(api: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    r = api.get(LOTS, params={"limit": 500, **params})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def patch(
    api: httpx.Client, lot: dict[str, Any], body: dict[str, Any], **kw: Any
) -> httpx.Response:
    return api.patch(
        f"{LOTS}/{lot['id']}", json=body, headers={"If-Match": f'"{lot["version"]}"', **kw}
    )


def started_visit(nurse: httpx.Client, chair_id: str, start: datetime = START) -> dict[str, Any]:
    """A new patient's visit (not a course session) at the chair, checked in and started."""
    patient = make_patient(nurse)
    r = book(nurse, patient["id"], chair_id, start.isoformat())
    assert r.status_code == 201, r.text
    appt: dict[str, Any] = r.json()
    for action in ("check-in", "start"):
        r = nurse.post(f"/api/v1/appointments/{appt['id']}/{action}", headers=at(CHAIRSIDE))
        assert r.status_code == 200, r.text
    return appt


def complete(nurse: httpx.Client, appt: dict[str, Any], **body: Any) -> httpx.Response:
    return nurse.post(
        f"/api/v1/appointments/{appt['id']}/complete", headers=at(CHAIRSIDE), json=body
    )


# --- the catalog -----------------------------------------------------------------------------


def test_products_carry_their_storage_and_lead_times(admin: httpx.Client) -> None:
    gamunex = product(admin, "J1561")
    assert gamunex["refrigerated_shelf_months"] == 36
    assert gamunex["room_temperature_months"] == 6
    assert gamunex["preparation_minutes"] == 30
    r = admin.patch(
        f"/api/v1/products/{gamunex['id']}",
        json={"order_lead_days": 3},
        headers={"If-Match": f'"{gamunex["version"]}"'},
    )
    assert r.status_code == 200, r.text
    assert r.json()["order_lead_days"] == 3 and r.json()["room_temperature_months"] == 6
    cleared = admin.patch(
        f"/api/v1/products/{gamunex['id']}",
        json={"order_lead_days": None},
        headers={"If-Match": r.headers["ETag"]},
    )
    assert cleared.status_code == 200 and cleared.json()["order_lead_days"] is None


# --- receiving and listing --------------------------------------------------------------------


def test_lots_list_first_expiry_first_out(admin: httpx.Client) -> None:
    center = make_center(admin)
    ig = gamunex(admin)
    late = receive_lot(admin, center["id"], ig, expires_on="2029-01-31", location="fridge 2")
    soon = receive_lot(admin, center["id"], ig, expires_on="2027-02-28", vial_size_g=5)
    middle = receive_lot(admin, center["id"], ig, expires_on="2028-03-31", vials=4)
    assert late["vials_on_hand"] == late["vials_received"] == 10 and late["location"] == "fridge 2"
    assert soon["status"] == "available" and soon["storage"] == "refrigerated"
    listed = lots_of(admin, center_id=center["id"])
    assert [lot["id"] for lot in listed] == [soon["id"], middle["id"], late["id"]]
    # The list's order is the rule's.
    as_facts = [
        rules.LotFacts(lot["lot_number"], date.fromisoformat(lot["expires_on"]), lot["status"], 1)
        for lot in listed
    ]
    assert [f.lot_number for f in rules.fefo(reversed(as_facts))] == [
        lot["lot_number"] for lot in listed
    ]
    # Usable on a day after the first one expired: the two others, in the same order.
    usable = lots_of(admin, center_id=center["id"], usable_on="2027-03-01")
    assert [lot["id"] for lot in usable] == [middle["id"], late["id"]]
    one = admin.get(LOTS, params={"center_id": center["id"], "limit": 1}).json()
    assert [lot["id"] for lot in one["items"]] == [soon["id"]] and one["next_cursor"]
    got = admin.get(f"{LOTS}/{soon['id']}")
    assert got.status_code == 200 and got.headers["ETag"] == f'"{soon["version"]}"'


def test_a_lot_takes_only_a_vial_size_the_product_comes_in(admin: httpx.Client) -> None:
    center = make_center(admin)
    body = {
        "center_id": center["id"],
        "product_id": gamunex(admin),  # 1, 2.5, 5, 10, 20 and 40 g
        "lot_number": "A1",
        "vial_size_g": 7.5,
        "vials": 5,
        "expires_on": "2028-01-31",
    }
    r = admin.post(LOTS, json=body)
    assert r.status_code == 422 and "vial_size_g" in r.json()["detail"]
    assert admin.post(LOTS, json={**body, "product_id": str(uuid.uuid4())}).status_code == 422
    assert admin.post(LOTS, json={**body, "center_id": str(uuid.uuid4())}).status_code == 422
    expired = admin.post(LOTS, json={**body, "vial_size_g": 5, "expires_on": "2020-01-31"})
    assert expired.status_code == 422
    assert admin.post(LOTS, json={**body, "vial_size_g": 5}).status_code == 201
    again = admin.post(LOTS, json={**body, "vial_size_g": 5})
    assert again.status_code == 409  # the same lot and size at the same center
    assert lots_of(admin, center_id=center["id"])[0]["vial_size_g"] == 5


# --- room temperature -------------------------------------------------------------------------


def test_room_temperature_shortens_the_expiry_and_there_is_no_way_back(
    admin: httpx.Client,
) -> None:
    center = make_center(admin)
    ig = gamunex(admin)  # six months at room temperature
    long_dated = receive_lot(admin, center["id"], ig, expires_on="2028-06-30")
    short_dated = receive_lot(admin, center["id"], ig, expires_on="2027-03-31")
    moved = patch(admin, long_dated, {"storage": "room_temperature"}, **at(CHAIRSIDE))
    assert moved.status_code == 200, moved.text
    lot = moved.json()
    assert lot["expires_on"] == "2027-07-11"  # 11 January 2027 + 6 months
    assert lot["storage"] == "room_temperature" and lot["room_temperature_since"] is not None
    assert moved.headers["ETag"] == f'"{lot["version"]}"' and lot["version"] > 1
    # Never lengthened: the label's earlier expiry stays.
    kept = patch(admin, short_dated, {"storage": "room_temperature"}, **at(CHAIRSIDE)).json()
    assert kept["expires_on"] == "2027-03-31"
    # Never back to the fridge, and a stale version is refused.
    back = patch(admin, lot, {"storage": "refrigerated"})
    assert back.status_code == 409
    assert patch(admin, long_dated, {"location": "shelf"}).status_code == 412
    assert admin.patch(f"{LOTS}/{lot['id']}", json={"location": "shelf"}).status_code == 428
    assert admin.get(f"{LOTS}/{lot['id']}").json()["storage"] == "room_temperature"
    # Received at room temperature: the allowance runs from the day it came.
    warm = receive_lot(admin, center["id"], ig, storage="room_temperature")
    assert warm["room_temperature_since"] is not None
    assert date.fromisoformat(warm["expires_on"]) < date(2028, 6, 30)


def test_a_product_that_must_stay_refrigerated_cannot_be_moved(admin: httpx.Client) -> None:
    body = {
        "name": f"Cold IG {uuid.uuid4().hex[:6]}",
        "hcpcs_code": "J1599",
        "billing_unit_mg": 500,
        "concentration_pct": 10,
        "titration": {
            "initial_rate_mg_per_kg_min": 1,
            "step_mg_per_kg_min": 1,
            "step_interval_minutes": 30,
        },
        "max_rate_mg_per_kg_min": 6,
        "premed_minutes": 30,
        "observation_minutes": 30,
        "vial_sizes_g": [5, 10],
        "refrigerated_shelf_months": 24,
    }
    made = admin.post("/api/v1/products", json=body)
    assert made.status_code == 201, made.text
    cold = made.json()
    assert cold["room_temperature_months"] is None and cold["preparation_minutes"] == 30
    center = make_center(admin)
    lot = receive_lot(admin, center["id"], cold["id"])
    r = patch(admin, lot, {"storage": "room_temperature"})
    assert r.status_code == 422
    assert admin.get(f"{LOTS}/{lot['id']}").json()["storage"] == "refrigerated"
    warm = admin.post(
        LOTS,
        json={
            "center_id": center["id"],
            "product_id": cold["id"],
            "lot_number": "W1",
            "vial_size_g": 5,
            "vials": 2,
            "expires_on": "2028-01-31",
            "storage": "room_temperature",
        },
    )
    assert warm.status_code == 422


# --- quarantine and recall --------------------------------------------------------------------


def test_quarantined_and_recalled_lots_are_not_usable(admin: httpx.Client) -> None:
    center = make_center(admin)
    lot = receive_lot(admin, center["id"], gamunex(admin))
    usable = {"center_id": center["id"], "usable_on": "2027-01-11"}
    assert [x["id"] for x in lots_of(admin, **usable)] == [lot["id"]]
    held = patch(admin, lot, {"status": "quarantined"}).json()
    assert held["status"] == "quarantined" and lots_of(admin, **usable) == []
    assert [x["id"] for x in lots_of(admin, center_id=center["id"], status="quarantined")] == [
        lot["id"]
    ]
    released = patch(admin, held, {"status": "available"}).json()
    assert [x["id"] for x in lots_of(admin, **usable)] == [lot["id"]]
    recalled = patch(admin, released, {"status": "recalled"}).json()
    assert recalled["status"] == "recalled" and lots_of(admin, **usable) == []
    assert patch(admin, recalled, {"status": "available"}).status_code == 409  # final
    assert patch(admin, recalled, {"status": "quarantined"}).status_code == 409


# --- the vials a visit used --------------------------------------------------------------------


def test_completing_a_visit_draws_its_vials_and_a_recall_finds_every_patient(
    admin: httpx.Client, nurse: httpx.Client
) -> None:
    center = make_center(nurse)
    chairs = [make_chair(nurse, center["id"])["id"] for _ in range(2)]
    ig = gamunex(admin)
    lot = receive_lot(admin, center["id"], ig, vials=10)
    other = receive_lot(admin, center["id"], ig, vial_size_g=5, vials=4)
    first = started_visit(nurse, chairs[0])
    second = started_visit(nurse, chairs[1])
    uses = [{"lot_id": lot["id"], "vials": 7}, {"lot_id": other["id"], "vials": 1}]
    r = complete(nurse, first, dose_given_g=75, vials_used=uses)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "completed"
    r = complete(nurse, second, vials_used=[{"lot_id": lot["id"], "vials": 2}])
    assert r.status_code == 200, r.text
    assert nurse.get(f"{LOTS}/{lot['id']}").json()["vials_on_hand"] == 1
    assert nurse.get(f"{LOTS}/{other['id']}").json()["vials_on_hand"] == 3
    given = nurse.get(f"{LOTS}/{lot['id']}/administrations")
    assert given.status_code == 200, given.text
    items = given.json()["items"]
    assert {(a["patient_id"], a["appointment_id"], a["vials"]) for a in items} == {
        (first["patient_id"], first["id"], 7),
        (second["patient_id"], second["id"], 2),
    }
    assert all(datetime.fromisoformat(a["start"]) == START for a in items)
    # A recalled lot still tells whom it reached.
    recalled = patch(admin, nurse.get(f"{LOTS}/{lot['id']}").json(), {"status": "recalled"})
    assert recalled.status_code == 200
    assert len(admin.get(f"{LOTS}/{lot['id']}/administrations").json()["items"]) == 2


def test_over_drawing_or_a_lot_that_is_not_usable_here_stores_nothing(
    admin: httpx.Client, nurse: httpx.Client
) -> None:
    center = make_center(nurse)
    chair = make_chair(nurse, center["id"])["id"]
    ig = gamunex(admin)
    lot = receive_lot(admin, center["id"], ig, vials=3)
    elsewhere = receive_lot(admin, make_center(admin)["id"], ig)
    held = receive_lot(admin, center["id"], ig, vial_size_g=20)
    patch(admin, held, {"status": "quarantined"})
    visit = started_visit(nurse, chair)
    refused = [
        [{"lot_id": lot["id"], "vials": 4}],  # three on hand
        [{"lot_id": lot["id"], "vials": 2}, {"lot_id": lot["id"], "vials": 2}],  # four in all
        [{"lot_id": lot["id"], "vials": 1}, {"lot_id": elsewhere["id"], "vials": 1}],
        [{"lot_id": held["id"], "vials": 1}],
    ]
    for uses in refused:
        r = complete(nurse, visit, dose_given_g=30, vials_used=uses)
        assert r.status_code == 409, r.text
    unknown = complete(nurse, visit, vials_used=[{"lot_id": str(uuid.uuid4()), "vials": 1}])
    assert unknown.status_code == 422
    assert complete(nurse, visit, vials_used=[{"lot_id": lot["id"], "vials": 0}]).status_code == 422
    # Nothing was stored: the visit is still under way, no vial left the lot, no record.
    assert nurse.get(f"/api/v1/appointments/{visit['id']}").json()["status"] == "in_progress"
    assert nurse.get(f"{LOTS}/{lot['id']}").json()["vials_on_hand"] == 3
    assert nurse.get(f"{LOTS}/{lot['id']}/administrations").json()["items"] == []
    assert nurse.get(f"/api/v1/appointments/{visit['id']}/record").status_code == 404
    # Vials are recorded on completion only.
    patient = make_patient(nurse)
    booked = book(nurse, patient["id"], chair, (START + timedelta(hours=4)).isoformat()).json()
    early = nurse.post(
        f"/api/v1/appointments/{booked['id']}/check-in",
        headers=at(CHAIRSIDE),
        json={"vials_used": [{"lot_id": lot["id"], "vials": 1}]},
    )
    assert early.status_code == 422
    assert nurse.get(f"/api/v1/appointments/{booked['id']}").json()["status"] == "booked"
    assert complete(nurse, visit, vials_used=[{"lot_id": lot["id"], "vials": 3}]).status_code == 200
    assert nurse.get(f"{LOTS}/{lot['id']}").json()["vials_on_hand"] == 0


def test_a_course_session_draws_only_its_own_product(
    admin: httpx.Client, nurse: httpx.Client
) -> None:
    center, _ = weekday_center(nurse)
    course = order_maintenance(nurse, center["id"])  # Gamunex-C
    first = nurse.post(
        f"/api/v1/courses/{course['id']}/book", json={"through": MONDAY.isoformat()}
    ).json()["booked"][0]
    for action in ("check-in", "start"):
        r = nurse.post(f"/api/v1/appointments/{first['id']}/{action}", headers=at(CHAIRSIDE))
        assert r.status_code == 200, r.text
    privigen = receive_lot(admin, center["id"], product(admin, "J1459")["id"])
    own = receive_lot(admin, center["id"], gamunex(admin), vials=10)
    wrong = complete(nurse, first, vials_used=[{"lot_id": privigen["id"], "vials": 7}])
    assert wrong.status_code == 409
    right = complete(nurse, first, dose_given_g=70, vials_used=[{"lot_id": own["id"], "vials": 7}])
    assert right.status_code == 200, right.text
    assert nurse.get(f"{LOTS}/{own['id']}").json()["vials_on_hand"] == 3


# --- who may do what --------------------------------------------------------------------------


def test_the_pharmacy_keeps_the_stock_and_sees_no_billing(
    pharmacy: httpx.Client, nurse: httpx.Client
) -> None:
    me = pharmacy.get("/api/v1/auth/me").json()
    assert me["role"] == "pharmacy"
    center = nurse.get("/api/v1/centers", params={"limit": 1}).json()["items"][0]
    lot = receive_lot(pharmacy, center["id"], gamunex(pharmacy))
    assert pharmacy.get(LOTS, params={"center_id": center["id"]}).status_code == 200
    assert patch(pharmacy, lot, {"location": "fridge 1"}).status_code == 200
    assert pharmacy.get(f"{LOTS}/{lot['id']}/administrations").status_code == 200
    assert pharmacy.get("/api/v1/products").status_code == 200
    for billing_route in ("/api/v1/alerts", "/api/v1/authorizations", "/api/v1/payers"):
        assert pharmacy.get(billing_route).status_code == 403, billing_route
    assert pharmacy.get("/api/v1/patients").status_code == 403
    # Nurses read lots and record what they used, but do not receive or change stock.
    assert nurse.get(f"{LOTS}/{lot['id']}").status_code == 200
    body = {k: lot[k] for k in ("center_id", "product_id", "vial_size_g", "expires_on")}
    assert nurse.post(LOTS, json={**body, "lot_number": "N1", "vials": 1}).status_code == 403
    assert patch(nurse, lot, {"status": "quarantined"}).status_code == 403
