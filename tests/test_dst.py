"""Daylight saving time in a center in America/New_York.

Spring forward on Sunday 2027-03-14: 02:00 EST becomes 03:00 EDT, so 02:00-02:59 never
happens and the day lasts 23 hours. Fall back on Sundays 2027-11-07 and 2028-11-05: 02:00 EDT
becomes 01:00 EST, so 01:00-01:59 happens twice and the day lasts 25 hours.

A center open through the night (00:30-06:00, staffed the same) is open for 4.5 real hours
on the spring-forward day, 5.5 on a normal day and 6.5 on a fall-back day.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import httpx
import pytest

from tests.support.factories import book, make_center, make_chair, make_patient

SPRING = "2027-03-14"
SPRING_NORMAL = "2027-03-07"  # the Sunday before, all EST
FALLS = [("2027-11-07", "2027-10-31"), ("2028-11-05", "2028-10-29")]  # (fall-back, normal)
QUARTER = timedelta(minutes=15)
NORMAL_STARTS = 21  # 30-minute appointments from 00:30 to 05:30 local, every 15 minutes
NORMAL_SLOTS = 22  # board slots from 00:30 to 05:45 local


def night_center(api: httpx.Client, nurses: int = 4) -> tuple[dict[str, Any], dict[str, Any]]:
    # No turnover: these tests are about real lengths across the clock change, back to back.
    center = make_center(
        api, opens="00:30", closes="06:00", nurses=nurses, patients_per_nurse=4, turnover_minutes=0
    )
    return center, make_chair(api, center["id"])


def book_local(
    api: httpx.Client, chair_id: str, day: str, hhmm: str, minutes: int = 30
) -> httpx.Response:
    return api.post(
        "/api/v1/appointments",
        json={
            "patient_id": make_patient(api)["id"],
            "chair_id": chair_id,
            "local_date": day,
            "local_time": hhmm,
            "duration_minutes": minutes,
        },
    )


def listed(api: httpx.Client, center_id: str) -> list[dict[str, Any]]:
    r = api.get("/api/v1/appointments", params={"center_id": center_id})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def starts(api: httpx.Client, center_id: str, day: str) -> list[str]:
    """The distinct start times offered for a 30-minute appointment, in order."""
    r = api.get(
        f"/api/v1/centers/{center_id}/availability",
        params={"date": day, "duration_minutes": 30},
    )
    assert r.status_code == 200, r.text
    seen: dict[str, None] = {}
    for slot in r.json()["slots"]:
        seen.setdefault(slot["start"], None)
    return list(seen)


def board(api: httpx.Client, center_id: str, day: str) -> dict[str, Any]:
    r = api.get(f"/api/v1/centers/{center_id}/day", params={"date": day})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def assert_every_quarter_hour(rendered: list[str]) -> None:
    """Consecutive instants are 15 real minutes apart (none skipped, none repeated)."""
    instants = [datetime.fromisoformat(s) for s in rendered]
    assert all(b - a == QUARTER for a, b in pairwise(instants)), rendered


# --- booking by local wall-clock time ------------------------------------------------------


@pytest.mark.parametrize("hhmm", ["02:00", "02:30", "02:59"])
def test_a_local_time_skipped_by_spring_forward_is_refused(nurse: httpx.Client, hhmm: str) -> None:
    center, chair = night_center(nurse)
    r = book_local(nurse, chair["id"], SPRING, hhmm)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "does not exist" in r.json()["detail"]
    assert listed(nurse, center["id"]) == []


@pytest.mark.parametrize("day", [fall for fall, _ in FALLS])
@pytest.mark.parametrize("hhmm", ["01:00", "01:30", "01:59"])
def test_a_local_time_repeated_by_fall_back_is_refused_as_ambiguous(
    nurse: httpx.Client, day: str, hhmm: str
) -> None:
    center, chair = night_center(nurse)
    r = book_local(nurse, chair["id"], day, hhmm)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    detail = r.json()["detail"]
    assert "twice" in detail or "ambiguous" in detail, detail
    assert listed(nurse, center["id"]) == []


def test_local_times_around_the_spring_gap_get_their_own_offsets(nurse: httpx.Client) -> None:
    _, chair = night_center(nurse)
    before = book_local(nurse, chair["id"], SPRING, "01:30", 30)
    assert before.status_code == 201, before.text
    assert before.json()["start"] == "2027-03-14T01:30:00-05:00"
    # Thirty real minutes after 01:30 EST, clocks read 03:00 EDT.
    assert before.json()["end"] == "2027-03-14T03:00:00-04:00"
    after = book_local(nurse, chair["id"], SPRING, "03:30", 30)
    assert after.status_code == 201, after.text
    assert after.json()["start"] == "2027-03-14T03:30:00-04:00"
    assert after.json()["end"] == "2027-03-14T04:00:00-04:00"


@pytest.mark.parametrize("day", [fall for fall, _ in FALLS])
def test_local_times_outside_the_repeated_hour_book_on_a_fall_back_day(
    nurse: httpx.Client, day: str
) -> None:
    _, chair = night_center(nurse)
    early = book_local(nurse, chair["id"], day, "00:30", 30)
    assert early.status_code == 201, early.text
    assert early.json()["start"] == f"{day}T00:30:00-04:00"
    late = book_local(nurse, chair["id"], day, "02:00", 30)
    assert late.status_code == 201, late.text
    assert late.json()["start"] == f"{day}T02:00:00-05:00"


# --- booking by instants -----------------------------------------------------------------------


def test_an_appointment_across_the_spring_gap_lasts_its_real_length(nurse: httpx.Client) -> None:
    center, chair = night_center(nurse)
    r = nurse.post(
        "/api/v1/appointments",
        json={
            "patient_id": make_patient(nurse)["id"],
            "chair_id": chair["id"],
            "start": "2027-03-14T01:30:00-05:00",
            "end": "2027-03-14T03:30:00-04:00",
        },
    )
    assert r.status_code == 201, r.text
    appt = r.json()
    assert appt["duration_minutes"] == 60
    assert (appt["start"], appt["end"]) == (
        "2027-03-14T01:30:00-05:00",
        "2027-03-14T03:30:00-04:00",
    )
    # The chair is taken for that real hour only: free right before and right after it...
    assert book_local(nurse, chair["id"], SPRING, "01:00", 30).status_code == 201
    assert book_local(nurse, chair["id"], SPRING, "03:30", 30).status_code == 201
    # ...and taken at 03:00 EDT, half an hour into it.
    clash = book(nurse, make_patient(nurse)["id"], chair["id"], "2027-03-14T03:00:00-04:00", 15)
    assert clash.status_code == 409 and clash.json()["conflicts"] == [appt["id"]]
    assert len(listed(nurse, center["id"])) == 3


@pytest.mark.parametrize("day", [fall for fall, _ in FALLS])
def test_both_occurrences_of_a_repeated_hour_can_be_booked_by_instant(
    nurse: httpx.Client, day: str
) -> None:
    _, chair = night_center(nurse)
    first = book(nurse, make_patient(nurse)["id"], chair["id"], f"{day}T01:30:00-04:00", 45)
    assert first.status_code == 201, first.text
    assert first.json()["start"] == f"{day}T01:30:00-04:00"
    # One real hour later the clocks show 01:30 again; the same chair is free then.
    second = book(nurse, make_patient(nurse)["id"], chair["id"], f"{day}T01:30:00-05:00", 45)
    assert second.status_code == 201, second.text
    assert second.json()["start"] == f"{day}T01:30:00-05:00"
    assert second.json()["end"] == f"{day}T02:15:00-05:00"


@pytest.mark.parametrize("day", [fall for fall, _ in FALLS])
def test_an_appointment_across_the_repeated_hour_lasts_its_real_length(
    nurse: httpx.Client, day: str
) -> None:
    _, chair = night_center(nurse)
    r = nurse.post(
        "/api/v1/appointments",
        json={
            "patient_id": make_patient(nurse)["id"],
            "chair_id": chair["id"],
            "start": f"{day}T00:30:00-04:00",
            "end": f"{day}T02:30:00-05:00",
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["duration_minutes"] == 180


def test_the_start_rule_counts_real_minutes_across_the_gap(nurse: httpx.Client) -> None:
    # One nurse: one start per 30 minutes. 01:45 EST and 03:10 EDT are 25 real minutes apart.
    _, chair = night_center(nurse, nurses=1)
    other = make_chair(nurse, chair["center_id"])
    assert book_local(nurse, chair["id"], SPRING, "01:45", 30).status_code == 201
    r = book_local(nurse, other["id"], SPRING, "03:10", 30)
    assert r.status_code == 409, r.text
    assert "starts" in r.json()["detail"]
    assert book_local(nurse, other["id"], SPRING, "03:15", 30).status_code == 201


# --- availability and the day board ---------------------------------------------------------


def test_availability_on_a_normal_night(nurse: httpx.Client) -> None:
    center, _ = night_center(nurse)
    offered = starts(nurse, center["id"], SPRING_NORMAL)
    assert len(offered) == NORMAL_STARTS
    assert offered[0] == f"{SPRING_NORMAL}T00:30:00-05:00"
    assert offered[-1] == f"{SPRING_NORMAL}T05:30:00-05:00"
    assert_every_quarter_hour(offered)


def test_availability_skips_the_spring_gap(nurse: httpx.Client) -> None:
    center, _ = night_center(nurse)
    offered = starts(nurse, center["id"], SPRING)
    assert len(offered) == len(starts(nurse, center["id"], SPRING_NORMAL)) - 4
    assert not [s for s in offered if s[11:13] == "02"]
    assert offered[0] == "2027-03-14T00:30:00-05:00"
    assert offered[-1] == "2027-03-14T05:30:00-04:00"
    offsets = [s[-6:] for s in offered]
    switch = offsets.index("-04:00")
    assert offsets == ["-05:00"] * switch + ["-04:00"] * (len(offsets) - switch)
    assert offered[switch - 1 : switch + 1] == [
        "2027-03-14T01:45:00-05:00",
        "2027-03-14T03:00:00-04:00",
    ]
    assert_every_quarter_hour(offered)


@pytest.mark.parametrize(("day", "normal"), FALLS)
def test_availability_offers_the_repeated_hour_twice(
    nurse: httpx.Client, day: str, normal: str
) -> None:
    center, _ = night_center(nurse)
    offered = starts(nurse, center["id"], day)
    assert len(offered) == len(starts(nurse, center["id"], normal)) + 4
    assert offered[0] == f"{day}T00:30:00-04:00"
    assert offered[-1] == f"{day}T05:30:00-05:00"
    for minute in ("00", "15", "30", "45"):
        twice = [s for s in offered if s[11:16] == f"01:{minute}"]
        assert twice == [f"{day}T01:{minute}:00-04:00", f"{day}T01:{minute}:00-05:00"]
    assert_every_quarter_hour(offered)


def test_spring_forward_slots_offered_can_be_booked(nurse: httpx.Client) -> None:
    center, chair = night_center(nurse)
    offered = starts(nurse, center["id"], SPRING)
    chosen = [offered[4], offered[6], offered[-1]]
    assert chosen == [
        "2027-03-14T01:30:00-05:00",
        "2027-03-14T03:00:00-04:00",
        "2027-03-14T05:30:00-04:00",
    ]
    # 01:30 EST + 30 minutes ends at 03:00 EDT: the next one follows on the same chair.
    for start in chosen:
        r = book(nurse, make_patient(nurse)["id"], chair["id"], start, 30)
        assert r.status_code == 201, (start, r.text)
        assert r.json()["start"] == start


@pytest.mark.parametrize(
    ("day", "opens", "closes", "slots"),
    [
        (SPRING_NORMAL, "T00:30:00-05:00", "T06:00:00-05:00", NORMAL_SLOTS),
        (SPRING, "T00:30:00-05:00", "T06:00:00-04:00", NORMAL_SLOTS - 4),
        (FALLS[0][1], "T00:30:00-04:00", "T06:00:00-04:00", NORMAL_SLOTS),
        (FALLS[0][0], "T00:30:00-04:00", "T06:00:00-05:00", NORMAL_SLOTS + 4),
        (FALLS[1][0], "T00:30:00-04:00", "T06:00:00-05:00", NORMAL_SLOTS + 4),
    ],
)
def test_the_day_board_follows_the_clock_change(
    nurse: httpx.Client, day: str, opens: str, closes: str, slots: int
) -> None:
    center, _ = night_center(nurse)
    day_board = board(nurse, center["id"], day)
    assert (day_board["opens"], day_board["closes"]) == (day + opens, day + closes)
    rendered = [s["start"] for s in day_board["slots"]]
    assert len(rendered) == slots
    assert rendered[0] == day_board["opens"]
    assert_every_quarter_hour(rendered)
    # Nurses are on duty through the whole night, whatever the clocks do.
    assert {(s["nurses"], s["nurse_capacity"]) for s in day_board["slots"]} == {(4, 16)}


@pytest.mark.parametrize(("day", "normal"), FALLS)
def test_the_day_board_counts_each_occurrence_of_the_repeated_hour_apart(
    nurse: httpx.Client, day: str, normal: str
) -> None:
    center, chair = night_center(nurse)
    first = book(nurse, make_patient(nurse)["id"], chair["id"], f"{day}T01:15:00-04:00", 30)
    assert first.status_code == 201, first.text
    day_board = board(nurse, center["id"], day)
    assert len(day_board["slots"]) == len(board(nurse, center["id"], normal)["slots"]) + 4
    by_start = {s["start"]: s for s in day_board["slots"]}
    assert by_start[f"{day}T01:15:00-04:00"]["starts"] == 1
    assert by_start[f"{day}T01:15:00-04:00"]["census"] == 1
    assert by_start[f"{day}T01:30:00-04:00"]["census"] == 1
    assert by_start[f"{day}T01:15:00-05:00"]["starts"] == 0
    assert by_start[f"{day}T01:15:00-05:00"]["census"] == 0
    assert [a["id"] for a in day_board["chairs"][0]["appointments"]] == [first.json()["id"]]


@pytest.mark.parametrize(("day", "offset"), [("2027-01-12", "-05:00"), ("2027-07-13", "-04:00")])
def test_a_daytime_center_renders_its_hours_in_the_seasons_offset(
    nurse: httpx.Client, day: str, offset: str
) -> None:
    center = make_center(nurse, opens="07:00", closes="19:00")
    day_board = board(nurse, center["id"], day)
    assert day_board["opens"] == f"{day}T07:00:00{offset}"
    assert day_board["closes"] == f"{day}T19:00:00{offset}"
    assert len(day_board["slots"]) == 48
