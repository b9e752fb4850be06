"""What billing's work queue screen needs from the API, on both databases: each alert with the
names a biller reads (patient, payer, authorization number, assignee) read for the whole page
in one query; filters by assignee (someone, or nobody), by live status and by authorization;
whom an alert may be assigned to; the CSV export narrowed by the same filters; and the
sessions an authorization's burn-down is drawn from."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import event, select

from app.api.insurance import alerts_out
from core.db import Database
from insurance.models import Alert
from tests.support.factories import MONDAY, gamunex, make_patient, weekday_center
from tests.support.servers import Server, at

PRICE = Decimal("80.00")  # per 500 mg billing unit of the test's own product
SESSION_UNITS = 140  # 70 kg x 1 g/kg = 70 g = 140 billing units of 500 mg


def day(offset: int) -> str:
    return (MONDAY + timedelta(days=offset)).isoformat()


def priced_product(admin: httpx.Client) -> str:
    """A copy of the seeded Gamunex-C (J1561) with a price of its own."""
    seed = admin.get(f"/api/v1/products/{gamunex(admin)}").json()
    keep = (
        "hcpcs_code",
        "billing_unit_mg",
        "concentration_pct",
        "titration",
        "max_rate_mg_per_kg_min",
        "premed_minutes",
        "observation_minutes",
        "vial_sizes_g",
    )
    body = {k: seed[k] for k in keep}
    body.update(name=f"Gamunex-C queue {uuid.uuid4().hex[:8]}", price_per_unit=str(PRICE))
    r = admin.post("/api/v1/products", json=body)
    assert r.status_code == 201, r.text
    product_id: str = r.json()["id"]
    return product_id


def insured_course(
    admin: httpx.Client,
    nurse: httpx.Client,
    billing: httpx.Client,
    *,
    given_name: str = "Test",
    family_name: str = "Patient",
    visits: int = 4,
) -> dict[str, Any]:
    """A patient on MMN maintenance every 21 days from MONDAY with five sessions booked, and
    an approval for `visits` of them from a payer of their own: with four, the fifth session
    is not covered and the approval's units run low (two billing alerts, one per kind)."""
    center, _ = weekday_center(nurse)
    patient = make_patient(
        nurse, given_name=given_name, family_name=family_name, weight_kg=70, height_cm=165
    )
    r = nurse.post(
        "/api/v1/courses",
        json={
            "patient_id": patient["id"],
            "center_id": center["id"],
            "product_id": priced_product(admin),
            "diagnosis_code": "G61.82",
            "induction": None,
            "maintenance": {
                "dose_g_per_kg": 1,
                "interval_days": 21,
                "window_min_days": 21,
                "window_max_days": 28,
                "cycles": 5,
            },
            "start_date": MONDAY.isoformat(),
            "preferred_weekdays": [0],
            "preferred_start_time": "09:00",
        },
    )
    assert r.status_code == 201, r.text
    course = r.json()
    booked = nurse.post(f"/api/v1/courses/{course['id']}/book", json={"through": day(112)})
    sessions = booked.json()["booked"]
    assert len(sessions) == 5, booked.text
    payer = billing.post(
        "/api/v1/payers",
        json={
            "name": f"Payer {uuid.uuid4().hex[:8]}",
            "turnaround_days": 14,
            "expedited_turnaround_days": 3,
            "renewal_margin_days": 7,
        },
    ).json()
    cover = billing.post(
        f"/api/v1/patients/{patient['id']}/coverages",
        json={"payer_id": payer["id"], "member_id": "M-1", "effective_from": day(-30)},
    )
    assert cover.status_code == 201, cover.text
    number = f"PA-{uuid.uuid4().hex[:6].upper()}"
    auth = billing.post(
        "/api/v1/authorizations",
        json={
            "patient_id": patient["id"],
            "coverage_id": cover.json()["id"],
            "service_code": "J1561",
            "auth_number": number,
            "status": "approved",
            "valid_from": day(0),
            "valid_to": day(89),
            "units_type": "visits",
            "units_approved": visits,
        },
    )
    assert auth.status_code == 201, auth.text
    return {
        "patient": patient,
        "course": course,
        "sessions": sessions,
        "payer": payer,
        "auth": auth.json(),
    }


