"""When things may happen to a visit: no booking or move into the past unless it records a
visit after the fact; check-in from its local day, `checkin_opens_minutes` before the start;
start after check-in; complete after start; no-show once the start has passed.

The first tests use the real clock (the defects issue 12 saw on main); the others make the
test server handle a request as at a chosen instant (`Chairside-Test-Now`)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.api import middleware
from app.main import create_app
from app.settings import Settings
from scheduling.appointments.rules import checkin_opens, past_start_problem, timing_problem
from tests.support.factories import book, make_center, make_chair, make_patient
from tests.support.servers import at

NEW_YORK = ZoneInfo("America/New_York")


def local(day: datetime, hhmm: str) -> str:
    """`hhmm` on `day`'s date in New York, as an ISO instant."""
    wall = time.fromisoformat(hhmm)
    return datetime.combine(day.date(), wall, NEW_YORK).isoformat()


def test_a_booking_in_the_past_needs_a_reason_and_keeps_it(nurse: httpx.Client) -> None:
    center = make_center(nurse)  # open every day 07:00-19:00 New York time
    chair = make_chair(nurse, center["id"])
    patient = make_patient(nurse)["id"]
    ten_days_ago = local(datetime.now(NEW_YORK) - timedelta(days=10), "10:00")
    r = book(nurse, patient, chair["id"], ten_days_ago, 60)
    assert r.status_code == 422 and "record_reason" in r.json()["detail"]
    assert (
        book(nurse, patient, chair["id"], ten_days_ago, 60, record_reason="  ").status_code == 422
    )
    r = book(
        nurse, patient, chair["id"], ten_days_ago, 60, record_reason="paper chart, entered late"
    )
    assert r.status_code == 201, r.text
    history = nurse.get(f"/api/v1/appointments/{r.json()['id']}/history").json()
    assert [(h["action"], h["reason"]) for h in history] == [
        ("booked", "paper chart, entered late")
    ]


