"""Drug shortages (issue 15) through the real server: the `drug_check` job's alerts on the
pharmacy's queue for the booked sessions the stock will not cover, and the shortage plan that
proposes (never applies) what to do for them, in the center's priority order."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

import httpx

from tests.support.factories import MONDAY, make_patient, order, receive_lot, weekday_center
from tests.support.servers import at

# A week before the sessions (all on MONDAY, 2027-01-11), at the centers (New York).
NOW = datetime.fromisoformat(f"{(MONDAY - timedelta(days=7)).isoformat()}T12:00:00-05:00")
TODAY = NOW.date()


def product(admin: httpx.Client, lead_days: int | None = 10) -> str:
    """An immune globulin of 10, 20 and 40 g vials (70 g is 40 + 20 + 10)."""
    r = admin.post(
        "/api/v1/products",
        json={
            "name": f"Shortage IG {uuid.uuid4().hex[:6]}",
            "hcpcs_code": "J1599",
            "billing_unit_mg": 500,
            "concentration_pct": 10,
            "titration": {
                "initial_rate_mg_per_kg_min": 2,
                "step_mg_per_kg_min": 2,
                "step_interval_minutes": 30,
            },
            "max_rate_mg_per_kg_min": 8,
            "premed_minutes": 15,
            "observation_minutes": 15,
            "vial_sizes_g": [10, 20, 40],
            "order_lead_days": lead_days,
        },
    )
    assert r.status_code == 201, r.text
    product_id: str = r.json()["id"]
    return product_id


def stock(pharmacy: httpx.Client, center_id: str, product_id: str, **sizes: int) -> None:
    """Lots of the given vials at the center (`v40=1, v20=1, v10=1`: one 70 g dose)."""
    for size, vials in sizes.items():
        receive_lot(pharmacy, center_id, product_id, vial_size_g=int(size[1:]), vials=vials)


def session_of(
    nurse: httpx.Client,
    center_id: str,
    product_id: str,
    diagnosis: str,
    start_time: str,
    *,
    loading: bool = False,
    tolerance_pct: float | None = None,
) -> dict[str, Any]:
    """A 70 kg patient's 70 g course session on MONDAY: a one-day loading dose (1 g/kg), or the
    first of a maintenance course (1 g/kg every 28 days, window 21-42 days)."""
    patient = make_patient(nurse, weight_kg=70, height_cm=165, sex="female")
    phases: dict[str, Any] = (
        {
            "induction": {"total_dose_g_per_kg": 1, "days": 1, "skip_closures": False},
            "maintenance": None,
        }
        if loading
        else {
            "induction": None,
            "maintenance": {
                "dose_g_per_kg": 1,
                "interval_days": 28,
                "window_min_days": 21,
                "window_max_days": 42,
                "cycles": 1,
            },
        }
    )
    extra = {} if tolerance_pct is None else {"vial_tolerance_pct": tolerance_pct}
    r = order(
        nurse,
        center_id,
        patient_id=patient["id"],
        product_id=product_id,
        diagnosis_code=diagnosis,
        preferred_start_time=start_time,
        **phases,
        **extra,
    )
    assert r.status_code == 201, r.text
    course = r.json()
    r = nurse.post(
        f"/api/v1/courses/{course['id']}/book",
        json={"through": (MONDAY + timedelta(weeks=2)).isoformat()},
    )
    assert r.status_code == 200 and len(r.json()["booked"]) == 1, r.text
    booked: dict[str, Any] = {
        **r.json()["booked"][0],
        "patient_id": patient["id"],
        "course_id": course["id"],
    }
    assert booked["dose_g"] == 70 and booked["start"].startswith(MONDAY.isoformat()), booked
    return booked


def run_check(admin: httpx.Client) -> dict[str, int]:
    r = admin.post("/api/v1/jobs/drug_check/run", headers=at(NOW))
    assert r.status_code == 200 and r.json()["outcome"] == "succeeded", r.text
    counts: dict[str, int] = r.json()["counts"]
    assert counts["failed"] == 0
    return counts


def queue_of(api: httpx.Client, patient_id: str, **params: Any) -> list[dict[str, Any]]:
    r = api.get("/api/v1/pharmacy/alerts", params={"patient_id": patient_id, **params})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def test_the_job_flags_the_short_session_only_and_clears_it_once_stock_arrives(
    admin: httpx.Client, nurse: httpx.Client, billing: httpx.Client, pharmacy: httpx.Client
) -> None:
    center, _ = weekday_center(nurse, chairs=2)
    product_id = product(admin, lead_days=3)
    first = session_of(nurse, center["id"], product_id, "G61.81", "09:00")
    second = session_of(nurse, center["id"], product_id, "G61.81", "13:00")
    stock(pharmacy, center["id"], product_id, v40=1, v20=1, v10=1)  # one dose: the first's

    run_check(admin)
    assert queue_of(pharmacy, first["patient_id"]) == []
    [alert] = queue_of(pharmacy, second["patient_id"])
    assert (alert["kind"], alert["queue"], alert["status"]) == (
        "drug_shortfall",
        "pharmacy",
        "open",
    )
    assert alert["appointment_id"] == second["id"] and alert["course_id"] == second["course_id"]
    # A week ahead, beyond the 3 days an order takes: a warning, due when the order must go.
    assert alert["severity"] == "warning"
    assert alert["due_date"] == (MONDAY - timedelta(days=3)).isoformat()
    assert "short 1 x 40 g + 1 x 20 g + 1 x 10 g" in alert["detail"]
    assert "Patient" not in alert["detail"] and second["patient_id"] not in alert["detail"]

    # Staff read the same queue; billing's own queue and export are as they were.
    r = nurse.get(
        "/api/v1/alerts", params={"queue": "pharmacy", "patient_id": second["patient_id"]}
    )
    assert [a["id"] for a in r.json()["items"]] == [alert["id"]]
    r = billing.get(
        "/api/v1/alerts", params={"queue": "billing", "patient_id": second["patient_id"]}
    )
    assert r.status_code == 200 and all(a["kind"] != "drug_shortfall" for a in r.json()["items"])
    r = billing.get("/api/v1/billing/worklist.csv")
    assert r.status_code == 200 and alert["id"] not in r.text
    assert billing.get("/api/v1/pharmacy/alerts").status_code == 403
    assert pharmacy.get("/api/v1/alerts").status_code == 403  # billing's route, as before

    # Run again with nothing changed: nothing changes, anywhere.
    again = run_check(admin)
    assert (again["opened"], again["updated"], again["resolved"]) == (0, 0, 0)
    [same] = queue_of(pharmacy, second["patient_id"])
    assert (same["id"], same["version"]) == (alert["id"], alert["version"])

    # The stock comes in: the next run resolves it.
    stock(pharmacy, center["id"], product_id, v40=1, v20=1, v10=1)
    after = run_check(admin)
    assert after["resolved"] >= 1
    assert queue_of(pharmacy, second["patient_id"], status="live") == []
    [done] = queue_of(pharmacy, second["patient_id"])
    assert (done["status"], done["resolution"]) == ("resolved", "cleared")


def test_a_session_cancelled_or_soon_is_brought_up_to_date(
    admin: httpx.Client, nurse: httpx.Client, pharmacy: httpx.Client
) -> None:
    """No stock at all: both sessions are short; within the 10 days an order takes, critical.
    One cancelled: its alert is resolved on the next run."""
    center, _ = weekday_center(nurse, chairs=2)
    product_id = product(admin, lead_days=10)
    kept = session_of(nurse, center["id"], product_id, "G61.82", "09:00")
    dropped = session_of(nurse, center["id"], product_id, "G61.81", "13:00")
    run_check(admin)
    [alert] = queue_of(pharmacy, kept["patient_id"])
    assert alert["severity"] == "critical" and alert["due_date"] == TODAY.isoformat()
    assert len(queue_of(pharmacy, dropped["patient_id"], status="live")) == 1
    r = nurse.post(f"/api/v1/appointments/{dropped['id']}/cancel", headers=at(NOW))
    assert r.status_code == 200, r.text
    run_check(admin)
    assert queue_of(pharmacy, dropped["patient_id"], status="live") == []
    assert [a["id"] for a in queue_of(pharmacy, kept["patient_id"], status="live")] == [alert["id"]]


def plan_of(api: httpx.Client, center_id: str, product_id: str) -> dict[str, Any]:
    r = api.post(
        f"/api/v1/centers/{center_id}/shortage-plan",
        json={"product_id": product_id, "from": MONDAY.isoformat(), "to": MONDAY.isoformat()},
        headers=at(NOW),
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["applied"] is False
    return body


def by_appointment(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["appointment_id"]: p for p in plan["proposals"]}


def snapshot(nurse: httpx.Client, appointments: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    out = []
    for a in appointments:
        got = nurse.get(f"/api/v1/appointments/{a['id']}").json()
        out.append((got["start"], got["chair_id"], got["status"], got["version"]))
    return out


def test_the_plan_protects_gbs_and_moves_maintenance_only_inside_its_window(
    admin: httpx.Client, nurse: httpx.Client, pharmacy: httpx.Client, billing: httpx.Client
) -> None:
    center, _ = weekday_center(nurse, chairs=2)
    product_id = product(admin, lead_days=10)
    cidp = session_of(nurse, center["id"], product_id, "G61.81", "09:00")  # first in the day
    gbs = session_of(nurse, center["id"], product_id, "G61.0", "13:00", loading=True)
    stock(pharmacy, center["id"], product_id, v40=1, v20=1, v10=1)  # one dose
    before = snapshot(nurse, [cidp, gbs])

    plan = plan_of(pharmacy, center["id"], product_id)
    assert plan["priority"] == ["G61.0", "G61.82", "G61.81"]  # the default order
    assert plan["protected"] == [gbs["id"]]  # GBS keeps the stock, though it comes later
    [move] = plan["proposals"]
    assert (move["appointment_id"], move["action"], move["priority_rank"]) == (
        cidp["id"],
        "move_later",
        3,
    )
    course_plan = nurse.get(f"/api/v1/courses/{cidp['course_id']}/plan").json()
    [entry] = [
        s for s in course_plan["sessions"] if (s["appointment"] or {}).get("id") == cidp["id"]
    ]
    to = date.fromisoformat(move["move_to_date"])
    # Later, inside the window, once an order placed today (10 days) has arrived, on an open day.
    assert MONDAY < to <= date.fromisoformat(entry["window_end"])
    assert to == TODAY + timedelta(days=10) and to.weekday() < 5
    assert plan["uncovered"] == []
    assert snapshot(nurse, [cidp, gbs]) == before  # nothing applied
    r = billing.post(
        f"/api/v1/centers/{center['id']}/shortage-plan", json={"product_id": product_id}
    )
    assert r.status_code == 403

    # The center puts CIDP first: now the CIDP session is protected, and the loading day of
    # GBS is never moved; nothing else has stock, so it stays uncovered.
    version = nurse.get(f"/api/v1/centers/{center['id']}").json()["version"]
    r = nurse.patch(
        f"/api/v1/centers/{center['id']}",
        json={"shortage_priority": ["G61.81", "G61.0"]},
        headers={"If-Match": f'"{version}"'},
    )
    assert r.status_code == 200 and r.json()["shortage_priority"] == ["G61.81", "G61.0"], r.text
    plan = plan_of(pharmacy, center["id"], product_id)
    assert plan["protected"] == [cidp["id"]] and plan["proposals"] == []
    [left] = plan["uncovered"]
    assert (left["appointment_id"], left["priority_rank"]) == (gbs["id"], 2)
    assert left["short_vials"] == [
        {"vial_size_g": 40, "count": 1},
        {"vial_size_g": 20, "count": 1},
        {"vial_size_g": 10, "count": 1},
    ]


def test_the_plan_rounds_down_within_tolerance_and_switches_only_to_stock_on_hand(
    admin: httpx.Client, nurse: httpx.Client, pharmacy: httpx.Client
) -> None:
    center, _ = weekday_center(nurse, chairs=4)
    product_id, other_id = product(admin, lead_days=10), product(admin, lead_days=10)
    strict = session_of(nurse, center["id"], product_id, "G61.82", "09:00", tolerance_pct=5)
    loose = session_of(nurse, center["id"], product_id, "G61.82", "10:00", tolerance_pct=15)
    cidp = session_of(nurse, center["id"], product_id, "G61.81", "11:00")
    gbs = session_of(nurse, center["id"], product_id, "G61.0", "13:00", loading=True)
    # One whole dose and 60 g more: 40 + 20 + 10, then 40 + 20.
    stock(pharmacy, center["id"], product_id, v40=2, v20=2, v10=1)
    before = snapshot(nurse, [strict, loose, cidp, gbs])

    plan = plan_of(pharmacy, center["id"], product_id)
    assert plan["protected"] == [gbs["id"]]
    got = by_appointment(plan)
    # 60 g is 14 % below 70 g: too far for a 5 % tolerance (the other product has no stock:
    # no switch), within 15 %.
    assert got[strict["id"]]["action"] == "move_later"
    assert got[loose["id"]]["action"] == "round_down"
    assert (got[loose["id"]]["dose_g_before"], got[loose["id"]]["dose_g_after"]) == (70, 60)
    assert "tolerance of 15 %" in got[loose["id"]]["detail"]
    assert got[cidp["id"]]["action"] == "move_later"
    assert all(p["action"] != "switch_product" for p in plan["proposals"])

    # The other product has a dose in stock: the strict course switches to it (cheaper than a
    # move), with the vials it would take; the rest as before.
    stock(pharmacy, center["id"], other_id, v40=1, v20=1, v10=1)
    plan = plan_of(pharmacy, center["id"], product_id)
    got = by_appointment(plan)
    switch = got[strict["id"]]
    assert (switch["action"], switch["product_id_after"]) == ("switch_product", other_id)
    assert switch["vials_after"] == [
        {"vial_size_g": 40, "count": 1},
        {"vial_size_g": 20, "count": 1},
        {"vial_size_g": 10, "count": 1},
    ]
    assert switch["dose_g_after"] == 70 and switch["product_name_after"] in switch["detail"]
    assert got[loose["id"]]["action"] == "round_down"
    assert got[cidp["id"]]["action"] == "move_later"  # the other product's dose is taken
    assert snapshot(nurse, [strict, loose, cidp, gbs]) == before  # nothing applied


def test_the_plan_answers_nothing_to_do_and_refuses_what_it_cannot_read(
    admin: httpx.Client, nurse: httpx.Client, pharmacy: httpx.Client
) -> None:
    center, _ = weekday_center(nurse, chairs=1)
    product_id = product(admin)
    booked = session_of(nurse, center["id"], product_id, "G61.81", "09:00")
    stock(pharmacy, center["id"], product_id, v40=1, v20=1, v10=1)
    plan = plan_of(nurse, center["id"], product_id)
    assert (plan["protected"], plan["proposals"], plan["uncovered"]) == ([booked["id"]], [], [])
    url = f"/api/v1/centers/{center['id']}/shortage-plan"
    r = nurse.post(url, json={"product_id": str(uuid.uuid4())})
    assert r.status_code == 422
    r = nurse.post(url, json={"product_id": product_id, "from": "2027-02-01", "to": "2027-01-01"})
    assert r.status_code == 422
    r = nurse.post(f"/api/v1/centers/{uuid.uuid4()}/shortage-plan", json={"product_id": product_id})
    assert r.status_code == 404