def alerts(api: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    """The alerts the filters give (live ones unless `status` says otherwise: booking before
    the approval came left resolved ones behind)."""
    chosen = {k: v for k, v in {"limit": 500, "status": "live", **params}.items() if v is not None}
    r = api.get("/api/v1/alerts", params=chosen)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def by_kind(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {a["kind"]: a for a in items}


def as_at(server: Server, role: str, now: datetime) -> httpx.Client:
    """A client for `role` whose requests the test server handles as at `now`."""
    headers = {**at(now), "Authorization": f"Bearer {server.tokens[role]}"}
    return httpx.Client(base_url=server.base_url, timeout=60, headers=headers)


def user_id(api: httpx.Client) -> str:
    me: str = api.get("/api/v1/auth/me").json()["id"]
    return me


# --- names on every alert ----------------------------------------------------------------------


def test_each_alert_names_its_patient_payer_authorization_and_assignee(
    admin: httpx.Client, nurse: httpx.Client, billing: httpx.Client
) -> None:
    made = insured_course(admin, nurse, billing, given_name="Amara", family_name="Nwosu")
    found = by_kind(alerts(billing, patient_id=made["patient"]["id"]))
    assert set(found) == {"auth_units_low", "session_uncovered"}
    low, uncovered = found["auth_units_low"], found["session_uncovered"]
    for alert in (low, uncovered):
        assert alert["patient_name"] == "Nwosu, Amara"
        assert alert["mrn"] == made["patient"]["mrn"]
        assert alert["payer_name"] == made["payer"]["name"]
        assert alert["assignee_email"] is None
    assert low["auth_number"] == made["auth"]["auth_number"]
    assert uncovered["authorization_id"] is None and uncovered["auth_number"] is None

    # The action's reply and the single alert carry them too: a row updates in place.
    taken = billing.post(f"/api/v1/alerts/{low['id']}/assign")
    assert taken.status_code == 200, taken.text
    assert taken.json()["assignee_email"] == "billing@test.local"
    assert taken.json()["patient_name"] == "Nwosu, Amara"
    one = billing.get(f"/api/v1/alerts/{low['id']}").json()
    assert (one["assignee_email"], one["auth_number"]) == (
        "billing@test.local",
        made["auth"]["auth_number"],
    )


def test_a_page_of_alerts_reads_its_names_in_one_query(
    server: Server, admin: httpx.Client, nurse: httpx.Client, billing: httpx.Client
) -> None:
    made = [insured_course(admin, nurse, billing) for _ in range(3)]
    patients = [uuid.UUID(m["patient"]["id"]) for m in made]

    async def statements_for(how_many: int) -> tuple[int, int]:
        db = Database(server.database_url)
        try:
            async with db.unit_of_work(write=False) as session:
                items = list(
                    await session.scalars(
                        select(Alert)
                        .where(Alert.patient_id.in_(patients))
                        .order_by(Alert.id)
                        .limit(how_many)
                    )
                )
                seen: list[str] = []

                def count(*args: Any) -> None:
                    seen.append(str(args[2]))

                event.listen(db.engine.sync_engine, "before_cursor_execute", count)
                try:
                    out = await alerts_out(session, items)
                finally:
                    event.remove(db.engine.sync_engine, "before_cursor_execute", count)
                assert all(a.patient_name == "Patient, Test" for a in out)
                return len(out), len(seen)
        finally:
            await db.dispose()

    assert asyncio.run(statements_for(1)) == (1, 1)
    assert asyncio.run(statements_for(6)) == (6, 1)  # not one per row


# --- filters -----------------------------------------------------------------------------------


def test_filter_by_assignee_someone_or_nobody(
    admin: httpx.Client, nurse: httpx.Client, billing: httpx.Client
) -> None:
    made = insured_course(admin, nurse, billing)
    patient = made["patient"]["id"]
    found = by_kind(alerts(billing, patient_id=patient))
    low, uncovered = found["auth_units_low"], found["session_uncovered"]
    admin_id = user_id(admin)
    r = billing.post(f"/api/v1/alerts/{low['id']}/assign", json={"assignee_id": admin_id})
    assert r.status_code == 200 and r.json()["assignee_email"] == "admin@test.local"

    def ids(**params: Any) -> list[str]:
        return [a["id"] for a in alerts(billing, patient_id=patient, **params)]

    assert ids(assigned_to=admin_id) == [low["id"]]
    assert ids(assigned_to="none") == [uncovered["id"]]
    assert ids(assigned_to=user_id(billing)) == []
    # Taken over by another biller: it moves from one filter to the other.
    assert billing.post(f"/api/v1/alerts/{low['id']}/assign").status_code == 200
    assert ids(assigned_to=admin_id) == []
    assert ids(assigned_to=user_id(billing)) == [low["id"]]
    # Neither an id nor `none`: refused, not read as "anyone".
    bad = billing.get("/api/v1/alerts", params={"assigned_to": "nobody"})
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")


def test_filter_by_live_status_and_by_authorization(
    admin: httpx.Client, nurse: httpx.Client, billing: httpx.Client
) -> None:
    made = insured_course(admin, nurse, billing)
    patient, auth_id = made["patient"]["id"], made["auth"]["id"]
    found = by_kind(alerts(billing, patient_id=patient))
    low, uncovered = found["auth_units_low"], found["session_uncovered"]
    assert [a["id"] for a in alerts(billing, authorization_id=auth_id)] == [low["id"]]

    assert billing.post(f"/api/v1/alerts/{low['id']}/acknowledge").status_code == 200
    note = "Paid by the secondary payer, ref 88-2"
    resolved = billing.post(f"/api/v1/alerts/{uncovered['id']}/resolve", json={"note": note})
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    # The note is kept on the alert (what was done about it), and read back.
    assert resolved.json()["note"] == note
    assert billing.get(f"/api/v1/alerts/{uncovered['id']}").json()["note"] == note

    live = alerts(billing, patient_id=patient, status="live")
    assert [(a["id"], a["status"]) for a in live] == [(low["id"], "acknowledged")]
    gone = alerts(billing, patient_id=patient, status="resolved")
    assert uncovered["id"] in [a["id"] for a in gone]
    assert all(a["status"] == "resolved" for a in gone)
    everything = alerts(billing, patient_id=patient, status=None)
    assert {a["id"] for a in everything} == {a["id"] for a in live + gone}
    # A resolved alert cannot be acted on again: a 409 problem with a reason to show.
    again = billing.post(f"/api/v1/alerts/{uncovered['id']}/acknowledge")
    assert again.status_code == 409
    assert "resolved" in again.json()["detail"]


def test_filters_combine_with_the_queue_order_and_pages(
    admin: httpx.Client, nurse: httpx.Client, billing: httpx.Client
) -> None:
    payer = insured_course(admin, nurse, billing)["payer"]["id"]
    every = alerts(billing, payer_id=payer, status="live", assigned_to="none", queue="billing")
    assert len(every) == 2
    paged: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {
            "payer_id": payer,
            "status": "live",
            "assigned_to": "none",
            "limit": 1,
        }
        if cursor:
            params["cursor"] = cursor
        page = billing.get("/api/v1/alerts", params=params).json()
        paged += [a["id"] for a in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert paged == [a["id"] for a in every]


# --- whom an alert may be assigned to ----------------------------------------------------------


def test_assignees_are_the_active_billers_and_admins(
    admin: httpx.Client, nurse: httpx.Client, billing: httpx.Client
) -> None:
    def new_user(role: str) -> dict[str, Any]:
        r = admin.post(
            "/api/v1/users",
            json={
                "email": f"{role}-{uuid.uuid4().hex[:6]}@test.local",
                "role": role,
                "password": "long-enough-password",
            },
        )
        assert r.status_code == 201, r.text
        user: dict[str, Any] = r.json()
        return user

    other, gone = new_user("billing"), new_user("billing")
    r = admin.patch(
        f"/api/v1/users/{gone['id']}", json={"active": False}, headers={"If-Match": '"1"'}
    )
    assert r.status_code == 200, r.text
    nurse_too = new_user("nurse")

    listed = billing.get("/api/v1/alerts/assignees")
    assert listed.status_code == 200, listed.text
    people = listed.json()
    emails = [p["email"] for p in people]
    assert {"billing@test.local", "admin@test.local", other["email"]} <= set(emails)
    assert gone["email"] not in emails and nurse_too["email"] not in emails
    assert "nurse@test.local" not in emails
    assert emails == sorted(emails)
    assert {p["role"] for p in people} <= {"billing", "admin"}
    assert set(people[0]) == {"id", "email", "role"}
    # Whom the list offers, assign accepts.
    made = insured_course(admin, nurse, billing)
    alert = alerts(billing, patient_id=made["patient"]["id"])[0]
    r = billing.post(f"/api/v1/alerts/{alert['id']}/assign", json={"assignee_id": other["id"]})
    assert r.status_code == 200 and r.json()["assignee_email"] == other["email"]
    # Nurses do not assign billing's work, nor list who may take it.
    assert nurse.get("/api/v1/alerts/assignees").status_code == 403


# --- the export, narrowed ----------------------------------------------------------------------


def test_the_csv_takes_the_queue_filters_and_names_the_assignee(
    admin: httpx.Client, nurse: httpx.Client, billing: httpx.Client
) -> None:
    made = insured_course(admin, nurse, billing, given_name="Lior", family_name="Ben-David")
    payer = made["payer"]["id"]
    found = by_kind(alerts(billing, payer_id=payer))
    low = found["auth_units_low"]
    assert billing.post(f"/api/v1/alerts/{low['id']}/assign").status_code == 200

    def rows(**params: Any) -> list[dict[str, str]]:
        sheet = billing.get("/api/v1/billing/worklist.csv", params=params)
        assert sheet.status_code == 200, sheet.text
        return list(csv.DictReader(io.StringIO(sheet.text)))

    mine = rows(payer_id=payer, assigned_to=user_id(billing))
    assert [r["alert_id"] for r in mine] == [low["id"]]
    assert mine[0]["assignee"] == "billing@test.local"
    assert mine[0]["patient"] == "Ben-David, Lior"
    assert mine[0]["auth_number"] == made["auth"]["auth_number"]
    nobodys = rows(payer_id=payer, assigned_to="none")
    assert [r["alert_id"] for r in nobodys] == [found["session_uncovered"]["id"]]
    assert nobodys[0]["assignee"] == ""
    assert Decimal(nobodys[0]["amount_at_risk"]) == PRICE * SESSION_UNITS
    assert [r["alert_id"] for r in rows(payer_id=payer, kind="auth_units_low")] == [low["id"]]
    # Unfiltered it is still the whole live list, these two among it.
    assert {low["id"], found["session_uncovered"]["id"]} <= {r["alert_id"] for r in rows()}
    assert billing.get("/api/v1/billing/worklist.csv", params={"kind": "x"}).status_code == 422


# --- the burn-down's data ----------------------------------------------------------------------


def test_usage_lists_the_sessions_that_draw_on_the_authorization(
    server: Server, admin: httpx.Client, nurse: httpx.Client, billing: httpx.Client
) -> None:
    made = insured_course(admin, nurse, billing)
    url = f"/api/v1/authorizations/{made['auth']['id']}/usage"
    # Without asking, the figures only, as ever.
    assert set(billing.get(url).json()) == {
        "units_approved",
        "units_used",
        "units_scheduled",
        "units_remaining",
        "projected_exhaustion_date",
        "renew_by",
    }
    url += "?include=sessions"
    usage = billing.get(url).json()
    sessions = made["sessions"]
    assert usage["course_id"] == made["course"]["id"]
    assert [(s["appointment_id"], s["units"], s["given"]) for s in usage["sessions"]] == [
        (s["id"], 1, False) for s in sessions[:4]
    ]  # four visits approved: the fifth draws nothing
    assert [s["date"] for s in usage["sessions"]] == [day(21 * i) for i in range(4)]
    assert usage["units_scheduled"] == 4 and usage["units_remaining"] == 0

    # The first session given: its visit is used, not held, on the day it was given.
    start = datetime.fromisoformat(sessions[0]["start"])
    for step, minutes in (("check-in", -30), ("start", 0), ("complete", 180)):
        with as_at(server, "nurse", start + timedelta(minutes=minutes)) as c:
            r = c.post(f"/api/v1/appointments/{sessions[0]['id']}/{step}")
            assert r.status_code == 200, r.text
    after = billing.get(url).json()
    assert after["units_used"] == 1 and after["units_scheduled"] == 3
    assert [(s["appointment_id"], s["given"]) for s in after["sessions"]] == [
        (sessions[0]["id"], True),
        *[(s["id"], False) for s in sessions[1:4]],
    ]
    assert after["sessions"][0]["date"] == day(0)
    # `today` is the center's date, as the request's clock has it.
    later = datetime.fromisoformat(sessions[1]["start"]) + timedelta(hours=12)
    with as_at(server, "billing", later) as c:
        assert c.get(url).json()["today"] == day(21)