def test_a_move_into_the_past_needs_a_reason(nurse: httpx.Client) -> None:
    center = make_center(nurse)
    chair = make_chair(nurse, center["id"])
    tomorrow = local(datetime.now(NEW_YORK) + timedelta(days=1), "10:00")
    appt = book(nurse, make_patient(nurse)["id"], chair["id"], tomorrow, 60).json()
    url = f"/api/v1/appointments/{appt['id']}"
    yesterday = local(datetime.now(NEW_YORK) - timedelta(days=1), "10:00")
    r = nurse.patch(url, json={"start": yesterday}, headers={"If-Match": '"1"'})
    assert r.status_code == 422 and "record_reason" in r.json()["detail"]
    r = nurse.patch(
        url,
        json={"start": yesterday, "record_reason": "came a day early; chart fixed"},
        headers={"If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text
    assert nurse.get(f"{url}/history").json()[-1]["reason"] == "came a day early; chart fixed"


def test_a_cancel_keeps_its_reason_and_only_a_cancel_or_no_show_takes_one(
    nurse: httpx.Client,
) -> None:
    center = make_center(nurse)
    chair = make_chair(nurse, center["id"])
    tomorrow = local(datetime.now(NEW_YORK) + timedelta(days=1), "10:00")
    appt = book(nurse, make_patient(nurse)["id"], chair["id"], tomorrow, 60).json()
    url = f"/api/v1/appointments/{appt['id']}"
    soon = at(datetime.fromisoformat(tomorrow) - timedelta(minutes=30))
    r = nurse.post(f"{url}/check-in", json={"reason": "arrived early"}, headers=soon)
    assert r.status_code == 422 and "reason" in r.json()["detail"], r.text
    assert nurse.post(f"{url}/cancel", json={"reason": "ok"}).status_code == 422  # too short
    r = nurse.post(f"{url}/cancel", json={"reason": "weight", "weight_kg": 70})
    assert r.status_code == 422 and "record" in r.json()["detail"], r.text
    assert nurse.get(url).json()["status"] == "booked"  # nothing half done
    r = nurse.post(f"{url}/cancel", json={"reason": "  Patient unwell: fever since Sunday "})
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    history = nurse.get(f"{url}/history").json()
    assert [(h["action"], h["reason"]) for h in history] == [
        ("booked", None),
        ("cancel", "Patient unwell: fever since Sunday"),
    ]


def test_a_visit_days_ahead_cannot_be_progressed_today(nurse: httpx.Client) -> None:
    """Reproduces issue 12: five days ahead, check-in, start, complete and no-show all 200."""
    center = make_center(nurse)
    chair = make_chair(nurse, center["id"])
    ahead = local(datetime.now(NEW_YORK) + timedelta(days=5), "10:00")
    appt = book(nurse, make_patient(nurse)["id"], chair["id"], ahead, 60).json()
    url = f"/api/v1/appointments/{appt['id']}"
    for action in ("check-in", "start", "complete", "no-show"):
        r = nurse.post(f"{url}/{action}")
        assert r.status_code == 409, (action, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    assert "check-in opens at 08:00" in nurse.post(f"{url}/check-in").json()["detail"]
    assert "start has passed" in nurse.post(f"{url}/no-show").json()["detail"]
    assert nurse.get(url).json()["status"] == "booked"


def test_check_in_opens_before_the_start_as_the_center_says(nurse: httpx.Client) -> None:
    center = make_center(nurse, checkin_opens_minutes=60)
    chair = make_chair(nurse, center["id"])
    appt = book(nurse, make_patient(nurse)["id"], chair["id"], "2027-02-02T10:00:00-05:00").json()
    url = f"/api/v1/appointments/{appt['id']}"
    start = datetime.fromisoformat(appt["start"])
    early = nurse.post(f"{url}/check-in", headers=at(start - timedelta(minutes=61)))
    assert early.status_code == 409 and "09:00" in early.json()["detail"]
    # No-show only once the start has passed; check-in stays open after it (a late patient)
    # until the visit's day ends.
    assert nurse.post(f"{url}/no-show", headers=at(start - timedelta(minutes=1))).status_code == 409
    assert nurse.post(f"{url}/start", headers=at(start)).status_code == 409  # not checked in
    next_day = nurse.post(f"{url}/check-in", headers=at(start + timedelta(hours=15)))
    assert next_day.status_code == 409 and "closed" in next_day.json()["detail"]
    assert (
        nurse.post(f"{url}/check-in", headers=at(start + timedelta(minutes=5))).status_code == 200
    )
    assert nurse.post(f"{url}/start", headers=at(start + timedelta(minutes=9))).status_code == 200
    done = nurse.post(f"{url}/complete", headers=at(start + timedelta(hours=3)))
    assert done.status_code == 200 and done.json()["status"] == "completed"


def test_no_show_once_the_start_has_passed(nurse: httpx.Client) -> None:
    center = make_center(nurse)
    chair = make_chair(nurse, center["id"])
    appt = book(nurse, make_patient(nurse)["id"], chair["id"], "2027-02-03T09:00:00-05:00").json()
    start = datetime.fromisoformat(appt["start"])
    url = f"/api/v1/appointments/{appt['id']}/no-show"
    assert nurse.post(url, headers=at(start + timedelta(minutes=1))).status_code == 200


def test_the_test_clock_is_refused_outside_the_test_environment() -> None:
    with pytest.raises(ValueError, match="only for the test environment"):
        Settings(environment="production", secret_key="s" * 32, test_clock=True)
    assert Settings(environment="test", secret_key="s" * 32, test_clock=True).test_clock


def test_an_app_without_the_test_clock_does_not_honour_its_header() -> None:
    def clocks(test_clock: bool) -> list[object]:
        settings = Settings(
            environment="test",
            secret_key="s" * 32,
            test_clock=test_clock,
            database_url="sqlite:///unused.db",
        )
        found: list[object] = [m.cls for m in create_app(settings).user_middleware]
        return [m for m in found if m is middleware.TestClock]

    assert clocks(False) == [] and clocks(True) == [middleware.TestClock]


# --- the rules as plain functions ---------------------------------------------------------

instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
).map(lambda d: d.replace(second=0, microsecond=0))
zones = st.sampled_from(["America/New_York", "Europe/London", "Australia/Lord_Howe", "UTC"])


@given(instants, zones, st.integers(0, 24 * 60))
def test_check_in_opens_on_the_visit_day_and_never_after_the_start(
    start: datetime, tz_name: str, minutes: int
) -> None:
    tz = ZoneInfo(tz_name)
    opens = checkin_opens(start, tz, minutes)
    assert opens <= start
    assert opens >= start - timedelta(minutes=minutes)
    assert opens.astimezone(tz).date() == start.astimezone(tz).date()
    # It opens exactly `minutes` before the start unless that falls on the day before.
    before = start - timedelta(minutes=minutes)
    if before.astimezone(tz).date() == start.astimezone(tz).date():
        assert opens == before


@given(instants, instants, zones, st.integers(0, 24 * 60))
def test_check_in_is_refused_exactly_until_it_opens(
    start: datetime, now: datetime, tz_name: str, minutes: int
) -> None:
    tz = ZoneInfo(tz_name)
    refused = timing_problem("check-in", start, now, tz, minutes) is not None
    over = now.astimezone(tz).date() > start.astimezone(tz).date()  # the visit's day is over
    assert refused == (now < checkin_opens(start, tz, minutes) or over)
    assert (timing_problem("no-show", start, now, tz, minutes) is not None) == (now < start)
    assert timing_problem("cancel", start, now, tz, minutes) is None


@given(instants, instants)
def test_only_a_reason_books_into_the_past(start: datetime, now: datetime) -> None:
    assert (past_start_problem(start, now, None) is None) == (start > now)
    assert past_start_problem(start, now, "entered late") is None
