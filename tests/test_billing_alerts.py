"""Billing alerts as a biller reads them: wording that matches the authorization's usage at
every recompute, money at risk wherever the drug has a price, units named as the payer counts
them, and a work queue ranked by urgency, then money, then time to the session."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from app.demo import load_demo
from core.db import Database
from insurance import alert_rules, priority, rules
from insurance.models import Alert
from scheduling.catalog.models import Product
from scheduling.courses.models import Course
from tests.support.factories import MONDAY, gamunex, local_day, make_patient, weekday_center
from tests.support.servers import Server, at

PRICE = Decimal("80.00")  # per 500 mg billing unit of the test's own product
SESSION_UNITS = 140  # 70 kg x 1 g/kg = 70 g = 140 units of 500 mg
SESSION_PRICE = PRICE * SESSION_UNITS


def day(offset: int) -> str:
    return (MONDAY + timedelta(days=offset)).isoformat()


def signed_in_at(server: Server, role: str, now: datetime) -> dict[str, str]:
    """Headers for a request by `role` handled as at `now` (tokens keep the real clock)."""
    return {**at(now), "Authorization": f"Bearer {server.tokens[role]}"}


def priced_product(admin: httpx.Client, price: Decimal | None = PRICE) -> str:
    """A copy of the seeded Gamunex-C (J1561, 500 mg billing unit) with a price of its own, so
    no other test's figures change."""
    seed = admin.get(f"/api/v1/products/{gamunex(admin)}").json()
    body = {
        k: seed[k]
        for k in (
            "hcpcs_code",
            "billing_unit_mg",
            "concentration_pct",
            "titration",
            "max_rate_mg_per_kg_min",
            "premed_minutes",
            "observation_minutes",
            "vial_sizes_g",
        )
    }
    body["name"] = f"Gamunex-C test {uuid.uuid4().hex[:8]}"
    body["price_per_unit"] = None if price is None else str(price)
    r = admin.post("/api/v1/products", json=body)
    assert r.status_code == 201, r.text
    product_id: str = r.json()["id"]
    return product_id


