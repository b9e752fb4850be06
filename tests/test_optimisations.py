"""Evening out a center's days through the real server, on both databases: a proposal lowers
the peak census and moves only what may move; applying it keeps every booking rule (checked
here from the stored visits, independently of the server's own checks), makes each move a
reschedule with its history and event, happens once, and is refused whole when a day changed
since it was made."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select

from core.db import Database
from core.outbox.models import OutboxEvent
from scheduling.levelling.models import Optimisation
from tests.support.factories import (
    MONDAY,
    make_center,
    make_chair,
    order,
    order_maintenance,
    sessions_of,
)
from tests.support.servers import Server, at

NY = ZoneInfo("America/New_York")
WEEK_END = MONDAY + timedelta(days=4)


def center_with_crowded_monday(
    nurse: httpx.Client, courses: int = 6, **settings: Any
) -> tuple[dict[str, Any], list[str], list[dict[str, Any]]]:
    """A Monday-to-Friday center (07:00-19:00, 2 nurses, 4 patients each) whose `courses`
    maintenance courses all want Monday 09:00: first-fit piles them into the morning."""
    center = make_center(nurse, days=range(5), nurses=2, patients_per_nurse=4, **settings)
    chairs = [make_chair(nurse, center["id"])["id"] for _ in range(courses)]
    booked = []
    for _ in range(courses):
        course = order_maintenance(nurse, center["id"], cycles=2)
        b = nurse.post(
            f"/api/v1/courses/{course['id']}/book",
            json={"through": (MONDAY + timedelta(weeks=8)).isoformat()},
        )
        assert b.status_code == 200 and len(b.json()["booked"]) == 2, b.text
        booked.append(course)
    return center, chairs, booked


def visits(nurse: httpx.Client, center_id: str, first: date, last: date) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    day = first
    while day <= last:
        r = nurse.get(
            "/api/v1/appointments",
            params={"center_id": center_id, "date": day.isoformat(), "limit": 200},
        )
        assert r.status_code == 200, r.text
        out += [a for a in r.json()["items"] if a["status"] in ("booked", "checked_in")]
        day += timedelta(days=1)
    return out


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def assert_rules_hold(center: dict[str, Any], booked: list[dict[str, Any]]) -> None:
    """Every rule a booking keeps, checked from the stored visits: opening hours, one visit per
    chair with its cleaning after it, one per patient, census <= nurses x patients per nurse,
    starts in any 30 minutes <= nurses on duty (this center staffs its whole day evenly)."""
    nurses = center["staffing"][0]["nurses"]
    capacity = nurses * center["patients_per_nurse"]
    turnover = timedelta(minutes=center["turnover_minutes"])
    opens, closes = center["opening_hours"][0]["opens"], center["opening_hours"][0]["closes"]
    for a in booked:
        start, end = instant(a["start"]).astimezone(NY), instant(a["end"]).astimezone(NY)
        assert start.strftime("%H:%M") >= opens and end.strftime("%H:%M") <= closes, a
        assert start.minute % 15 == 0, a
    for i, a in enumerate(booked):
        for b in booked[i + 1 :]:
            a0, a1 = instant(a["start"]), instant(a["end"])
            b0, b1 = instant(b["start"]), instant(b["end"])
            if a["chair_id"] == b["chair_id"]:
                assert a1 + turnover <= b0 or b1 + turnover <= a0, (a, b)
            if a["patient_id"] == b["patient_id"]:
                assert a1 <= b0 or b1 <= a0, (a, b)
    moments = sorted({instant(a["start"]) for a in booked})
    for t in moments:
        here = sum(1 for a in booked if instant(a["start"]) <= t < instant(a["end"]))
        assert here <= capacity, t
        begun = sum(1 for a in booked if t <= instant(a["start"]) < t + timedelta(minutes=30))
        assert begun <= nurses, t


def peak(booked: list[dict[str, Any]]) -> int:
    return max(
        sum(1 for a in booked if instant(a["start"]) <= instant(t["start"]) < instant(a["end"]))
        for t in booked
    )


def propose(nurse: httpx.Client, center_id: str, **body: Any) -> httpx.Response:
    return nurse.post(
        f"/api/v1/centers/{center_id}/optimise",
        json={
            "from": MONDAY.isoformat(),
            "to": WEEK_END.isoformat(),
            "time_limit_seconds": 5,
            **body,
        },
    )


def events_of(server: Server, kind: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        db = Database(server.database_url)
        try:
            async with db.unit_of_work(write=False) as session:
                rows = await session.scalars(select(OutboxEvent).where(OutboxEvent.type == kind))
                return [dict(e.data) for e in rows]
        finally:
            await db.dispose()

    return asyncio.run(read())


def test_a_proposal_evens_out_the_week_and_applying_it_keeps_every_rule(
    nurse: httpx.Client, server: Server
) -> None:
    center, _, _ = center_with_crowded_monday(nurse)
    before = visits(nurse, center["id"], MONDAY, WEEK_END)
    assert len(before) == 6
    assert_rules_hold(center, before)
    crowded = peak(before)

    r = propose(nurse, center["id"])
    assert r.status_code == 201, r.text
    proposal = r.json()
    assert r.headers["Location"] == f"/api/v1/optimisations/{proposal['id']}"
    assert proposal["status"] == "proposed" and proposal["feasible"]
    assert (proposal["from"], proposal["to"]) == (MONDAY.isoformat(), WEEK_END.isoformat())
    assert proposal["movable_sessions"] == 6
    assert proposal["before"]["peak_census"] == crowded
    assert proposal["lower_bound_peak"] <= proposal["after"]["peak_census"]
    assert proposal["after"]["peak_census"] < crowded
    assert proposal["moves"], proposal
    assert len(proposal["days"]) == 5
    assert sum(max(d["before"]) for d in proposal["days"][:1]) == crowded
    # A proposal changes nothing by itself.
    assert sorted((a["id"], a["start"]) for a in visits(nurse, center["id"], MONDAY, WEEK_END)) == (
        sorted((a["id"], a["start"]) for a in before)
    )

    moved_before = len(events_of(server, "appointment.rescheduled"))
    a = nurse.post(f"/api/v1/optimisations/{proposal['id']}/apply")
    assert a.status_code == 200, a.text
    assert a.json()["status"] == "applied" and a.json()["applied_at"]

    after = visits(nurse, center["id"], MONDAY, WEEK_END)
    assert len(after) == 6
    assert_rules_hold(center, after)
    assert peak(after) == proposal["after"]["peak_census"]
    by_id = {v["id"]: v for v in after}
    for move in proposal["moves"]:
        now = by_id[move["appointment_id"]]
        assert instant(now["start"]) == instant(move["to_start"])
        assert now["chair_id"] == move["to_chair_id"]
        history = nurse.get(f"/api/v1/appointments/{now['id']}/history").json()
        assert history[-1]["action"] == "rescheduled", history
    # Every move is an event subscribers hear of, as a nurse's move is.
    assert len(events_of(server, "appointment.rescheduled")) - moved_before == len(
        proposal["moves"]
    )
    # Each course's next session stays inside its window from the moved one.
    for v in after:
        course = sessions_of(nurse, v["patient_id"])
        dates = sorted(instant(s["start"]).astimezone(NY).date() for s in course)
        assert len(dates) == 2 and 21 <= (dates[1] - dates[0]).days <= 42, course

    again = nurse.post(f"/api/v1/optimisations/{proposal['id']}/apply")
    assert again.status_code == 409, again.text


def test_a_stale_proposal_is_refused_whole(nurse: httpx.Client) -> None:
    center, chairs, _ = center_with_crowded_monday(nurse, courses=5)
    before = visits(nurse, center["id"], MONDAY, WEEK_END)
    proposal = propose(nurse, center["id"]).json()
    assert proposal["moves"]
    # Someone books a visit on Wednesday meanwhile: the week is no longer what was proposed.
    other = order(nurse, center["id"]).json()["patient_id"]
    wednesday = datetime(2027, 1, 13, 15, 0, tzinfo=NY).isoformat()
    r = nurse.post(
        "/api/v1/appointments",
        json={
            "patient_id": other,
            "chair_id": chairs[0],
            "start": wednesday,
            "duration_minutes": 60,
        },
    )
    assert r.status_code == 201, r.text

    refused = nurse.post(f"/api/v1/optimisations/{proposal['id']}/apply")
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["type"].endswith("/proposal-stale")
    assert body["changed_days"] == ["2027-01-13"]
    # Nothing moved.
    still = {a["id"]: a["start"] for a in visits(nurse, center["id"], MONDAY, WEEK_END)}
    assert all(still[a["id"]] == a["start"] for a in before)
    assert nurse.get(f"/api/v1/optimisations/{proposal['id']}").json()["status"] == "proposed"


def test_pinned_sessions_and_the_no_move_days_stay_where_they_are(nurse: httpx.Client) -> None:
    center, _, _ = center_with_crowded_monday(nurse, courses=4)
    booked = visits(nurse, center["id"], MONDAY, WEEK_END)
    # A nurse moves one session herself: it is hers now, and the optimiser leaves it.
    mine = booked[0]
    later = (instant(mine["start"]) + timedelta(hours=1)).isoformat()
    r = nurse.patch(
        f"/api/v1/appointments/{mine['id']}",
        json={"start": later},
        headers={"If-Match": f'"{mine["version"]}"'},
    )
    assert r.status_code == 200, r.text
    proposal = propose(nurse, center["id"]).json()
    assert proposal["movable_sessions"] == 3
    assert mine["id"] not in {m["appointment_id"] for m in proposal["moves"]}

    # On the Sunday before, Sunday and Monday are inside the center's 2 no-move days.
    sunday = datetime(2027, 1, 10, 12, 0, tzinfo=NY)
    soon = nurse.post(
        f"/api/v1/centers/{center['id']}/optimise",
        json={"from": MONDAY.isoformat(), "to": MONDAY.isoformat()},
        headers=at(sunday),
    )
    assert soon.status_code == 422, soon.text
    week = nurse.post(
        f"/api/v1/centers/{center['id']}/optimise",
        json={"from": MONDAY.isoformat(), "to": WEEK_END.isoformat(), "time_limit_seconds": 2},
        headers=at(sunday),
    )
    assert week.status_code == 201, week.text
    assert week.json()["from"] == (MONDAY + timedelta(days=1)).isoformat()
    assert week.json()["movable_sessions"] == 0 and week.json()["moves"] == []


def test_bad_ranges_are_refused(nurse: httpx.Client, billing: httpx.Client) -> None:
    center = make_center(nurse)
    url = f"/api/v1/centers/{center['id']}/optimise"
    backwards = nurse.post(url, json={"from": "2027-01-15", "to": "2027-01-11"})
    assert backwards.status_code == 422, backwards.text
    assert backwards.headers["content-type"].startswith("application/problem+json")
    long = nurse.post(url, json={"from": "2027-01-01", "to": "2027-01-31"})
    assert long.status_code == 422, long.text
    limit = nurse.post(
        url, json={"from": "2027-01-11", "to": "2027-01-12", "time_limit_seconds": 0}
    )
    assert limit.status_code == 422, limit.text
    nowhere = nurse.post(
        f"/api/v1/centers/{uuid.uuid4()}/optimise", json={"from": "2027-01-11", "to": "2027-01-12"}
    )
    assert nowhere.status_code == 404, nowhere.text
    assert billing.post(url, json={"from": "2027-01-11", "to": "2027-01-12"}).status_code == 403
    unknown = nurse.post(f"/api/v1/optimisations/{uuid.uuid4()}/apply")
    assert unknown.status_code == 404, unknown.text


def test_concurrent_applies_move_once(nurse: httpx.Client, server: Server) -> None:
    center, _, _ = center_with_crowded_monday(nurse, courses=5)
    proposal = propose(nurse, center["id"]).json()
    assert proposal["moves"]
    token = nurse.headers["Authorization"]

    async def race() -> list[int]:
        async with httpx.AsyncClient(
            base_url=server.base_url, headers={"Authorization": token}, timeout=60
        ) as c:
            url = f"/api/v1/optimisations/{proposal['id']}/apply"
            replies = await asyncio.gather(*(c.post(url) for _ in range(4)))
            return [r.status_code for r in replies]

    codes = Counter(asyncio.run(race()))
    assert codes == {200: 1, 409: 3}, codes
    after = visits(nurse, center["id"], MONDAY, WEEK_END)
    assert_rules_hold(center, after)


def test_moves_that_wait_on_each_other_are_made_all_the_same(
    nurse: httpx.Client, server: Server
) -> None:
    """Two visits swapping chairs at the same time: each move waits for the other's chair. The
    proposal here is made by hand (the optimiser keeps visits in their chairs where it can)."""
    center, _, _ = center_with_crowded_monday(nurse, courses=2)
    first, second = visits(nurse, center["id"], MONDAY, MONDAY)
    proposal = propose(nurse, center["id"]).json()

    def to(a: dict[str, Any], chair: str) -> dict[str, Any]:
        return {
            "appointment_id": a["id"],
            "patient_id": a["patient_id"],
            "from_start": a["start"],
            "from_chair_id": a["chair_id"],
            "to_start": a["start"],
            "to_end": a["end"],
            "to_chair_id": chair,
            "version": a["version"],
        }

    swap = [to(first, second["chair_id"]), to(second, first["chair_id"])]

    async def rewrite() -> None:
        db = Database(server.database_url)
        try:
            async with db.unit_of_work() as session:
                row = await session.get(Optimisation, uuid.UUID(proposal["id"]))
                assert row is not None
                row.moves = swap
        finally:
            await db.dispose()

    asyncio.run(rewrite())
    r = nurse.post(f"/api/v1/optimisations/{proposal['id']}/apply")
    assert r.status_code == 200, r.text
    now = {a["id"]: a for a in visits(nurse, center["id"], MONDAY, MONDAY)}
    assert now[first["id"]]["chair_id"] == second["chair_id"]
    assert now[second["id"]]["chair_id"] == first["chair_id"]
    assert {a["status"] for a in now.values()} == {"booked"}
    assert_rules_hold(center, list(now.values()))


def test_the_nightly_run_evens_out_what_it_books_where_the_center_asks(
    nurse: httpx.Client, admin: httpx.Client
) -> None:
    """Two centers alike but for `optimise_nightly`, each with five courses that all want
    Monday 09:00, booked by the nightly run a week ahead: first fit piles the plain center's
    Monday into the morning; the other's run re-places what it booked."""
    week_before = datetime(2027, 1, 4, 3, 0, tzinfo=NY)
    peaks = {}
    for nightly in (False, True):
        center = make_center(
            nurse, days=range(5), nurses=2, patients_per_nurse=4, optimise_nightly=nightly
        )
        assert center["optimise_nightly"] is nightly
        for _ in range(5):
            make_chair(nurse, center["id"])
            order_maintenance(nurse, center["id"], cycles=1)
        run = admin.post(
            "/api/v1/jobs/auto_book/run",
            params={"center_id": center["id"]},
            headers=at(week_before),
        )
        assert run.status_code == 200, run.text
        counts = run.json()["counts"]
        assert counts["booked"] == 5, counts
        booked = visits(nurse, center["id"], MONDAY, WEEK_END)
        assert len(booked) == 5
        assert_rules_hold(center, booked)
        peaks[nightly] = peak(booked)
        assert (counts["optimised"] > 0) is nightly, counts
    assert peaks[True] < peaks[False], peaks


