"""Pre-authorizations and the billing work queue through the API, on both databases."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import date, datetime, timedelta
from typing import Any

import httpx

from tests.support.factories import (
    MONDAY,
    gamunex,
    local_day,
    make_center,
    make_chair,
    order,
    weekday_center,
)
from tests.support.servers import Server, at

MAINTENANCE = {
    "dose_g_per_kg": 1,
    "interval_days": 21,
    "window_min_days": 21,
    "window_max_days": 28,
    "cycles": 5,
}
THROUGH = {"through": (MONDAY + timedelta(weeks=16)).isoformat()}


def day(offset: int) -> str:
    return (MONDAY + timedelta(days=offset)).isoformat()


def payer(billing: httpx.Client, **overrides: Any) -> dict[str, Any]:
    body = {
        "name": f"Payer {id(overrides)}-{len(billing.get('/api/v1/payers').json()['items'])}",
        "turnaround_days": 14,
        "expedited_turnaround_days": 3,
        "renewal_margin_days": 7,
        **overrides,
    }
    r = billing.post("/api/v1/payers", json=body)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def insured_course(
    nurse: httpx.Client, billing: httpx.Client, **auth: Any
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """A patient on maintenance every 21 days, five sessions booked, one authorization."""
    center, _ = weekday_center(nurse)
    course = order(
        nurse, center["id"], diagnosis_code="G61.82", induction=None, maintenance=MAINTENANCE
    ).json()
    booked = nurse.post(f"/api/v1/courses/{course['id']}/book", json=THROUGH).json()["booked"]
    assert len(booked) == 5
    p = payer(billing)
    cover = billing.post(
        f"/api/v1/patients/{course['patient_id']}/coverages",
        json={"payer_id": p["id"], "member_id": "M-1", "effective_from": day(-30)},
    )
    assert cover.status_code == 201, cover.text
    body = {
        "patient_id": course["patient_id"],
        "coverage_id": cover.json()["id"],
        "service_code": "J1561",
        "auth_number": "A-100",
        "status": "approved",
        "valid_from": day(0),
        "valid_to": day(89),
        "units_type": "visits",
        "units_approved": 4,
        **auth,
    }
    r = billing.post("/api/v1/authorizations", json=body)
    assert r.status_code == 201, r.text
    return course, r.json(), booked


def live(api: httpx.Client, patient_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = api.get(
        "/api/v1/alerts", params={"patient_id": patient_id, "limit": 500}
    ).json()["items"]
    return [a for a in items if a["status"] != "resolved"]


def test_a_fifth_session_beyond_four_visits_is_flagged_until_a_renewal(
    nurse: httpx.Client, billing: httpx.Client
) -> None:
    course, auth, booked = insured_course(nurse, billing)
    alerts = live(billing, course["patient_id"])
    assert sorted(a["kind"] for a in alerts) == ["auth_units_low", "session_uncovered"]
    uncovered = next(a for a in alerts if a["kind"] == "session_uncovered")
    assert uncovered["appointment_id"] == booked[4]["id"]
    low = next(a for a in alerts if a["kind"] == "auth_units_low")
    assert low["authorization_id"] == auth["id"]

    usage = billing.get(f"/api/v1/authorizations/{auth['id']}/usage").json()
    fourth = local_day(booked[3]["start"])
    assert usage == {
        "units_approved": 4,
        "units_used": 0,
        "units_scheduled": 4,
        "units_remaining": 0,
        "projected_exhaustion_date": fourth.isoformat(),
        "renew_by": (fourth - timedelta(days=21)).isoformat(),  # 14 turnaround + 7 margin
    }
    # Recomputing changes nothing: no alert twice.
    assert billing.post("/api/v1/billing/sweep").status_code == 200
    assert billing.post("/api/v1/billing/sweep").json()["opened"] == 0
    assert sorted(a["id"] for a in live(billing, course["patient_id"])) == sorted(
        a["id"] for a in alerts
    )

    # A renewal drafted but not sent to the payer renews nothing: both alerts stay.
    draft = billing.post(
        "/api/v1/authorizations",
        json={
            "patient_id": course["patient_id"],
            "coverage_id": auth["coverage_id"],
            "service_code": "J1561",
            "status": "draft",
            "valid_from": day(80),
            "valid_to": day(260),
            "units_approved": 8,
        },
    )
    assert draft.status_code == 201
    assert sorted(a["id"] for a in live(billing, course["patient_id"])) == sorted(
        a["id"] for a in alerts
    )
    renewal = billing.post(
        "/api/v1/authorizations",
        json={
            "patient_id": course["patient_id"],
            "coverage_id": auth["coverage_id"],
            "service_code": "J1561",
            "auth_number": "A-101",
            "status": "approved",
            "valid_from": day(80),
            "valid_to": day(260),
            "units_type": "visits",
            "units_approved": 8,
        },
    )
    assert renewal.status_code == 201
    assert live(billing, course["patient_id"]) == []
    resolved = billing.get(
        "/api/v1/alerts", params={"patient_id": course["patient_id"], "status": "resolved"}
    ).json()["items"]
    # (Alerts raised while the course was booked before any authorization resolved too.)
    assert {a["id"] for a in alerts} <= {a["id"] for a in resolved}


def test_billing_units_follow_the_patients_weight(
    nurse: httpx.Client, billing: httpx.Client
) -> None:
    # 70 kg x 1 g/kg = 70 g = 140 units of 500 mg: 560 units pay for four sessions.
    course, auth, booked = insured_course(
        nurse, billing, units_type="billing_units", units_approved=560
    )
    kinds = sorted(a["kind"] for a in live(billing, course["patient_id"]))
    assert kinds == ["auth_units_low", "session_uncovered"]
    patient = nurse.get(f"/api/v1/patients/{course['patient_id']}")
    r = nurse.patch(
        f"/api/v1/patients/{course['patient_id']}",
        json={"weight_kg": 80},
        headers={"If-Match": patient.headers["ETag"]},
    )
    assert r.status_code == 200
    # 80 g = 160 units: three sessions now, the fourth and fifth uncovered.
    uncovered = [
        a["appointment_id"]
        for a in live(billing, course["patient_id"])
        if a["kind"] == "session_uncovered"
    ]
    assert sorted(uncovered) == sorted([booked[3]["id"], booked[4]["id"]])
    usage = billing.get(f"/api/v1/authorizations/{auth['id']}/usage").json()
    assert usage["units_scheduled"] == 480 and usage["units_remaining"] == 80


def test_status_changes_follow_the_rules_and_are_kept(
    nurse: httpx.Client, billing: httpx.Client
) -> None:
    course, auth, _ = insured_course(nurse, billing, status="submitted")
    url = f"/api/v1/authorizations/{auth['id']}"
    # Submitted, so every session is waiting on a decision.
    reasons = {a["detail"] for a in live(billing, course["patient_id"])}
    assert reasons and all("awaiting a decision" in r for r in reasons)
    assert (
        nurse.patch(url, json={"status": "denied"}, headers={"If-Match": '"1"'}).status_code == 403
    )
    denied = billing.patch(
        url,
        json={"status": "denied", "note": "not medically necessary"},
        headers={"If-Match": '"1"'},
    )
    assert denied.status_code == 200, denied.text
    history = denied.json()["history"]
    assert [(h["from_status"], h["to_status"]) for h in history] == [
        (None, "submitted"),
        ("submitted", "denied"),
    ]
    assert history[1]["note"] == "not medically necessary"
    kinds = {a["kind"] for a in live(billing, course["patient_id"])}
    assert "auth_denied_with_bookings" in kinds
    etag = denied.headers["ETag"]
    jump = billing.patch(url, json={"status": "approved"}, headers={"If-Match": etag})
    assert jump.status_code == 409
    assert billing.get(url).json() == denied.json()
    stale = billing.patch(url, json={"status": "appealed"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412


def test_bad_insurance_input_is_refused_and_nothing_changes(
    nurse: httpx.Client, billing: httpx.Client
) -> None:
    course, auth, _ = insured_course(nurse, billing)
    patient = course["patient_id"]
    base = {
        "patient_id": patient,
        "coverage_id": auth["coverage_id"],
        "service_code": "J1561",
        "valid_from": day(0),
        "valid_to": day(30),
        "units_approved": 4,
    }
    bad = [
        {**base, "valid_to": day(-1)},
        {**base, "units_approved": -1},
        {**base, "status": "granted"},
        {**base, "service_code": "IVIG"},
        {**base, "coverage_id": course["id"]},
        {**base, "units_type": "doses"},
    ]
    before = billing.get("/api/v1/authorizations", params={"patient_id": patient}).json()
    for body in bad:
        r = billing.post("/api/v1/authorizations", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    assert billing.get("/api/v1/authorizations", params={"patient_id": patient}).json() == before
    unknown_payer = billing.post(
        f"/api/v1/patients/{patient}/coverages",
        json={"payer_id": course["id"], "member_id": "X", "effective_from": day(0)},
    )
    assert unknown_payer.status_code == 422
    backwards = billing.post(
        f"/api/v1/patients/{patient}/coverages",
        json={
            "payer_id": billing.get("/api/v1/payers").json()["items"][0]["id"],
            "member_id": "X",
            "effective_from": day(10),
            "effective_to": day(0),
        },
    )
    assert backwards.status_code == 422
    assert len(billing.get(f"/api/v1/patients/{patient}/coverages").json()) == 1
    fewer = billing.patch(
        f"/api/v1/authorizations/{auth['id']}",
        json={"valid_to": day(-5)},
        headers={"If-Match": f'"{auth["version"]}"'},
    )
    assert fewer.status_code == 422
    assert billing.get(f"/api/v1/authorizations/{auth['id']}").json()["valid_to"] == day(89)


def test_the_work_queue_acts_and_exports(
    nurse: httpx.Client, billing: httpx.Client, admin: httpx.Client
) -> None:
    course, _, _ = insured_course(nurse, billing)
    alerts = live(billing, course["patient_id"])
    first = alerts[0]
    urgency = ["critical", "warning", "info"]  # most urgent first
    assert urgency.index(first["severity"]) <= urgency.index(alerts[1]["severity"])
    ack = billing.post(f"/api/v1/alerts/{first['id']}/acknowledge")
    assert ack.status_code == 200 and ack.json()["status"] == "acknowledged"
    assert billing.post(f"/api/v1/alerts/{first['id']}/acknowledge").status_code == 409
    assert nurse.post(f"/api/v1/alerts/{first['id']}/resolve").status_code == 403
    nurse_id = nurse.get("/api/v1/auth/me").json()["id"]
    bad = billing.post(f"/api/v1/alerts/{first['id']}/assign", json={"assignee_id": nurse_id})
    assert bad.status_code == 422
    mine = billing.post(f"/api/v1/alerts/{first['id']}/assign")
    assert mine.status_code == 200 and mine.json()["assigned_to"] is not None

    sheet = billing.get("/api/v1/billing/worklist.csv")
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(sheet.text)))
    ours = [r for r in rows if r["alert_id"] in {a["id"] for a in alerts}]
    assert len(ours) == 2 and ours[0]["auth_number"] in ("A-100", "")
    assert nurse.get("/api/v1/billing/worklist.csv").status_code == 403


def test_two_completions_racing_for_the_last_unit_never_both_take_it(
    server: Server, nurse: httpx.Client, billing: httpx.Client
) -> None:
    _course, auth, booked = insured_course(nurse, billing, units_approved=1)
    first, second = booked[0]["id"], booked[1]["id"]
    # Each step at the chair, a few minutes into that visit.
    chairside = {
        a["id"]: at(datetime.fromisoformat(a["start"]) + timedelta(minutes=5)) for a in booked
    }
    for appt in (first, second):
        for step in ("check-in", "start"):
            r = nurse.post(f"/api/v1/appointments/{appt}/{step}", headers=chairside[appt])
            assert r.status_code == 200

    async def race() -> list[httpx.Response]:
        headers = {"Authorization": f"Bearer {server.tokens['nurse']}"}
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=60) as c:
            return list(
                await asyncio.gather(
                    *(
                        c.post(f"/api/v1/appointments/{a}/complete", headers=chairside[a])
                        for a in (first, second)
                    )
                )
            )

    assert [r.status_code for r in asyncio.run(race())] == [200, 200]
    assert billing.get(f"/api/v1/authorizations/{auth['id']}").json()["units_used"] == 1
    usage = billing.get(f"/api/v1/authorizations/{auth['id']}/usage").json()
    assert usage["units_used"] == 1 and usage["units_remaining"] == 0

    # The session given without cover is the real unpaid bill: it stays on the queue...
    covers = {
        a: billing.get(f"/api/v1/appointments/{a}").json()["coverage"] for a in (first, second)
    }
    unpaid = [a for a, c in covers.items() if c["state"] == "uncovered"]
    assert len(unpaid) == 1
    patient = billing.get(f"/api/v1/appointments/{first}").json()["patient_id"]
    flagged = [a for a in live(billing, patient) if a["appointment_id"] == unpaid[0]]
    assert len(flagged) == 1 and flagged[0]["severity"] == "critical"
    assert "without cover" in flagged[0]["detail"]
    # ...until the payer approves it after the fact: the units are drawn then.
    retro = billing.post(
        "/api/v1/authorizations",
        json={
            "patient_id": patient,
            "coverage_id": auth["coverage_id"],
            "service_code": "J1561",
            "status": "approved",
            "valid_from": day(0),
            "valid_to": day(60),
            "units_type": "visits",
            "units_approved": 1,
        },
    ).json()
    assert billing.get(f"/api/v1/authorizations/{retro['id']}").json()["units_used"] == 1
    paid = billing.get(f"/api/v1/appointments/{unpaid[0]}").json()["coverage"]
    assert paid == {"state": "covered", "authorization_id": retro["id"], "reason": None}
    assert [a for a in live(billing, patient) if a["appointment_id"] == unpaid[0]] == []


def test_only_billing_and_admins_change_insurance_records(
    nurse: httpx.Client, billing: httpx.Client
) -> None:
    body = {
        "name": "Nurse payer",
        "turnaround_days": 1,
        "expedited_turnaround_days": 1,
        "renewal_margin_days": 1,
    }
    assert nurse.post("/api/v1/payers", json=body).status_code == 403
    assert nurse.get("/api/v1/payers").status_code == 200
    assert nurse.get("/api/v1/alerts").status_code == 200
    first = payer(billing, name="Twice")
    assert billing.post("/api/v1/payers", json={**body, "name": first["name"]}).status_code == 409
    assert date.fromisoformat(day(0)) == MONDAY and gamunex(nurse)


def test_cover_shows_on_appointments_the_day_board_and_the_plan(
    nurse: httpx.Client, billing: httpx.Client
) -> None:
    course, auth, booked = insured_course(nurse, billing)
    first, fifth = booked[0], booked[4]
    shown = nurse.get(f"/api/v1/appointments/{first['id']}").json()["coverage"]
    assert shown == {"state": "covered", "authorization_id": auth["id"], "reason": None}
    listed = nurse.get("/api/v1/appointments", params={"patient_id": course["patient_id"]})
    states = [a["coverage"]["state"] for a in listed.json()["items"]]
    assert states == ["covered"] * 4 + ["uncovered"]
    board = nurse.get(
        f"/api/v1/centers/{course['center_id']}/day", params={"date": fifth["start"][:10]}
    ).json()
    on_board = [a for chair in board["chairs"] for a in chair["appointments"]]
    assert [a["coverage"]["reason"] for a in on_board if a["id"] == fifth["id"]] == [
        "units_exhausted"
    ]
    plan = nurse.get(f"/api/v1/courses/{course['id']}/plan", params=THROUGH).json()["sessions"]
    assert [p["coverage"] for p in plan] == ["covered"] * 4 + ["uncovered"]
    assert plan[4]["coverage_reason"] == "units_exhausted"


def test_a_blocking_center_books_no_session_insurance_would_not_pay(
    admin: httpx.Client, nurse: httpx.Client, billing: httpx.Client
) -> None:
    center, _ = weekday_center(nurse)
    r = admin.patch(
        f"/api/v1/centers/{center['id']}",
        json={"coverage_policy": "block"},
        headers={"If-Match": f'"{center["version"]}"'},
    )
    assert r.status_code == 200 and r.json()["coverage_policy"] == "block"
    course = order(
        nurse, center["id"], diagnosis_code="G61.82", induction=None, maintenance=MAINTENANCE
    ).json()
    p = payer(billing)
    cover = billing.post(
        f"/api/v1/patients/{course['patient_id']}/coverages",
        json={"payer_id": p["id"], "member_id": "M-2", "effective_from": day(-30)},
    ).json()
    created = billing.post(
        "/api/v1/authorizations",
        json={
            "patient_id": course["patient_id"],
            "coverage_id": cover["id"],
            "service_code": "J1561",
            "status": "approved",
            "valid_from": day(0),
            "valid_to": day(89),
            "units_type": "visits",
            "units_approved": 4,
        },
    )
    assert created.status_code == 201
    result = nurse.post(f"/api/v1/courses/{course['id']}/book", json=THROUGH).json()
    assert len(result["booked"]) == 4
    assert "insurance would not pay" in result["unbookable"]["unbookable_reason"]
    # Moving a session past the authorization's end is refused, and nothing moves.
    fourth = result["booked"][3]
    late = nurse.patch(
        f"/api/v1/appointments/{fourth['id']}",
        # Past the session's window too: the nurse overrides that; insurance still refuses.
        json={"start": f"{day(91)}T09:00:00-05:00", "override_reason": "patient's request"},
        headers={"If-Match": '"1"'},
    )
    assert late.status_code == 409 and "insurance" in late.json()["detail"]
    assert nurse.get(f"/api/v1/appointments/{fourth['id']}").json()["start"] == fourth["start"]
    # Moving the second session four weeks later is covered itself, but the fourth would
    # follow it past the authorization's end: refused too, and nothing moves.
    second = result["booked"][1]
    pushed = nurse.patch(
        f"/api/v1/appointments/{second['id']}",
        # Past the session's window too: the nurse overrides that; insurance still refuses.
        json={"start": f"{day(49)}T09:00:00-05:00", "override_reason": "patient's request"},
        headers={"If-Match": '"1"'},
    )
    assert pushed.status_code == 409 and "1 session(s)" in pushed.json()["detail"]
    after = nurse.get("/api/v1/appointments", params={"patient_id": course["patient_id"]})
    assert [a["start"] for a in after.json()["items"]] == [a["start"] for a in result["booked"]]


def test_an_unpaid_session_billing_settled_by_hand_stays_settled(
    nurse: httpx.Client, billing: httpx.Client
) -> None:
    course, _, booked = insured_course(nurse, billing, units_approved=1)
    for appt in booked[:2]:
        chairside = at(datetime.fromisoformat(appt["start"]) + timedelta(minutes=5))
        for step in ("check-in", "start", "complete"):
            r = nurse.post(f"/api/v1/appointments/{appt['id']}/{step}", headers=chairside)
            assert r.status_code == 200
    unpaid = [a for a in live(billing, course["patient_id"]) if "without cover" in a["detail"]]
    assert [a["appointment_id"] for a in unpaid] == [booked[1]["id"]]
    assert billing.post(f"/api/v1/alerts/{unpaid[0]['id']}/resolve").status_code == 200
    assert billing.post("/api/v1/billing/sweep", params={"everyone": True}).status_code == 200
    assert [a for a in live(billing, course["patient_id"]) if "without cover" in a["detail"]] == []
    cover = billing.get(f"/api/v1/appointments/{booked[1]['id']}").json()["coverage"]
    assert cover == {"state": "uncovered", "authorization_id": None, "reason": "written_off"}


def test_a_payer_change_reaches_its_patients_at_the_next_sweep(
    nurse: httpx.Client, billing: httpx.Client
) -> None:
    course, auth, _ = insured_course(nurse, billing)
    low = next(a for a in live(billing, course["patient_id"]) if a["kind"] == "auth_units_low")
    coverage = billing.get(f"/api/v1/coverages/{auth['coverage_id']}").json()
    payer_url = f"/api/v1/payers/{coverage['payer_id']}"
    slower = billing.patch(payer_url, json={"turnaround_days": 30}, headers={"If-Match": '"1"'})
    assert slower.status_code == 200
    assert billing.post("/api/v1/billing/sweep").json()["patients"] >= 1
    moved = next(a for a in live(billing, course["patient_id"]) if a["kind"] == "auth_units_low")
    assert moved["id"] == low["id"]  # the same alert, brought up to date
    earlier = date.fromisoformat(low["due_date"]) - timedelta(days=16)
    assert moved["due_date"] == earlier.isoformat()


def test_authorization_writes_need_preconditions_and_replay_safely(
    nurse: httpx.Client, billing: httpx.Client
) -> None:
    course, auth, _ = insured_course(nurse, billing)
    url = f"/api/v1/authorizations/{auth['id']}"
    assert billing.patch(url, json={"notes": "x"}).status_code == 428
    body = {
        "patient_id": course["patient_id"],
        "coverage_id": auth["coverage_id"],
        "service_code": "J1561",
        "valid_from": day(90),
        "valid_to": day(200),
        "units_approved": 6,
    }
    key = {"Idempotency-Key": f"renewal-{auth['id']}"}
    first = billing.post("/api/v1/authorizations", json=body, headers=key)
    again = billing.post("/api/v1/authorizations", json=body, headers=key)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    listed = billing.get("/api/v1/authorizations", params={"patient_id": course["patient_id"]})
    assert len(listed.json()["items"]) == 2
    assert (
        billing.post("/api/v1/authorizations", json={**body, "status": "expired"}).status_code
        == 422
    )


def test_an_authorization_starting_on_a_clock_change_covers_that_local_day(
    nurse: httpx.Client, billing: httpx.Client
) -> None:
    # Auckland falls back on Sunday 4 April 2027. A 09:00 session there is still 3 April in
    # UTC: cover is decided on the center's local date, so the authorization starting on the
    # 4th pays for it.
    center = make_center(nurse, timezone="Pacific/Auckland")
    make_chair(nurse, center["id"])
    change = date(2027, 4, 4)
    course = order(
        nurse,
        center["id"],
        diagnosis_code="G61.82",
        induction=None,
        start_date=change.isoformat(),
        preferred_weekdays=[6],
        maintenance={**MAINTENANCE, "cycles": 2},
    ).json()
    booked = nurse.post(
        f"/api/v1/courses/{course['id']}/book", json={"through": "2027-05-15"}
    ).json()["booked"]
    assert [local_day(a["start"]) for a in booked] == [change, change + timedelta(days=21)]
    assert booked[0]["start"].endswith("+12:00")  # after the change
    p = payer(billing)
    cover = billing.post(
        f"/api/v1/patients/{course['patient_id']}/coverages",
        json={"payer_id": p["id"], "member_id": "M-3", "effective_from": "2027-01-01"},
    ).json()
    r = billing.post(
        "/api/v1/authorizations",
        json={
            "patient_id": course["patient_id"],
            "coverage_id": cover["id"],
            "service_code": "J1561",
            "status": "approved",
            "valid_from": change.isoformat(),
            "valid_to": (change + timedelta(days=20)).isoformat(),
            "units_approved": 6,
        },
    )
    assert r.status_code == 201
    states = [billing.get(f"/api/v1/appointments/{a['id']}").json()["coverage"] for a in booked]
    assert [s["state"] for s in states] == ["covered", "uncovered"]
    assert states[1]["reason"] == "outside_period"