def course_on(
    nurse: httpx.Client,
    product_id: str,
    *,
    cycles: int = 12,
    weight_kg: int = 70,
    center_id: str | None = None,
    through: int = 90,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """MMN maintenance, 1 g/kg every 21 days from MONDAY, booked through `through` days."""
    if center_id is None:
        center_id = weekday_center(nurse)[0]["id"]
    patient = make_patient(nurse, weight_kg=weight_kg, height_cm=165, sex="female")
    r = nurse.post(
        "/api/v1/courses",
        json={
            "patient_id": patient["id"],
            "center_id": center_id,
            "product_id": product_id,
            "diagnosis_code": "G61.82",
            "induction": None,
            "maintenance": {
                "dose_g_per_kg": 1,
                "interval_days": 21,
                "window_min_days": 21,
                "window_max_days": 28,
                "cycles": cycles,
            },
            "start_date": MONDAY.isoformat(),
            "preferred_weekdays": [0],
            "preferred_start_time": "09:00",
        },
    )
    assert r.status_code == 201, r.text
    course: dict[str, Any] = r.json()
    booked = nurse.post(f"/api/v1/courses/{course['id']}/book", json={"through": day(through)})
    assert booked.status_code == 200, booked.text
    sessions: list[dict[str, Any]] = booked.json()["booked"]
    return course, sessions


def new_payer(billing: httpx.Client, **overrides: Any) -> str:
    body = {
        "name": f"Payer {uuid.uuid4().hex[:8]}",
        "turnaround_days": 14,
        "expedited_turnaround_days": 3,
        "renewal_margin_days": 7,
        **overrides,
    }
    r = billing.post("/api/v1/payers", json=body)
    assert r.status_code == 201, r.text
    payer_id: str = r.json()["id"]
    return payer_id


def covered_by(billing: httpx.Client, patient_id: str, payer_id: str) -> str:
    r = billing.post(
        f"/api/v1/patients/{patient_id}/coverages",
        json={"payer_id": payer_id, "member_id": "M-1", "effective_from": day(-30)},
    )
    assert r.status_code == 201, r.text
    coverage_id: str = r.json()["id"]
    return coverage_id


def authorize(billing: httpx.Client, patient_id: str, coverage_id: str, **fields: Any) -> str:
    body = {
        "patient_id": patient_id,
        "coverage_id": coverage_id,
        "service_code": "J1561",
        "status": "approved",
        "valid_from": day(0),
        "valid_to": day(179),
        "units_type": "billing_units",
        "units_approved": 900,
        **fields,
    }
    r = billing.post("/api/v1/authorizations", json=body)
    assert r.status_code == 201, r.text
    auth_id: str = r.json()["id"]
    return auth_id


def live(api: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = api.get("/api/v1/alerts", params={"limit": 500, **params}).json()[
        "items"
    ]
    return [a for a in items if a["status"] != "resolved"]


def give(server: Server, appt: dict[str, Any], **record: Any) -> None:
    """Check in, start and complete a session at the times a nurse would."""
    start = datetime.fromisoformat(appt["start"])
    for step, when in (("check-in", -30), ("start", 0), ("complete", 180)):
        headers = signed_in_at(server, "nurse", start + timedelta(minutes=when))
        with httpx.Client(base_url=server.base_url, timeout=60, headers=headers) as c:
            body = record if step == "complete" else None
            r = c.post(f"/api/v1/appointments/{appt['id']}/{step}", json=body)
            assert r.status_code == 200, r.text


def renewal_alert(billing: httpx.Client, auth_id: str) -> dict[str, Any]:
    (alert,) = [a for a in live(billing, kind="auth_units_low") if a["authorization_id"] == auth_id]
    return alert


def says_usage(alert: dict[str, Any], usage: dict[str, Any], label: str) -> None:
    assert alert["detail"] == (
        f"{usage['units_remaining']} of {usage['units_approved']} {label} left; "
        f"runs out {usage['projected_exhaustion_date']}; renew by {usage['renew_by']}"
    )
    assert alert["due_date"] == usage["renew_by"]


# --- alert wording follows the facts ---------------------------------------------------------


def test_a_retroactive_approval_shows_the_units_it_drew_at_once(
    server: Server, admin: httpx.Client, nurse: httpx.Client, billing: httpx.Client
) -> None:
    """The issue's '157 of 900 units left' while usage said 91: a session given without cover
    drew its units from an approval that arrived later, but the alert counted them as still
    left until a sweep. The draw also took the planned dose, not the dose given."""
    course, booked = course_on(nurse, priced_product(admin))
    coverage = covered_by(billing, course["patient_id"], new_payer(billing))
    give(server, booked[0], dose_given_g=33)  # 33 g = 66 units, no authorization yet
    auth_id = authorize(billing, course["patient_id"], coverage)

    usage = billing.get(f"/api/v1/authorizations/{auth_id}/usage").json()
    left = renewal_alert(billing, auth_id)["detail"].split(" of ")[0]
    assert int(left) == usage["units_remaining"]  # was 340 of 900 while usage said 200
    assert billing.get(f"/api/v1/authorizations/{auth_id}").json()["units_used"] == 66
    assert usage["units_remaining"] == 900 - 66 - 4 * SESSION_UNITS
    says_usage(renewal_alert(billing, auth_id), usage, "billing units (500 mg)")
    # A sweep finds nothing to correct.
    before = renewal_alert(billing, auth_id)
    assert billing.post("/api/v1/billing/sweep", params={"everyone": True}).status_code == 200
    assert renewal_alert(billing, auth_id) == before


def test_alert_text_follows_completions_and_unit_changes(
    server: Server, admin: httpx.Client, nurse: httpx.Client, billing: httpx.Client
) -> None:
    course, booked = course_on(nurse, priced_product(admin))
    coverage = covered_by(billing, course["patient_id"], new_payer(billing))
    auth_id = authorize(billing, course["patient_id"], coverage)
    url = f"/api/v1/authorizations/{auth_id}"
    says_usage(
        renewal_alert(billing, auth_id),
        billing.get(f"{url}/usage").json(),
        "billing units (500 mg)",
    )

    give(server, booked[0], dose_given_g=37)  # 74 units drawn, not the planned 140
    usage = billing.get(f"{url}/usage").json()
    assert usage["units_used"] == 74
    says_usage(renewal_alert(billing, auth_id), usage, "billing units (500 mg)")

    etag = billing.get(url).headers["ETag"]
    r = billing.patch(url, json={"units_approved": 850}, headers={"If-Match": etag})
    assert r.status_code == 200, r.text
    usage = billing.get(f"{url}/usage").json()
    assert usage["units_approved"] == 850
    says_usage(renewal_alert(billing, auth_id), usage, "billing units (500 mg)")
    before = renewal_alert(billing, auth_id)
    assert billing.post("/api/v1/billing/sweep", params={"everyone": True}).status_code == 200
    assert renewal_alert(billing, auth_id) == before


# --- money at risk and units in the payer's terms --------------------------------------------


def test_alerts_price_what_is_at_stake_in_billing_units(
    admin: httpx.Client, nurse: httpx.Client, billing: httpx.Client
) -> None:
    # 560 units pay for four 140-unit sessions: the fifth (booked) and the seven the course
    # still has to book are what the renewal is worth.
    course, booked = course_on(nurse, priced_product(admin))
    coverage = covered_by(billing, course["patient_id"], new_payer(billing))
    auth_id = authorize(billing, course["patient_id"], coverage, units_approved=560)
    alerts = live(billing, patient_id=course["patient_id"])
    assert sorted(a["kind"] for a in alerts) == ["auth_units_low", "session_uncovered"]
    uncovered = next(a for a in alerts if a["kind"] == "session_uncovered")
    assert uncovered["appointment_id"] == booked[4]["id"]
    assert Decimal(str(uncovered["amount_at_risk"])) == SESSION_PRICE
    assert uncovered["detail"] == (
        f"session on {local_day(booked[4]['start'])} is not covered: the authorized billing "
        f"units (500 mg) are used up; it needs {SESSION_UNITS}"
    )
    low = renewal_alert(billing, auth_id)
    assert low["detail"].startswith("0 of 560 billing units (500 mg) left; ")
    assert Decimal(str(low["amount_at_risk"])) == SESSION_PRICE * (1 + 12 - 5)

    sheet = billing.get("/api/v1/billing/worklist.csv")
    rows = {r["alert_id"]: r for r in csv.DictReader(io.StringIO(sheet.text))}
    assert Decimal(rows[uncovered["id"]]["amount_at_risk"]) == SESSION_PRICE
    assert "billing units (500 mg)" in rows[low["id"]]["detail"]


def test_visit_authorizations_count_visits_and_still_price_the_drug(
    admin: httpx.Client, nurse: httpx.Client, billing: httpx.Client
) -> None:
    course, _booked = course_on(nurse, priced_product(admin), cycles=5)
    coverage = covered_by(billing, course["patient_id"], new_payer(billing))
    auth_id = authorize(
        billing, course["patient_id"], coverage, units_type="visits", units_approved=4
    )
    alerts = live(billing, patient_id=course["patient_id"])
    uncovered = next(a for a in alerts if a["kind"] == "session_uncovered")
    assert uncovered["detail"].endswith("the authorized visits are used up; it needs 1")
    assert Decimal(str(uncovered["amount_at_risk"])) == SESSION_PRICE
    low = renewal_alert(billing, auth_id)
    assert low["detail"].startswith("0 of 4 visits left; ")
    assert Decimal(str(low["amount_at_risk"])) == SESSION_PRICE  # the course ends at five
    assert all("units" not in a["detail"] for a in alerts)


def test_a_loading_course_still_asks_for_renewal_of_its_maintenance(
    admin: httpx.Client, nurse: httpx.Client, billing: httpx.Client
) -> None:
    # Five induction days, then maintenance (four cycles) of which two are booked: seven
    # visits pay for what is booked, the two maintenance sessions still to book need a
    # renewal. (An induction's days were counted as maintenance cycles: no alert at all.)
    center = weekday_center(nurse)[0]["id"]
    patient = make_patient(nurse, weight_kg=70, height_cm=165, sex="female")
    r = nurse.post(
        "/api/v1/courses",
        json={
            "patient_id": patient["id"],
            "center_id": center,
            "product_id": priced_product(admin),
            "diagnosis_code": "G61.81",
            "induction": {"total_dose_g_per_kg": 2, "days": 5},
            "maintenance": {
                "dose_g_per_kg": 1,
                "interval_days": 21,
                "window_min_days": 21,
                "window_max_days": 28,
                "cycles": 4,
            },
            "start_date": MONDAY.isoformat(),
            "preferred_weekdays": [0],
            "preferred_start_time": "09:00",
        },
    )
    assert r.status_code == 201, r.text
    booked = nurse.post(f"/api/v1/courses/{r.json()['id']}/book", json={"through": day(50)})
    assert len(booked.json()["booked"]) == 7, booked.text
    coverage = covered_by(billing, patient["id"], new_payer(billing))
    auth_id = authorize(billing, patient["id"], coverage, units_type="visits", units_approved=7)
    low = renewal_alert(billing, auth_id)
    assert low["detail"].startswith("0 of 7 visits left; ")
    assert Decimal(str(low["amount_at_risk"])) == SESSION_PRICE * 2


def test_without_a_price_no_amount_is_made_up(
    admin: httpx.Client, nurse: httpx.Client, billing: httpx.Client
) -> None:
    course, _ = course_on(nurse, priced_product(admin, None), cycles=5)
    covered_by(billing, course["patient_id"], new_payer(billing))
    alerts = live(billing, patient_id=course["patient_id"])
    assert alerts and all(a["amount_at_risk"] is None for a in alerts)


def test_the_demo_catalog_has_prices_and_its_alerts_carry_the_amount(migrated_url: str) -> None:
    async def load_and_read() -> tuple[dict[str, Decimal | None], list[Alert], dict[Any, Any]]:
        await load_demo(migrated_url, only_if_empty=True)
        db = Database(migrated_url)
        try:
            async with db.unit_of_work(write=False) as session:
                products = await session.execute(select(Product.hcpcs_code, Product.price_per_unit))
                prices = {code: price for code, price in products}
                alerts = list(await session.scalars(select(Alert).where(Alert.status == "open")))
                drugs = await session.execute(
                    select(Course.patient_id, Product.price_per_unit).join(
                        Product, Product.id == Course.product_id
                    )
                )
                return prices, alerts, dict(list(drugs))
        finally:
            await db.dispose()

    prices, alerts, price_of_patient = asyncio.run(load_and_read())
    ivig = ("J1459", "J1561", "J1568", "J1569", "J1576")
    for code in ivig:
        price = prices[code]
        assert price is not None and Decimal(50) <= price <= Decimal(150), (code, price)
    assert alerts and {a.kind for a in alerts} == {"session_uncovered"}
    for alert in alerts:
        assert alert.amount_at_risk is not None and alert.amount_at_risk > 0
        assert alert.amount_at_risk % price_of_patient[alert.patient_id] == 0  # whole units
        assert alert.detail.startswith("session on ")  # dates and reasons, no patient data


# --- severity and the order of the queue -----------------------------------------------------


@given(st.integers(-400, 400), st.one_of(st.none(), st.integers(0, 365)))
def test_a_session_nobody_pays_is_never_just_information(days: int, turnaround: int | None) -> None:
    assert priority.uncovered_session_severity(days, turnaround) in ("critical", "warning")


@given(st.integers(-400, priority.DAYS_AWAY), st.one_of(st.none(), st.integers(0, 365)))
def test_a_session_days_away_or_past_is_critical_whatever_the_payer(
    days: int, turnaround: int | None
) -> None:
    assert priority.uncovered_session_severity(days, turnaround) == "critical"


def test_a_session_inside_the_payers_turnaround_is_critical_weeks_away_a_warning() -> None:
    assert priority.uncovered_session_severity(14, 14) == "critical"  # an answer comes too late
    assert priority.uncovered_session_severity(15, 14) == "warning"
    assert priority.uncovered_session_severity(8, None) == "warning"  # no payer: a week
    assert priority.uncovered_session_severity(8, 2) == "warning"
    assert priority.uncovered_session_severity(60, 30) == "warning"


@given(st.integers(-400, 400), st.integers(0, 30), st.one_of(st.none(), st.integers(0, 365)))
def test_severity_never_eases_as_the_session_nears(
    days: int, sooner_by: int, turnaround: int | None
) -> None:
    rank = priority.SEVERITIES.index
    later = rank(priority.uncovered_session_severity(days, turnaround))
    sooner = rank(priority.uncovered_session_severity(days - sooner_by, turnaround))
    assert sooner <= later


money = st.one_of(st.none(), st.decimals(0, 100_000, places=2))
alert_values = st.tuples(st.sampled_from(priority.SEVERITIES), money, st.dates())


@given(st.lists(alert_values, max_size=30))
def test_the_queue_ranks_by_severity_then_money_then_time(alerts: list[Any]) -> None:
    ranked = sorted(alerts, key=lambda a: priority.queue_key(*a))
    for (sev_a, amount_a, due_a), (sev_b, amount_b, due_b) in itertools.pairwise(ranked):
        rank = priority.SEVERITIES.index
        assert rank(sev_a) <= rank(sev_b)
        if sev_a == sev_b:
            assert (amount_a or 0) >= (amount_b or 0)
            if (amount_a or 0) == (amount_b or 0):
                assert due_a <= due_b


def test_an_uncovered_session_weeks_away_is_a_warning_and_days_away_critical(
    server: Server, admin: httpx.Client, nurse: httpx.Client, billing: httpx.Client
) -> None:
    course, booked = course_on(nurse, priced_product(admin), cycles=5)
    coverage = covered_by(billing, course["patient_id"], new_payer(billing, turnaround_days=10))
    authorize(billing, course["patient_id"], coverage, units_type="visits", units_approved=4)
    fifth = booked[4]
    (alert,) = live(billing, patient_id=course["patient_id"], kind="session_uncovered")
    assert alert["severity"] == "warning"  # months away today
    # Ten days before it, an authorization asked for now comes back too late: critical.
    when = datetime.fromisoformat(fifth["start"]) - timedelta(days=10)
    url = f"/api/v1/coverages/{coverage}"
    etag = billing.get(url).headers["ETag"]
    headers = {**signed_in_at(server, "billing", when), "If-Match": etag}
    with httpx.Client(base_url=server.base_url, timeout=60, headers=headers) as c:
        assert c.patch(url, json={"group_number": "G-2"}).status_code == 200
    (alert,) = live(billing, patient_id=course["patient_id"], kind="session_uncovered")
    assert alert["severity"] == "critical"


def test_the_work_queue_and_its_export_rank_by_severity_money_then_time(
    server: Server, admin: httpx.Client, nurse: httpx.Client, billing: httpx.Client
) -> None:
    # Two patients of one payer, no authorization: every session is uncovered. The heavier
    # patient's sessions are worth more; one of the lighter patient's is days away.
    product = priced_product(admin)
    center = weekday_center(nurse)[0]["id"]
    payer = new_payer(billing)
    light, light_sessions = course_on(nurse, product, cycles=3, center_id=center, through=60)
    heavy, heavy_sessions = course_on(
        nurse, product, cycles=3, weight_kg=90, center_id=center, through=60
    )
    covered_by(billing, heavy["patient_id"], payer)
    light_coverage = covered_by(billing, light["patient_id"], payer)
    when = datetime.fromisoformat(light_sessions[0]["start"]) - timedelta(days=3)
    url = f"/api/v1/coverages/{light_coverage}"
    headers = {
        **signed_in_at(server, "billing", when),
        "If-Match": billing.get(url).headers["ETag"],
    }
    with httpx.Client(base_url=server.base_url, timeout=60, headers=headers) as c:
        assert c.patch(url, json={"group_number": "G-3"}).status_code == 200

    queue = live(billing, payer_id=payer)
    expected = [light_sessions[0], *heavy_sessions, *light_sessions[1:]]
    assert [a["appointment_id"] for a in queue] == [s["id"] for s in expected]
    assert [a["severity"] for a in queue] == ["critical"] + ["warning"] * 5
    keys = [
        priority.queue_key(
            a["severity"], Decimal(str(a["amount_at_risk"])), date.fromisoformat(a["due_date"])
        )
        for a in queue
    ]
    assert keys == sorted(keys)
    # Page by page, the same order.
    paged: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"payer_id": payer, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = billing.get("/api/v1/alerts", params=params).json()
        paged += [a["id"] for a in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert paged == [a["id"] for a in queue]
    sheet = billing.get("/api/v1/billing/worklist.csv")
    ids = {a["id"] for a in queue}
    rows = [r["alert_id"] for r in csv.DictReader(io.StringIO(sheet.text)) if r["alert_id"] in ids]
    assert rows == [a["id"] for a in queue]


# --- the pure rules behind the wording -------------------------------------------------------


def test_units_are_named_as_the_payer_counts_them() -> None:
    assert rules.units_label("billing_units", 500) == "billing units (500 mg)"
    assert rules.units_label("billing_units", 10) == "billing units (10 mg)"
    assert rules.units_label("visits", 500) == "visits"
    assert rules.units_label("billing_units", None) == "billing units"  # drug unknown


def test_an_authorization_that_draws_units_counts_them_used_and_gone() -> None:
    grant = rules.Grant(
        uuid.uuid4(), "approved", "J1561", None, MONDAY, MONDAY, "billing_units", 900
    )
    auth = alert_rules.Auth(grant, 900, 0, uuid.uuid4(), 14, 7, 14)
    drew = auth.drew(66)
    assert (drew.units_used, drew.grant.units_left) == (66, 834)
    assert drew.units_approved - drew.units_used == drew.grant.units_left


def test_an_uncovered_session_is_looked_at_again_the_day_it_turns_critical() -> None:
    today = date(2027, 3, 1)
    need = rules.Need(uuid.uuid4(), today + timedelta(days=30), "J1561", None, Decimal(70), 500)
    session = alert_rules.Session(
        need, rules.Allocation(need.appointment_id, None, 0, "no_authorization"), PRICE
    )
    payer = alert_rules.CoverageTerm(uuid.uuid4(), uuid.uuid4(), today, None, 14)
    review = alert_rules.next_review(today, [session], [], [payer], [])
    assert review == today + timedelta(days=16)  # 14 days of turnaround before the session

    def severity(on: date) -> str:
        (alert,) = alert_rules.patient_alerts(on, [session], [], [payer], [])
        return alert.severity

    assert severity(review - timedelta(days=1)) == "warning"
    assert severity(review) == "critical"
