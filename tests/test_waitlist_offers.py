"""Waitlist offers (issue 16) through the real server: a freed chair makes an opening, offered
to the best-ranked entry it fits, one at a time (decline or an expired hold: the next); an
accept books it once, under every booking rule; what other moves fill again is no opening;
the figures a center asks for; and the booking run putting a course on the list by itself."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from core.db import Database
from core.outbox.models import OutboxEvent
from scheduling.appointments import booking
from scheduling.centers import repository as center_repository
from scheduling.waitlist.models import WaitlistOpening
from tests.support.factories import (
    MONDAY,
    book,
    make_center,
    make_chair,
    make_patient,
    order,
    order_maintenance,
    sessions_of,
)
from tests.support.servers import Server, at
from tests.test_waitlist import add

OFFERS = "/api/v1/waitlist/offers"
DAY = "2027-02-10"  # a Wednesday; the centers are in New York (UTC-5 in February)


def utc(hhmm: str, day: str = DAY) -> str:
    """The instant of a New York wall-clock time on `day` in February (EST)."""
    local = datetime.fromisoformat(f"{day}T{hhmm}:00-05:00")
    return local.astimezone(UTC).isoformat().replace("+00:00", "Z")


def same(a: str, b: str) -> bool:
    return datetime.fromisoformat(a.replace("Z", "+00:00")) == datetime.fromisoformat(
        b.replace("Z", "+00:00")
    )


def booked(api: httpx.Client, chair_id: str, start: str, minutes: int = 180) -> dict[str, Any]:
    r = book(api, make_patient(api)["id"], chair_id, start, minutes)
    assert r.status_code == 201, r.text
    appt: dict[str, Any] = r.json()
    return appt


def cancel(api: httpx.Client, appointment_id: str, **kwargs: Any) -> None:
    r = api.post(f"/api/v1/appointments/{appointment_id}/cancel", **kwargs)
    assert r.status_code == 200, r.text


def offers_at(api: httpx.Client, center_id: str, **params: Any) -> list[dict[str, Any]]:
    r = api.get(OFFERS, params={"center_id": center_id, **params})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def open_offer(api: httpx.Client, center_id: str) -> dict[str, Any] | None:
    found = offers_at(api, center_id, status="open")
    assert len(found) <= 1, found  # one at a time
    return found[0] if found else None


def window(**overrides: Any) -> dict[str, Any]:
    return {"earliest": "2027-02-01", "latest": "2027-02-28", **overrides}


def test_a_cancellation_is_offered_in_rank_order_until_someone_accepts(
    nurse: httpx.Client, admin: httpx.Client, billing: httpx.Client
) -> None:
    center = make_center(nurse)
    chair = make_chair(nurse, center["id"])
    visit = booked(nurse, chair["id"], utc("09:00"))
    first = add(nurse, center["id"], priority=1, **window())
    second = add(nurse, center["id"], priority=2, **window(latest="2027-02-12"))
    third = add(nurse, center["id"], priority=2, **window(latest="2027-02-20"))
    add(nurse, center["id"], priority=1, duration_minutes=240, **window())  # too long
    add(nurse, center["id"], priority=1, chair_kind="bed", **window())  # another kind
    add(nurse, center["id"], priority=1, **window(earliest="2027-02-11"))  # not that day
    assert open_offer(nurse, center["id"]) is None

    now = datetime.now(UTC)
    cancel(nurse, visit["id"], headers=at(now))
    offer = open_offer(nurse, center["id"])
    assert offer is not None and offer["entry_id"] == first["id"]
    assert offer["patient_id"] == first["patient_id"] and offer["chair_id"] == chair["id"]
    assert same(offer["start"], utc("09:00")) and same(offer["end"], utc("12:00"))
    assert same(offer["opening_start"], utc("09:00")) and offer["cause"] == "cancelled"
    # Not the same day: the center's usual hold (720 minutes).
    hold = datetime.fromisoformat(offer["hold_until"]) - datetime.fromisoformat(offer["offered_at"])
    assert hold == timedelta(minutes=720)
    r = nurse.get(f"{OFFERS}/{offer['id']}")
    assert r.status_code == 200 and r.json() == offer
    assert billing.get(f"{OFFERS}/{offer['id']}").status_code == 403
    assert nurse.get(f"{OFFERS}/{uuid.uuid4()}").status_code == 404

    # Declined: the next in rank order.
    r = nurse.post(f"{OFFERS}/{offer['id']}/decline", headers=at(now + timedelta(minutes=1)))
    assert r.status_code == 200 and r.json()["status"] == "declined", r.text
    assert nurse.post(f"{OFFERS}/{offer['id']}/decline").status_code == 409
    assert nurse.post(f"{OFFERS}/{offer['id']}/accept").status_code == 409
    offer = open_offer(nurse, center["id"])
    assert offer is not None and offer["entry_id"] == second["id"]

    # Its hold passes: accepting is too late, and the job offers it to the next.
    later = now + timedelta(minutes=730)
    r = nurse.post(f"{OFFERS}/{offer['id']}/accept", headers=at(later))
    assert r.status_code == 409 and "hold" in r.text, r.text
    r = admin.post("/api/v1/jobs/waitlist_offers/run", headers=at(later))
    assert r.status_code == 200 and r.json()["outcome"] == "succeeded", r.text
    assert nurse.get(f"{OFFERS}/{offer['id']}").json()["status"] == "expired"
    offer = open_offer(nurse, center["id"])
    assert offer is not None and offer["entry_id"] == third["id"]
    statuses = [o["status"] for o in offers_at(nurse, center["id"])]
    assert statuses == ["declined", "expired", "open"]

    # Accepted: booked once, the entry booked; a second accept is refused.
    r = nurse.post(f"{OFFERS}/{offer['id']}/accept", headers=at(later))
    assert r.status_code == 200, r.text
    accepted = r.json()
    assert accepted["status"] == "accepted" and accepted["appointment_id"] is not None
    assert nurse.post(f"{OFFERS}/{offer['id']}/accept", headers=at(later)).status_code == 409
    appt = nurse.get(f"/api/v1/appointments/{accepted['appointment_id']}").json()
    assert (appt["patient_id"], appt["chair_id"], appt["status"]) == (
        third["patient_id"],
        chair["id"],
        "booked",
    )
    assert same(appt["start"], utc("09:00")) and appt["duration_minutes"] == 180
    assert nurse.get(f"/api/v1/waitlist/{third['id']}").json()["status"] == "booked"
    assert nurse.get(f"/api/v1/waitlist/{first['id']}").json()["status"] == "waiting"
    assert open_offer(nurse, center["id"]) is None  # the opening is filled

    # The figures add up: one opening, offered three times, filled once, 3 chair hours.
    # An hour nobody's visit fits in: an opening, never offered.
    cancel(nurse, booked(nurse, chair["id"], utc("09:00", "2027-02-20"), 60)["id"])
    r = nurse.get(
        "/api/v1/waitlist/figures",
        params={"center_id": center["id"], "from": "2027-02-01", "to": "2027-02-28"},
    )
    assert r.status_code == 200, r.text
    figures = r.json()
    assert (figures["openings"], figures["offered"], figures["offers"], figures["filled"]) == (
        2,
        1,
        3,
        1,
    )
    assert figures["fill_rate"] == 0.5 and figures["chair_hours_recovered"] == 3.0
    assert figures["median_minutes_to_fill"] == pytest.approx(730, abs=1)
    r = nurse.get(
        "/api/v1/waitlist/figures",
        params={"center_id": center["id"], "from": "2027-03-01", "to": "2027-03-31"},
    )
    assert r.json()["openings"] == 0 and r.json()["fill_rate"] is None
    bad = {"center_id": center["id"], "from": "2027-03-01", "to": "2027-02-01"}
    assert nurse.get("/api/v1/waitlist/figures", params=bad).status_code == 422


def instant(hhmm: str, day: str = DAY) -> datetime:
    return datetime.fromisoformat(utc(hhmm, day).replace("Z", "+00:00"))


def test_an_opening_the_same_day_holds_for_less(nurse: httpx.Client) -> None:
    center = make_center(nurse, offer_hold_same_day_minutes=20)
    chair = make_chair(nurse, center["id"])
    afternoon = booked(nurse, chair["id"], utc("15:00"))
    noon = booked(nurse, chair["id"], utc("12:00"), 150)  # 12:00-14:30
    entry = add(nurse, center["id"], **window())
    other = add(nurse, center["id"], **window(), duration_minutes=150)

    # Cancelled at 14:00 that day: the same-day hold.
    cancel(nurse, afternoon["id"], headers=at(instant("14:00")))
    offer = open_offer(nurse, center["id"])
    assert offer is not None and offer["entry_id"] == entry["id"]
    hold = datetime.fromisoformat(offer["hold_until"]) - datetime.fromisoformat(offer["offered_at"])
    assert hold == timedelta(minutes=20)

    # Cancelled ten minutes before it starts: the hold ends at the opening's start. The
    # first entry holds an offer already: the next one gets it.
    cancel(nurse, noon["id"], headers=at(instant("11:50")))
    found = offers_at(nurse, center["id"], status="open")
    assert {o["entry_id"] for o in found} == {entry["id"], other["id"]}
    late = next(o for o in found if o["entry_id"] == other["id"])
    assert datetime.fromisoformat(late["hold_until"]) == instant("12:00")


def test_an_accept_books_under_every_booking_rule(nurse: httpx.Client) -> None:
    center = make_center(nurse)
    chair = make_chair(nurse, center["id"])
    visit = booked(nurse, chair["id"], utc("09:00"))
    # The best-ranked entry's patient is busy then (another center): not offered it.
    busy = add(nurse, center["id"], priority=1, **window())
    elsewhere = make_center(nurse)
    r = book(nurse, busy["patient_id"], make_chair(nurse, elsewhere["id"])["id"], utc("10:00"))
    assert r.status_code == 201, r.text
    entry = add(nurse, center["id"], priority=2, **window())
    cancel(nurse, visit["id"])
    offer = open_offer(nurse, center["id"])
    assert offer is not None and offer["entry_id"] == entry["id"]

    # A nurse books the chair meanwhile: the accept is refused, nothing booked, the offer
    # still open.
    booked(nurse, chair["id"], utc("10:00"), 60)
    r = nurse.post(f"{OFFERS}/{offer['id']}/accept")
    assert r.status_code == 409 and "chair" in r.text, r.text
    assert sessions_of(nurse, entry["patient_id"]) == []
    assert nurse.get(f"{OFFERS}/{offer['id']}").json()["status"] == "open"
    assert nurse.get(f"/api/v1/waitlist/{entry['id']}").json()["status"] == "waiting"


@pytest.mark.concurrency
def test_two_accepts_at_once_book_once(nurse: httpx.Client, server: Server) -> None:
    center = make_center(nurse)
    chair = make_chair(nurse, center["id"])
    visit = booked(nurse, chair["id"], utc("09:00"))
    entry = add(nurse, center["id"], **window())
    cancel(nurse, visit["id"])
    offer = open_offer(nurse, center["id"])
    assert offer is not None
    start = threading.Barrier(2)
    codes: list[int] = []

    def accept() -> None:
        with server.client("nurse") as c:
            start.wait()
            codes.append(c.post(f"{OFFERS}/{offer['id']}/accept").status_code)

    threads = [threading.Thread(target=accept) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200, 409]
    assert len(sessions_of(nurse, entry["patient_id"])) == 1


def test_removing_an_entry_withdraws_its_offer(nurse: httpx.Client) -> None:
    center = make_center(nurse)
    chair = make_chair(nurse, center["id"])
    visit = booked(nurse, chair["id"], utc("09:00"))
    first = add(nurse, center["id"], priority=1, **window())
    second = add(nurse, center["id"], priority=2, **window())
    cancel(nurse, visit["id"])
    offer = open_offer(nurse, center["id"])
    assert offer is not None and offer["entry_id"] == first["id"]
    r = nurse.patch(
        f"/api/v1/waitlist/{first['id']}",
        json={"status": "removed"},
        headers={"If-Match": f'"{first["version"]}"'},
    )
    assert r.status_code == 200, r.text
    assert nurse.get(f"{OFFERS}/{offer['id']}").json()["status"] == "withdrawn"
    offer = open_offer(nurse, center["id"])
    assert offer is not None and offer["entry_id"] == second["id"]


async def _swap(url: str, leaving: str, coming: str, later: str) -> None:
    """In one transaction, as an optimiser applies its moves: `leaving` moves to `later`, and
    `coming` (on another chair) into the place it left."""
    db = Database(url)
    try:
        async with db.unit_of_work() as session:
            a = await booking.get_appointment(session, uuid.UUID(leaving), for_update=True)
            b = await booking.get_appointment(session, uuid.UUID(coming), for_update=True)
            a_place = await center_repository.chair_at_center(session, a.chair_id)
            a_start, a_length, b_length = a.start_at, a.end_at - a.start_at, b.end_at - b.start_at
            moved = datetime.fromisoformat(later.replace("Z", "+00:00"))
            await booking.move_span(session, a, a_place, moved, moved + a_length, None, "test")
            await booking.move_span(session, b, a_place, a_start, a_start + b_length, None, "test")
    finally:
        await db.dispose()


async def _openings(url: str, center_id: str) -> list[tuple[uuid.UUID, datetime]]:
    db = Database(url)
    try:
        async with db.unit_of_work(write=False) as session:
            rows = await session.execute(
                select(WaitlistOpening.chair_id, WaitlistOpening.start_at).where(
                    WaitlistOpening.center_id == uuid.UUID(center_id)
                )
            )
            return [(c, s) for c, s in rows]
    finally:
        await db.dispose()


def test_an_opening_filled_by_another_move_is_not_offered(
    nurse: httpx.Client, server: Server
) -> None:
    center = make_center(nurse)
    one, two = make_chair(nurse, center["id"]), make_chair(nurse, center["id"])
    leaving = booked(nurse, one["id"], utc("09:00"))
    coming = booked(nurse, two["id"], utc("09:00"))
    entry = add(nurse, center["id"], **window())
    asyncio.run(_swap(server.database_url, leaving["id"], coming["id"], utc("14:00")))
    # Chair one's 09:00 was filled again by the other move; chair two's is free.
    found = asyncio.run(_openings(server.database_url, center["id"]))
    assert found == [(uuid.UUID(two["id"]), instant("09:00"))]
    offer = open_offer(nurse, center["id"])
    assert offer is not None and offer["entry_id"] == entry["id"]
    assert offer["chair_id"] == two["id"] and same(offer["start"], utc("09:00"))

    # A part of a span refilled: only what is still free, turnover respected, is offered.
    other = "2027-02-12"
    wide = booked(nurse, one["id"], utc("15:00", other), 240)  # 15:00-19:00 (it closes then)
    short = booked(nurse, two["id"], utc("15:00", other), 60)
    asyncio.run(_swap(server.database_url, wide["id"], short["id"], utc("09:00", "2027-02-11")))
    # Chair one: 15:00-16:00 taken again, 15 minutes' cleaning, free from 16:15 to 19:00;
    # chair two: free where the short visit was.
    found = asyncio.run(_openings(server.database_url, center["id"]))
    assert sorted(found, key=lambda f: f[1])[1:] == [
        (uuid.UUID(two["id"]), instant("15:00", other)),
        (uuid.UUID(one["id"]), instant("16:15", other)),
    ]


def test_a_course_the_booking_cannot_place_waits_and_an_opening_books_it(
    nurse: httpx.Client,
) -> None:
    center = make_center(nurse)
    chair = make_chair(nurse, center["id"])
    # The only chair is taken all of the course's one possible day.
    filler = booked(nurse, chair["id"], utc("07:00", MONDAY.isoformat()), 12 * 60)
    r = order(
        nurse,
        center["id"],
        diagnosis_code="G61.82",
        induction=None,
        maintenance={
            "dose_g_per_kg": 1,
            "interval_days": 28,
            "window_min_days": 28,
            "window_max_days": 28,
            "cycles": 1,
        },
    )
    assert r.status_code == 201, r.text
    course = r.json()
    r = nurse.post(f"/api/v1/courses/{course['id']}/book", json={"through": "2027-02-01"})
    assert r.status_code == 200 and r.json()["booked"] == [], r.text
    entries = nurse.get("/api/v1/waitlist", params={"center_id": center["id"]}).json()["items"]
    assert len(entries) == 1
    entry = entries[0]
    assert (entry["course_id"], entry["appointment_id"], entry["created_by"]) == (
        course["id"],
        None,
        None,
    )
    assert (entry["earliest"], entry["latest"], entry["priority"]) == (
        MONDAY.isoformat(),
        MONDAY.isoformat(),
        2,
    )
    # Booking again finds it stuck again: no second entry.
    r = nurse.post(f"/api/v1/courses/{course['id']}/book", json={"through": "2027-02-01"})
    assert r.status_code == 200, r.text
    again = nurse.get("/api/v1/waitlist", params={"center_id": center["id"]}).json()["items"]
    assert [e["id"] for e in again] == [entry["id"]]

    cancel(nurse, filler["id"])
    offer = open_offer(nurse, center["id"])
    assert offer is not None and offer["entry_id"] == entry["id"]
    r = nurse.post(f"{OFFERS}/{offer['id']}/accept")
    assert r.status_code == 200, r.text
    sessions = sessions_of(nurse, course["patient_id"])
    assert [s["id"] for s in sessions] == [r.json()["appointment_id"]]
    assert same(sessions[0]["start"], utc("07:00", MONDAY.isoformat()))
    plan = nurse.get(f"/api/v1/courses/{course['id']}/plan").json()["sessions"]
    assert [(p["phase"], p["sequence"], p["appointment"]["id"]) for p in plan] == [
        ("maintenance", 1, sessions[0]["id"])
    ]
    assert plan[0]["unbookable_reason"] is None


def test_a_session_booked_late_waits_and_is_brought_forward(nurse: httpx.Client) -> None:
    center = make_center(nurse)
    chair = make_chair(nurse, center["id"])
    filler = booked(nurse, chair["id"], utc("07:00", MONDAY.isoformat()), 12 * 60)
    course = order_maintenance(nurse, center["id"], cycles=2)
    r = nurse.post(f"/api/v1/courses/{course['id']}/book", json={"through": "2027-03-31"})
    assert r.status_code == 200 and len(r.json()["booked"]) == 2, r.text
    first = min(sessions_of(nurse, course["patient_id"]), key=lambda s: s["start"])
    assert not first["start"].startswith(MONDAY.isoformat())  # after its target day
    entries = nurse.get("/api/v1/waitlist", params={"center_id": center["id"]}).json()["items"]
    assert [(e["course_id"], e["appointment_id"]) for e in entries] == [(course["id"], first["id"])]
    assert entries[0]["earliest"] == entries[0]["latest"] == MONDAY.isoformat()

    cancel(nurse, filler["id"])
    offer = open_offer(nurse, center["id"])
    assert offer is not None and offer["entry_id"] == entries[0]["id"]
    r = nurse.post(f"{OFFERS}/{offer['id']}/accept")
    assert r.status_code == 200, r.text
    assert r.json()["appointment_id"] == first["id"]  # moved, not booked anew
    moved = nurse.get(f"/api/v1/appointments/{first['id']}").json()
    assert moved["start"][:10] == MONDAY.isoformat() and moved["status"] == "booked"
    assert len(sessions_of(nurse, course["patient_id"])) == 2
    # The place it left is an opening of its own (nobody waits for it).
    assert open_offer(nurse, center["id"]) is None


def test_an_offer_is_announced_with_ids_and_times_only(nurse: httpx.Client, server: Server) -> None:
    """Each offer is a `waitlist.offer` event for webhook subscribers: what was offered to
    whom, by id, and until when; never a name."""
    center = make_center(nurse)
    chair = make_chair(nurse, center["id"])
    visit = booked(nurse, chair["id"], utc("09:00"))
    entry = add(nurse, center["id"], priority=1, **window())
    cancel(nurse, visit["id"])
    offer = open_offer(nurse, center["id"])
    assert offer is not None

    async def announced() -> list[dict[str, Any]]:
        db = Database(server.database_url)
        try:
            async with db.unit_of_work(write=False) as session:
                rows = await session.scalars(
                    select(OutboxEvent).where(OutboxEvent.type == "waitlist.offer")
                )
                return [dict(e.data) for e in rows if e.data.get("offer_id") == offer["id"]]
        finally:
            await db.dispose()

    (event,) = asyncio.run(announced())
    assert event["entry_id"] == entry["id"] and event["patient_id"] == entry["patient_id"]
    assert event["chair_id"] == chair["id"] and event["center_id"] == center["id"]
    assert same(event["start"], offer["start"]) and same(event["hold_until"], offer["hold_until"])
    patient = nurse.get(f"/api/v1/patients/{entry['patient_id']}").json()
    text = json.dumps(event)
    assert patient["family_name"] not in text and patient["given_name"] not in text
