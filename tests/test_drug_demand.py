"""Drug demand and vial plans (issue 15) through the real server: what the booked sessions
draw from a center's lots, where the stock runs short, the reorder list, and one dose's vials."""

from __future__ import annotations

import csv
import io
import uuid
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from typing import Any

import httpx

from tests.support.factories import (
    MONDAY,
    gamunex,
    local_day,
    make_patient,
    order,
    receive_lot,
    weekday_center,
)
from tests.support.servers import Server, at

FROM, TO = date(2027, 1, 1), date(2027, 4, 30)


def demand_url(center_id: str) -> str:
    return f"/api/v1/centers/{center_id}/drug-demand"


def forecast(api: httpx.Client, center_id: str, **params: Any) -> dict[str, Any]:
    query = {"from": FROM.isoformat(), "to": TO.isoformat(), **params}
    r = api.get(demand_url(center_id), params=query)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def course(
    nurse: httpx.Client, center_id: str, product_id: str, weight_kg: float = 70, cycles: int = 3
) -> list[dict[str, Any]]:
    """A maintenance course (1 g/kg every 28 days from MONDAY), booked: its sessions."""
    patient = make_patient(nurse, weight_kg=weight_kg)
    r = order(
        nurse,
        center_id,
        patient_id=patient["id"],
        product_id=product_id,
        diagnosis_code="G61.82",
        induction=None,
        maintenance={
            "dose_g_per_kg": 1,
            "interval_days": 28,
            "window_min_days": 21,
            "window_max_days": 42,
            "cycles": cycles,
        },
    )
    assert r.status_code == 201, r.text
    r = nurse.post(
        f"/api/v1/courses/{r.json()['id']}/book",
        json={"through": (MONDAY + timedelta(weeks=16)).isoformat()},
    )
    assert r.status_code == 200 and len(r.json()["booked"]) == cycles, r.text
    booked: list[dict[str, Any]] = r.json()["booked"]
    return sorted(booked, key=lambda a: str(a["start"]))


def own_product(admin: httpx.Client, **overrides: Any) -> str:
    """An IVIG of 10, 20 and 40 g vials that takes ten days to order."""
    body = {
        "name": f"Demand IG {uuid.uuid4().hex[:6]}",
        "hcpcs_code": "J1599",
        "billing_unit_mg": 500,
        "concentration_pct": 10,
        "titration": {
            "initial_rate_mg_per_kg_min": 1,
            "step_mg_per_kg_min": 1,
            "step_interval_minutes": 30,
        },
        "max_rate_mg_per_kg_min": 8,
        "premed_minutes": 30,
        "observation_minutes": 30,
        "vial_sizes_g": [10, 20, 40],
        "order_lead_days": 10,
        **overrides,
    }
    r = admin.post("/api/v1/products", json=body)
    assert r.status_code == 201, r.text
    product_id: str = r.json()["id"]
    return product_id


def counts(vials: list[dict[str, Any]]) -> dict[float, int]:
    return {v["vial_size_g"]: v["count"] for v in vials}


def test_demand_is_the_booked_doses_day_by_day_and_week_by_week(nurse: httpx.Client) -> None:
    center, _ = weekday_center(nurse)
    product_id = gamunex(nurse)
    booked = course(nurse, center["id"], product_id) + course(
        nurse, center["id"], product_id, weight_kg=82.5
    )
    cancelled = booked.pop()  # a cancelled session draws nothing
    r = nurse.post(f"/api/v1/appointments/{cancelled['id']}/cancel")
    assert r.status_code == 200, r.text
    expected: dict[str, tuple[int, float]] = {}
    for a in booked:
        day = local_day(a["start"]).isoformat()
        sessions, grams = expected.get(day, (0, 0.0))
        expected[day] = (sessions + 1, grams + a["dose_g"])
    assert len(expected) == 3  # both courses on the same three Mondays

    days = forecast(nurse, center["id"])
    assert (days["from"], days["to"], days["group"]) == (FROM.isoformat(), TO.isoformat(), "day")
    assert {x["date"]: (x["sessions"], x["grams"]) for x in days["items"]} == expected
    assert {x["product_id"] for x in days["items"]} == {product_id}
    # Gamunex-C comes in 1, 2.5, 5, 10, 20 and 40 g (its label): 70 g is 40 + 20 + 10 g,
    # 82.5 g is 40 + 40 + 2.5 g. No lots here: everything is short.
    first = days["items"][0]
    assert counts(first["vials"]) == {40: 3, 20: 1, 10: 1, 2.5: 1}
    assert first["on_hand_vials"] == [] and first["shortfall_vials"] == first["vials"]
    assert [s["first_short_on"] for s in days["short"]] == [first["date"]]

    weeks = forecast(nurse, center["id"], group="week")
    by_week: dict[str, Counter[str]] = defaultdict(Counter)
    for x in days["items"]:
        on = date.fromisoformat(x["date"])
        monday = (on - timedelta(days=on.weekday())).isoformat()
        by_week[monday]["sessions"] += x["sessions"]
        by_week[monday]["mg"] += round(x["grams"] * 1000)
    assert {
        x["date"]: {"sessions": x["sessions"], "mg": round(x["grams"] * 1000)}
        for x in weeks["items"]
    } == {w: dict(c) for w, c in by_week.items()}
    assert weeks["short"] == days["short"]

    # Without a range: from today (at the center) to the end of its booking horizon (56 days).
    now = datetime.fromisoformat(f"{(MONDAY - timedelta(days=7)).isoformat()}T12:00:00-05:00")
    r = nurse.get(demand_url(center["id"]), headers=at(now))
    assert r.status_code == 200, r.text
    default = r.json()
    assert (default["from"], default["to"]) == ("2027-01-04", "2027-03-01")
    assert [x["date"] for x in default["items"]] == [
        d for d in sorted(expected) if "2027-01-04" <= d <= "2027-03-01"
    ]


