"""Stock on order (issue 15) through the real server: placing, listing, cancelling and receiving
drug orders, and what is on order counting in the drug forecast, the reorder list and the
`drug_check` job's shortfall alerts from the day it is expected."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tests.support.factories import (
    MONDAY,
    gamunex,
    local_day,
    maintenance_course,
    receive_lot,
    sessions_of,
    weekday_center,
)
from tests.support.servers import at

ORDERS = "/api/v1/inventory/orders"
FROM, TO = date(2027, 1, 1), date(2027, 4, 30)
CENTER_ZONE = ZoneInfo("America/New_York")  # the factories' centers
# A week before the first sessions (MONDAY, 2027-01-11), at the centers (New York).
NOW = datetime.fromisoformat(f"{(MONDAY - timedelta(days=7)).isoformat()}T12:00:00-05:00")


def place(api: httpx.Client, center_id: str, product_id: str, **overrides: Any) -> dict[str, Any]:
    """Six 10 g vials expected on the Friday before MONDAY."""
    r = api.post(ORDERS, json=order_body(center_id, product_id, **overrides))
    assert r.status_code == 201, r.text
    order: dict[str, Any] = r.json()
    assert r.headers["Location"] == f"{ORDERS}/{order['id']}"
    assert r.headers["ETag"] == f'"{order["version"]}"'
    return order


def order_body(center_id: str, product_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "center_id": center_id,
        "product_id": product_id,
        "vial_size_g": 10,
        "vials": 6,
        "expected_on": (MONDAY - timedelta(days=3)).isoformat(),
        **overrides,
    }


def receipt(**overrides: Any) -> dict[str, Any]:
    return {
        "lot_number": f"R{uuid.uuid4().hex[:8].upper()}",
        "expires_on": "2028-06-30",
        **overrides,
    }


def listed(api: httpx.Client, **params: Any) -> list[str]:
    r = api.get(ORDERS, params=params)
    assert r.status_code == 200, r.text
    return [o["id"] for o in r.json()["items"]]


def test_an_order_is_placed_listed_and_received_once_as_a_lot(
    nurse: httpx.Client, pharmacy: httpx.Client, billing: httpx.Client
) -> None:
    center, _ = weekday_center(nurse)
    product_id = gamunex(nurse)
    order = place(pharmacy, center["id"], product_id, note="PO 4711")
    assert (order["status"], order["received_lot_id"], order["note"]) == (
        "ordered",
        None,
        "PO 4711",
    )
    assert (order["vial_size_g"], order["vials"], order["expected_on"]) == (
        10,
        6,
        (MONDAY - timedelta(days=3)).isoformat(),
    )
    later = place(pharmacy, center["id"], product_id, expected_on="2027-02-01", vials=2)

    # Nurses read orders, soonest expected first; they may not place or receive one.
    assert listed(nurse, center_id=center["id"]) == [order["id"], later["id"]]
    r = nurse.get(f"{ORDERS}/{order['id']}")
    assert r.status_code == 200 and r.json() == order
    assert nurse.post(ORDERS, json=order_body(center["id"], product_id)).status_code == 403
    assert nurse.post(f"{ORDERS}/{order['id']}/receive", json=receipt()).status_code == 403
    assert nurse.post(f"{ORDERS}/{order['id']}/cancel").status_code == 403
    assert billing.get(ORDERS).status_code == 403
    assert pharmacy.get(f"{ORDERS}/{uuid.uuid4()}").status_code == 404

    # It arrives: a lot of the order's vials, at its center, and the order names it.
    r = pharmacy.post(
        f"{ORDERS}/{order['id']}/receive", json=receipt(location="Fridge 2", lot_number="A-17")
    )
    assert r.status_code == 200, r.text
    received = r.json()
    lot = received["lot"]
    assert (received["status"], received["received_lot_id"]) == ("received", lot["id"])
    assert received["version"] > order["version"]
    assert (lot["center_id"], lot["product_id"], lot["lot_number"]) == (
        center["id"],
        product_id,
        "A-17",
    )
    assert (lot["vial_size_g"], lot["vials_received"], lot["vials_on_hand"]) == (10, 6, 6)
    assert (lot["expires_on"], lot["location"], lot["status"]) == (
        "2028-06-30",
        "Fridge 2",
        "available",
    )
    r = nurse.get("/api/v1/inventory/lots", params={"center_id": center["id"]})
    assert [x["id"] for x in r.json()["items"]] == [lot["id"]]

    # Received is final: a second receipt and a cancel are 409, and no second lot appears.
    r = pharmacy.post(f"{ORDERS}/{order['id']}/receive", json=receipt())
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem")
    assert pharmacy.post(f"{ORDERS}/{order['id']}/cancel").status_code == 409
    r = nurse.get("/api/v1/inventory/lots", params={"center_id": center["id"]})
    assert len(r.json()["items"]) == 1

    # Cancelled is final too.
    r = pharmacy.post(f"{ORDERS}/{later['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    assert pharmacy.post(f"{ORDERS}/{later['id']}/cancel").status_code == 409
    assert pharmacy.post(f"{ORDERS}/{later['id']}/receive", json=receipt()).status_code == 409
    assert listed(nurse, center_id=center["id"], status="received") == [order["id"]]
    assert listed(nurse, center_id=center["id"], status="cancelled") == [later["id"]]
    assert listed(nurse, center_id=center["id"], status="ordered") == []
    assert listed(nurse, center_id=center["id"], product_id=str(uuid.uuid4())) == []

    # A short delivery: the lot holds what came, not what was ordered.
    short = place(pharmacy, center["id"], product_id, vials=8)
    r = pharmacy.post(f"{ORDERS}/{short['id']}/receive", json=receipt(vials=5))
    assert r.status_code == 200 and r.json()["lot"]["vials_received"] == 5, r.text


def test_an_order_is_refused_what_a_lot_would_be(
    nurse: httpx.Client, pharmacy: httpx.Client
) -> None:
    center, _ = weekday_center(nurse)
    product_id = gamunex(nurse)  # 1, 2.5, 5, 10, 20 and 40 g vials

    def refused(r: httpx.Response, field: str) -> None:
        assert r.status_code == 422, r.text
        body = r.json()
        named = [e["loc"][-1] for e in body.get("errors", [])] + [body["detail"].split(":")[0]]
        assert field in named, body

    for overrides, field in (
        ({"vial_size_g": 7}, "vial_size_g"),  # not one of the product's sizes
        ({"vials": 0}, "vials"),
        ({"vials": 2.5}, "vials"),
        ({"expected_on": "2020-01-01"}, "expected_on"),  # passed at the center
        ({"product_id": str(uuid.uuid4())}, "product_id"),
        ({"center_id": str(uuid.uuid4())}, "center_id"),
        ({"colour": "red"}, "colour"),
    ):
        body = {**order_body(center["id"], product_id), **overrides}
        refused(pharmacy.post(ORDERS, json=body), field)
    assert listed(nurse, center_id=center["id"]) == []

    # A receipt the lot refuses (expired, or a size the product has not) leaves it ordered.
    order = place(pharmacy, center["id"], product_id)
    for body, field in (
        (receipt(expires_on="2020-01-01"), "expires_on"),
        (receipt(vial_size_g=7), "vial_size_g"),
        (receipt(vials=0), "vials"),
    ):
        refused(pharmacy.post(f"{ORDERS}/{order['id']}/receive", json=body), field)
    assert nurse.get(f"{ORDERS}/{order['id']}").json() == order
    # The same lot number as one already at the center: 409, and still ordered.
    lot = receive_lot(pharmacy, center["id"], product_id)
    r = pharmacy.post(f"{ORDERS}/{order['id']}/receive", json=receipt(lot_number=lot["lot_number"]))
    assert r.status_code == 409, r.text
    assert nurse.get(f"{ORDERS}/{order['id']}").json()["status"] == "ordered"


def forecast(api: httpx.Client, center_id: str) -> dict[str, Any]:
    r = api.get(
        f"/api/v1/centers/{center_id}/drug-demand",
        params={"from": FROM.isoformat(), "to": TO.isoformat()},
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def reorder(api: httpx.Client, center_id: str) -> list[dict[str, str]]:
    r = api.get(
        f"/api/v1/centers/{center_id}/reorder.csv",
        params={"from": FROM.isoformat(), "to": TO.isoformat()},
    )
    assert r.status_code == 200, r.text
    return list(csv.DictReader(io.StringIO(r.text)))


def forty(vials: list[dict[str, Any]]) -> int:
    return sum(v["count"] for v in vials if v["vial_size_g"] == 40)


def test_stock_on_order_counts_from_its_day_in_the_forecast_and_the_reorder_list(
    nurse: httpx.Client, pharmacy: httpx.Client
) -> None:
    center, _ = weekday_center(nurse)
    product_id = gamunex(nurse)
    course = maintenance_course(nurse, center["id"], cycles=3)  # 70 g: 40 + 20 + 10 g, x3
    days = sorted(local_day(a["start"]) for a in sessions_of(nurse, course["patient_id"]))
    first, second, third = days
    receive_lot(pharmacy, center["id"], product_id, vial_size_g=40, vials=1)
    for size in (20, 10):
        receive_lot(pharmacy, center["id"], product_id, vial_size_g=size, vials=3)
    body = forecast(nurse, center["id"])
    assert [forty(x["shortfall_vials"]) for x in body["items"]] == [0, 1, 1]
    assert all(x["on_order_vials"] == [] for x in body["items"])
    [row] = reorder(nurse, center["id"])
    assert (row["first_short_on"], row["vials_short"]) == (second.isoformat(), "2 x 40 g")

    # One 40 g vial expected after the second session: it stays short, the third is covered.
    late = place(
        pharmacy,
        center["id"],
        product_id,
        vial_size_g=40,
        vials=1,
        expected_on=(second + timedelta(days=1)).isoformat(),
    )
    body = forecast(nurse, center["id"])
    assert [forty(x["shortfall_vials"]) for x in body["items"]] == [0, 1, 0]
    [row] = reorder(nurse, center["id"])
    assert (row["first_short_on"], row["vials_short"]) == (second.isoformat(), "1 x 40 g")

    # Another expected three days before the second session: nothing is short, nothing to
    # order. The one expected on a session's day shows on that day's line, usable that day.
    place(
        pharmacy,
        center["id"],
        product_id,
        vial_size_g=40,
        vials=1,
        expected_on=(second - timedelta(days=3)).isoformat(),
    )
    r = pharmacy.post(f"{ORDERS}/{late['id']}/cancel")
    assert r.status_code == 200, r.text
    place(
        pharmacy, center["id"], product_id, vial_size_g=40, vials=1, expected_on=third.isoformat()
    )
    body = forecast(nurse, center["id"])
    lines = body["items"]
    assert [x["date"] for x in lines] == [d.isoformat() for d in (first, second, third)]
    assert [x["shortfall_vials"] for x in lines] == [[], [], []] and body["short"] == []
    assert [x["on_order_vials"] for x in lines] == [[], [], [{"vial_size_g": 40, "count": 1}]]
    assert [forty(x["on_hand_vials"]) for x in lines] == [1, 1, 1]
    assert reorder(nurse, center["id"]) == []

    # Two days before the second session the early order is a day late and not received: it
    # no longer counts, so the second session shows short again and the pharmacy chases it.
    late_day = datetime.combine(second - timedelta(days=2), time(12), tzinfo=CENTER_ZONE)
    r = nurse.get(
        f"/api/v1/centers/{center['id']}/drug-demand",
        params={"from": FROM.isoformat(), "to": TO.isoformat()},
        headers=at(late_day),
    )
    assert r.status_code == 200, r.text
    assert [forty(x["shortfall_vials"]) for x in r.json()["items"]] == [0, 1, 0]


def run_check(admin: httpx.Client) -> dict[str, int]:
    r = admin.post("/api/v1/jobs/drug_check/run", headers=at(NOW))
    assert r.status_code == 200 and r.json()["outcome"] == "succeeded", r.text
    counts: dict[str, int] = r.json()["counts"]
    assert counts["failed"] == 0
    return counts


def live_alerts(pharmacy: httpx.Client, patient_id: str) -> list[dict[str, Any]]:
    r = pharmacy.get("/api/v1/pharmacy/alerts", params={"patient_id": patient_id, "status": "live"})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def test_the_drug_check_resolves_a_shortfall_once_an_order_is_expected_in_time(
    admin: httpx.Client, nurse: httpx.Client, pharmacy: httpx.Client
) -> None:
    center, _ = weekday_center(nurse)
    product_id = gamunex(nurse)
    course = maintenance_course(nurse, center["id"], cycles=1)  # 70 g on MONDAY, no stock
    run_check(admin)
    [alert] = live_alerts(pharmacy, course["patient_id"])
    assert "short 1 x 40 g + 1 x 20 g + 1 x 10 g" in alert["detail"]

    # The dose on order for the day after the session: still short, the alert as it was.
    for size in (40, 20, 10):
        place(
            pharmacy,
            center["id"],
            product_id,
            vial_size_g=size,
            vials=1,
            expected_on=(MONDAY + timedelta(days=1)).isoformat(),
        )
    run_check(admin)
    [same] = live_alerts(pharmacy, course["patient_id"])
    assert (same["id"], same["version"]) == (alert["id"], alert["version"])

    # Expected two days before it, the session is covered: the next run resolves the alert.
    in_time = [
        place(
            pharmacy,
            center["id"],
            product_id,
            vial_size_g=size,
            vials=1,
            expected_on=(MONDAY - timedelta(days=2)).isoformat(),
        )
        for size in (40, 20, 10)
    ]
    counts = run_check(admin)
    assert counts["resolved"] >= 1
    assert live_alerts(pharmacy, course["patient_id"]) == []
    r = nurse.get(f"/api/v1/alerts/{alert['id']}")
    assert (r.json()["status"], r.json()["resolution"]) == ("resolved", "cleared")

    # One of them cancelled: short again, a new alert on the next run.
    r = pharmacy.post(f"{ORDERS}/{in_time[0]['id']}/cancel")
    assert r.status_code == 200, r.text
    run_check(admin)
    [again] = live_alerts(pharmacy, course["patient_id"])
    assert again["id"] != alert["id"] and "short 1 x 40 g of the" in again["detail"]