def test_a_covered_session_stays_inside_its_authorizations_period(
    nurse: httpx.Client, billing: httpx.Client
) -> None:
    """Every patient's authorization is valid on Monday only: the optimiser may spread their
    visits over Monday, never onto another day (left free, it spreads them over the week)."""
    center, _, courses = center_with_crowded_monday(nurse)
    r = billing.post(
        "/api/v1/payers",
        json={
            "name": f"Payer {uuid.uuid4().hex[:8]}",
            "turnaround_days": 14,
            "expedited_turnaround_days": 3,
            "renewal_margin_days": 7,
        },
    )
    assert r.status_code == 201, r.text
    payer_id = r.json()["id"]
    for course in courses:
        c = billing.post(
            f"/api/v1/patients/{course['patient_id']}/coverages",
            json={"payer_id": payer_id, "member_id": "M-1", "effective_from": "2026-12-01"},
        )
        assert c.status_code == 201, c.text
        a = billing.post(
            "/api/v1/authorizations",
            json={
                "patient_id": course["patient_id"],
                "coverage_id": c.json()["id"],
                "service_code": "J1561",
                "status": "approved",
                "valid_from": MONDAY.isoformat(),
                "valid_to": MONDAY.isoformat(),
                "units_type": "billing_units",
                "units_approved": 900,
            },
        )
        assert a.status_code == 201, a.text
    proposal = propose(nurse, center["id"]).json()
    assert proposal["movable_sessions"] == 6
    assert proposal["moves"], proposal
    assert {instant(m["to_start"]).astimezone(NY).date() for m in proposal["moves"]} == {MONDAY}
    assert proposal["after"]["peak_census"] < proposal["before"]["peak_census"]
    applied = nurse.post(f"/api/v1/optimisations/{proposal['id']}/apply")
    assert applied.status_code == 200, applied.text
    after = visits(nurse, center["id"], MONDAY, WEEK_END)
    assert {instant(a["start"]).astimezone(NY).date() for a in after} == {MONDAY}
    assert_rules_hold(center, after)