def test_a_lot_stops_counting_after_its_expiry_and_the_shortfall_lands_on_its_day(
    admin: httpx.Client, nurse: httpx.Client
) -> None:
    center, _ = weekday_center(nurse)
    product_id = own_product(admin)
    sessions = course(nurse, center["id"], product_id)  # 70 g: 40 + 20 + 10 g, three times
    first, second, third = (local_day(a["start"]) for a in sessions)
    early = receive_lot(
        admin,
        center["id"],
        product_id,
        vial_size_g=40,
        vials=2,
        expires_on=(first + timedelta(days=7)).isoformat(),
    )
    receive_lot(admin, center["id"], product_id, vial_size_g=40, vials=1)  # mid-2028
    for size in (20, 10):
        receive_lot(admin, center["id"], product_id, vial_size_g=size, vials=10)
    lines = forecast(nurse, center["id"])["items"]
    assert [x["date"] for x in lines] == [d.isoformat() for d in (first, second, third)]
    # The first session draws the early lot first (first expiry first out), which then has
    # one vial left that expires before the second: only the 2028 vial still counts.
    assert [counts(x["on_hand_vials"]).get(40, 0) for x in lines] == [3, 1, 0]
    assert [counts(x["on_hand_vials"]) for x in lines][2] == {20: 8, 10: 8}
    assert [x["shortfall_vials"] for x in lines] == [
        [],
        [],
        [{"vial_size_g": 40, "count": 1}],  # not made up from two 20 g vials
    ]
    body = forecast(nurse, center["id"])
    assert body["short"] == [
        {
            "product_id": product_id,
            "first_short_on": third.isoformat(),
            "shortfall_vials": [{"vial_size_g": 40, "count": 1}],
        }
    ]
    assert early["expires_on"] < second.isoformat()

    # The reorder list: the product, its first short day, what is short, order by 10 days before.
    r = nurse.get(
        f"/api/v1/centers/{center['id']}/reorder.csv",
        params={"from": FROM.isoformat(), "to": TO.isoformat()},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 1
    row = rows[0]
    assert row["product"].startswith("Demand IG") and row["product_id"] == product_id
    assert row["first_short_on"] == third.isoformat()
    assert (row["vials_short"], row["vials_short_total"]) == ("1 x 40 g", "1")
    assert row["order_lead_days"] == "10"
    assert row["order_by"] == (third - timedelta(days=10)).isoformat()

    # A range that ends before the third session: nothing is short, nothing to order.
    before = {"from": FROM.isoformat(), "to": (third - timedelta(days=1)).isoformat()}
    assert forecast(nurse, center["id"], **before)["short"] == []
    r = nurse.get(f"/api/v1/centers/{center['id']}/reorder.csv", params=before)
    assert r.status_code == 200 and len(list(csv.DictReader(io.StringIO(r.text)))) == 0


def test_vial_plan_from_the_catalog_and_from_a_centers_lots(
    admin: httpx.Client, nurse: httpx.Client
) -> None:
    product_id = own_product(admin, vial_sizes_g=[1, 2.5, 5, 10, 20, 40])  # as Gamunex-C's label
    r = nurse.post("/api/v1/vial-plan", json={"product_id": product_id, "dose_g": 72.5})
    assert r.status_code == 200, r.text
    plan = r.json()
    assert [(v["vial_size_g"], v["count"], v["lot_id"]) for v in plan["vials"]] == [
        (40, 1, None),
        (20, 1, None),
        (10, 1, None),
        (2.5, 1, None),
    ]
    assert (plan["total_g"], plan["given_g"], plan["waste_g"], plan["short_g"]) == (
        72.5,
        72.5,
        0,
        0,
    )
    assert (plan["units_given"], plan["modifier"], plan["within_tolerance"]) == (145, "JZ", True)
    # 72.6 g within 5 %: the nearest whole vials, 72.5 g; in a shortage, rounded down to them.
    for extra in ({"tolerance_pct": 5}, {"shortage": True}):
        r = nurse.post(
            "/api/v1/vial-plan", json={"product_id": product_id, "dose_g": 72.6, **extra}
        )
        assert r.status_code == 200, r.text
        assert (r.json()["given_g"], r.json()["waste_g"]) == (72.5, 0)
    # Without rounding: 73 g drawn (40 + 20 + 10 + 3 x 1 g), 0.4 g of it discarded.
    r = nurse.post("/api/v1/vial-plan", json={"product_id": product_id, "dose_g": 72.6})
    assert (r.json()["total_g"], r.json()["given_g"], r.json()["waste_g"]) == (73, 72.6, 0.4)

    center, _ = weekday_center(nurse)
    later = receive_lot(admin, center["id"], product_id, vials=5, expires_on="2028-06-30")
    sooner = receive_lot(admin, center["id"], product_id, vials=5, expires_on="2028-03-31")
    spent = receive_lot(admin, center["id"], product_id, vials=1, expires_on="2027-12-31")
    r = admin.patch(
        f"/api/v1/inventory/lots/{spent['id']}",
        json={"status": "quarantined"},
        headers={"If-Match": f'"{spent["version"]}"'},
    )
    assert r.status_code == 200, r.text
    asked = {"product_id": product_id, "dose_g": 20, "center_id": center["id"]}
    plan = nurse.post("/api/v1/vial-plan", json=asked).json()
    # Only 10 g vials there: two from one lot, the one that expires sooner (not quarantined).
    assert [(v["vial_size_g"], v["count"], v["lot_id"]) for v in plan["vials"]] == [
        (10, 2, sooner["id"])
    ]
    assert plan["vials"][0]["expires_on"] == "2028-03-31" and plan["short_g"] == 0
    # More than the lots hold: all of both, and what is missing.
    plan = nurse.post("/api/v1/vial-plan", json={**asked, "dose_g": 130}).json()
    assert sorted((v["lot_id"], v["count"]) for v in plan["vials"]) == sorted(
        [(sooner["id"], 5), (later["id"], 5)]
    )
    assert (plan["total_g"], plan["short_g"], plan["within_tolerance"]) == (100, 30, False)


def test_bad_input_is_422_naming_the_field_without_echoing_it(nurse: httpx.Client) -> None:
    center, _ = weekday_center(nurse)
    url = demand_url(center["id"])

    def refused(r: httpx.Response, field: str, secret: str) -> None:
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        body = r.json()
        named = [e["loc"][-1] for e in body.get("errors", [])] + [body["detail"].split(":")[0]]
        assert field in named, body
        assert secret not in r.text

    for params, field, secret in (
        ({"from": "2027-02-31"}, "from", "2027-02-31"),
        ({"from": "2027-03-01", "to": "2027-02-27"}, "to", "2027-02-27"),
        ({"from": "2027-01-01", "to": "2027-07-03"}, "to", "2027-07-03"),  # over 26 weeks
        ({"group": "fortnight"}, "group", "fortnight"),
    ):
        refused(nurse.get(url, params=params), field, secret)
        if "group" not in params:
            r = nurse.get(f"/api/v1/centers/{center['id']}/reorder.csv", params=params)
            refused(r, field, secret)
    ok = nurse.get(url, params={"from": "2027-01-01", "to": "2027-07-02"})  # 26 weeks exactly
    assert ok.status_code == 200, ok.text
    assert nurse.get(demand_url(str(uuid.uuid4()))).status_code == 404

    product_id = gamunex(nurse)
    plan = "/api/v1/vial-plan"
    for body, field, secret in (
        ({"product_id": product_id, "dose_g": -7.123457}, "dose_g", "7.123457"),
        ({"product_id": product_id, "dose_g": "lots"}, "dose_g", "lots"),
        ({"product_id": product_id, "dose_g": 5, "shortage": "yes"}, "shortage", "yes"),
        ({"product_id": product_id, "dose_g": 5, "tolerance_pct": -3.1}, "tolerance_pct", "3.1"),
        ({"product_id": product_id, "dose_g": 5, "vials": 2}, "vials", "zz"),
        ({"product_id": "not-a-uuid-4711", "dose_g": 5}, "product_id", "4711"),
        ({"product_id": str(uuid.uuid4()), "dose_g": 5}, "product_id", "zz"),
        ({"product_id": product_id, "dose_g": 5, "center_id": str(uuid.uuid4())}, "center_id", ""),
    ):
        refused(nurse.post(plan, json=body), field, secret or "zz")


def test_billing_may_not_see_drug_demand(server: Server, billing: httpx.Client) -> None:
    with server.client("admin") as admin:
        center, _ = weekday_center(admin)
        product_id = gamunex(admin)
    assert billing.get(demand_url(center["id"])).status_code == 403
    assert billing.get(f"/api/v1/centers/{center['id']}/reorder.csv").status_code == 403
    r = billing.post("/api/v1/vial-plan", json={"product_id": product_id, "dose_g": 20})
    assert r.status_code == 403
