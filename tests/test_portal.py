"""The patient portal, FHIR and calendar feeds: a patient's own appointments and nobody
else's; and the audit trail those reads leave."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fhir.resources.R4B.appointment import Appointment as FhirAppointment
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from icalendar import Calendar
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

from core.db import Database
from scheduling.appointments.models import Appointment
from tests.support.factories import book, make_center, make_chair, patient_user
from tests.support.servers import Server

CLINICAL_WORDS = ("diagnosis", "dose", "insurance", "coverage", "notes", "mrn", "G61", "IVIG")


@pytest.fixture
def two_patients(
    server: Server, nurse: httpx.Client
) -> Iterator[tuple[dict[str, Any], httpx.Client, dict[str, Any], httpx.Client]]:
    me, my_client = patient_user(server, nurse)
    other, their_client = patient_user(server, nurse)
    try:
        yield me, my_client, other, their_client
    finally:
        my_client.close()
        their_client.close()


def at(day: date, hour: int, tz: str) -> datetime:
    return datetime.combine(day, datetime.min.time(), ZoneInfo(tz)).replace(hour=hour)


def appointment_at(
    nurse: httpx.Client, patient_id: str, chair_id: str, day: date, hhmm: str, tz: str
) -> dict[str, Any]:
    start = datetime.combine(day, datetime.strptime(hhmm, "%H:%M").time(), ZoneInfo(tz))
    r = book(nurse, patient_id, chair_id, start.isoformat(), minutes=150)
    assert r.status_code == 201, r.text
    booked: dict[str, Any] = r.json()
    return booked


def test_a_patient_sees_their_own_upcoming_appointments_and_nothing_else(
    server: Server, nurse: httpx.Client, two_patients: Any
) -> None:
    me, mine, other, _ = two_patients
    tz = "America/Chicago"
    center = make_center(nurse, timezone=tz)
    assert nurse.patch(
        f"/api/v1/centers/{center['id']}",
        json={"address": "1 Infusion Way, Springfield"},
        headers={"If-Match": f'"{center["version"]}"'},
    ).is_success
    chair = make_chair(nurse, center["id"], kind="bed")["id"]
    soon = date.today() + timedelta(days=3)
    later = appointment_at(nurse, me["id"], chair, soon + timedelta(days=7), "09:00", tz)
    first = appointment_at(nurse, me["id"], chair, soon, "13:30", tz)
    theirs = appointment_at(nurse, other["id"], chair, soon, "09:00", tz)

    page = mine.get("/api/v1/portal/appointments")
    assert page.status_code == 200, page.text
    items = page.json()["items"]
    assert [a["id"] for a in items] == [first["id"], later["id"]]  # soonest first, mine only
    one = items[0]
    assert set(one) == {"id", "start", "end", "duration_minutes", "status", "chair_kind", "center"}
    assert one["start"].endswith(("-06:00", "-05:00")) and one["duration_minutes"] == 150
    assert one["chair_kind"] == "bed" and one["status"] == "booked"
    assert one["center"]["address"] == "1 Infusion Way, Springfield"
    assert not any(word.lower() in page.text.lower() for word in CLINICAL_WORDS)

    bad_cursor = base64.urlsafe_b64encode(f"2026-12-01T09:00:00|{first['id']}".encode())
    assert mine.get("/api/v1/portal/appointments", params={"cursor": bad_cursor}).status_code == 422
    # Paging walks the same list.
    first_page = mine.get("/api/v1/portal/appointments", params={"limit": 1}).json()
    rest = mine.get(
        "/api/v1/portal/appointments", params={"limit": 1, "cursor": first_page["next_cursor"]}
    ).json()
    assert [a["id"] for a in first_page["items"] + rest["items"]] == [first["id"], later["id"]]
    assert rest["next_cursor"] is None

    # Someone else's appointment, by any route: 404, and nothing of it in the answer.
    for path in (
        f"/api/v1/portal/appointments/{theirs['id']}",
        f"/fhir/r4/Appointment/{theirs['id']}",
    ):
        r = mine.get(path)
        assert r.status_code == 404, path
        assert theirs["id"] not in r.text and other["id"] not in r.text
    r = mine.get("/fhir/r4/Appointment", params={"patient": other["id"]})
    assert r.status_code == 404 and other["id"] not in r.text
    assert OperationOutcome.model_validate(r.json()).issue[0].code == "not-found"
    r = mine.get("/fhir/r4/Appointment", params={"patient": f"Patient/{other['id']}"})
    assert r.status_code == 404
    assert mine.get(f"/api/v1/portal/appointments/{first['id']}").json()["id"] == first["id"]
    # Staff routes stay closed to patients.
    assert mine.get(f"/api/v1/appointments/{theirs['id']}").status_code == 403

    # The cancelled one stays listed as cancelled (calendars drop it); history on request.
    assert nurse.post(f"/api/v1/appointments/{first['id']}/cancel").status_code == 200
    statuses = {
        a["id"]: a["status"] for a in mine.get("/api/v1/portal/appointments").json()["items"]
    }
    assert statuses == {first["id"]: "cancelled", later["id"]: "booked"}
    _move_to_the_past(server, later["id"])
    upcoming = mine.get("/api/v1/portal/appointments").json()["items"]
    assert [a["id"] for a in upcoming] == [first["id"]]
    everything = mine.get("/api/v1/portal/appointments", params={"include_past": True})
    assert {a["id"] for a in everything.json()["items"]} == {first["id"], later["id"]}


def _move_to_the_past(server: Server, appointment_id: str) -> None:
    """Nobody books the past through the API; the database can be told."""

    async def move() -> None:
        db = Database(server.database_url)
        now = datetime.now(ZoneInfo("UTC")).replace(microsecond=0)
        try:
            async with db.unit_of_work() as session:
                await session.execute(
                    update(Appointment)
                    .where(Appointment.id == uuid.UUID(appointment_id))
                    .values(
                        start_at=now - timedelta(days=2),
                        end_at=now - timedelta(days=2) + timedelta(hours=2),
                        status="completed",
                    )
                )
        finally:
            await db.dispose()

    asyncio.run(move())


def test_fhir_appointments_are_valid_r4_for_staff_and_for_the_patient(
    nurse: httpx.Client, anonymous: httpx.Client, two_patients: Any
) -> None:
    me, mine, _, _ = two_patients
    tz = "Europe/Berlin"
    center = make_center(nurse, timezone=tz)
    chair = make_chair(nurse, center["id"])["id"]
    day = date.today() + timedelta(days=5)
    one = appointment_at(nurse, me["id"], chair, day, "08:00", tz)
    two = appointment_at(nurse, me["id"], chair, day + timedelta(days=21), "08:00", tz)
    assert nurse.post(f"/api/v1/appointments/{two['id']}/cancel").status_code == 200

    meta = anonymous.get("/fhir/r4/metadata")
    assert meta.status_code == 200 and meta.headers["content-type"] == "application/fhir+json"
    assert CapabilityStatement.model_validate(meta.json()).fhirVersion == "4.0.1"

    staff = nurse.get("/fhir/r4/Appointment", params={"patient": me["id"]})
    assert staff.status_code == 200, staff.text
    bundle = Bundle.model_validate(staff.json())  # valid R4 (R4B) JSON, or this raises
    assert bundle.type == "searchset" and bundle.total == 2
    resources = [e["resource"] for e in staff.json()["entry"]]
    assert [r["id"] for r in resources] == [one["id"], two["id"]]
    assert [r["status"] for r in resources] == ["booked", "cancelled"]
    first = FhirAppointment.model_validate(resources[0])
    assert {p.actor.reference for p in first.participant if p.actor is not None} == {
        f"Patient/{me['id']}",
        f"Location/{center['id']}",
    }
    assert resources[0]["start"].endswith(("+01:00", "+02:00"))
    assert resources[0]["minutesDuration"] == 150
    assert not any(word.lower() in staff.text.lower() for word in CLINICAL_WORDS)

    # Search parameters: the local date at the center, and status.
    by_day = nurse.get(
        "/fhir/r4/Appointment", params={"patient": me["id"], "date": f"eq{day.isoformat()}"}
    ).json()
    assert [e["resource"]["id"] for e in by_day["entry"]] == [one["id"]]
    after = nurse.get(
        "/fhir/r4/Appointment",
        params=[("patient", me["id"]), ("date", f"gt{day.isoformat()}"), ("status", "cancelled")],
    ).json()
    assert [e["resource"]["id"] for e in after["entry"]] == [two["id"]]
    paged = nurse.get("/fhir/r4/Appointment", params={"patient": me["id"], "_count": 1}).json()
    assert len(paged["entry"]) == 1
    assert [link["relation"] for link in paged["link"]] == ["self", "next"]

    # The patient: themself without saying so, or by their own id.
    own = mine.get("/fhir/r4/Appointment")
    assert own.status_code == 200 and Bundle.model_validate(own.json()).total == 2
    assert mine.get("/fhir/r4/Appointment", params={"patient": me["id"]}).json()["total"] == 2
    read = mine.get(f"/fhir/r4/Appointment/{one['id']}")
    assert FhirAppointment.model_validate(read.json()).id == one["id"]

    # Bad searches are refused plainly, as OperationOutcome; staff must name the patient (no
    # unbounded query).
    unnamed = nurse.get("/fhir/r4/Appointment")
    assert unnamed.status_code == 422
    assert OperationOutcome.model_validate(unnamed.json()).issue[0].code == "invalid"
    for bad in (
        {"date": "yesterday"},
        {"status": "maybe"},
        {"patient": "Practitioner/1"},
        {"patient": "0" * 36},
        {"patient": "-" * 36},
    ):
        r = nurse.get("/fhir/r4/Appointment", params={"patient": me["id"], **bad})
        assert r.status_code == 422, bad
        assert r.headers["content-type"] == "application/fhir+json"
        assert OperationOutcome.model_validate(r.json()).issue[0].code == "invalid"


def test_a_calendar_link_serves_an_icalendar_feed_until_it_is_revoked(
    nurse: httpx.Client, anonymous: httpx.Client, two_patients: Any
) -> None:
    me, mine, _, theirs = two_patients
    tz = "Australia/Sydney"
    center = make_center(nurse, timezone=tz)
    chair = make_chair(nurse, center["id"])["id"]
    day = date.today() + timedelta(days=4)
    visit = appointment_at(nurse, me["id"], chair, day, "10:00", tz)

    link = mine.get("/api/v1/portal/calendar-token")
    assert link.status_code == 200, link.text
    url = link.json()["url"]
    assert mine.get("/api/v1/portal/calendar-token").json()["url"] == url  # the same link
    assert theirs.get("/api/v1/portal/calendar-token").json()["url"] != url

    def events() -> list[Any]:
        r = anonymous.get(url)  # no token: the link is the credential
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/calendar")
        cal = Calendar.from_ical(r.content)
        assert [tz_.get("tzid") for tz_ in cal.walk("VTIMEZONE")] == [tz]
        return list(cal.walk("VEVENT"))

    (event,) = events()
    uid = str(event.get("uid"))
    assert event.get("dtstart").dt == datetime.combine(
        day, datetime.min.time(), ZoneInfo(tz)
    ).replace(hour=10)
    assert event.get("dtstart").params["TZID"] == tz
    assert str(event.get("status")) == "CONFIRMED" and int(event.get("sequence")) == 1
    assert "Infusion" in str(event.get("summary"))

    moved = nurse.patch(
        f"/api/v1/appointments/{visit['id']}",
        json={
            "start": datetime.combine(day, datetime.min.time(), ZoneInfo(tz))
            .replace(hour=12)
            .isoformat()
        },
        headers={"If-Match": f'"{visit["version"]}"'},
    )
    assert moved.status_code == 200, moved.text
    (event,) = events()
    assert str(event.get("uid")) == uid and int(event.get("sequence")) == 2
    assert event.get("dtstart").dt.hour == 12
    # The center's new address is news for the calendar too.
    version = nurse.get(f"/api/v1/centers/{center['id']}").json()["version"]
    moved_house = nurse.patch(
        f"/api/v1/centers/{center['id']}",
        json={"address": "9 New Street"},
        headers={"If-Match": f'"{version}"'},
    )
    assert moved_house.status_code == 200, moved_house.text
    (event,) = events()
    assert int(event.get("sequence")) == 3 and "9 New Street" in str(event.get("location"))
    assert nurse.post(f"/api/v1/appointments/{visit['id']}/cancel").status_code == 200
    (event,) = events()
    assert str(event.get("uid")) == uid and str(event.get("status")) == "CANCELLED"
    # A patient with nothing booked gets a valid, empty calendar.
    empty = anonymous.get(theirs.get("/api/v1/portal/calendar-token").json()["url"])
    assert empty.status_code == 200
    assert list(Calendar.from_ical(empty.content).walk("VEVENT")) == []

    # Bearer tokens never ride in a URL, and the link opens nothing else.
    token = mine.headers["Authorization"].split()[1]
    assert (
        anonymous.get("/api/v1/portal/appointments", params={"access_token": token}).status_code
        == 401
    )
    assert anonymous.get(url.replace(".ics", "0.ics")).status_code == 404
    assert mine.delete("/api/v1/portal/calendar-token").status_code == 204
    assert anonymous.get(url).status_code == 404
    fresh = mine.get("/api/v1/portal/calendar-token")
    assert fresh.headers["Cache-Control"] == "no-store"
    assert fresh.json()["url"] != url and anonymous.get(fresh.json()["url"]).status_code == 200


def events_of(admin: httpx.Client, request_id: str, **filters: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {**filters, "limit": "500", **({"cursor": cursor} if cursor else {})}
        page = admin.get("/api/v1/audit-events", params=params)
        assert page.status_code == 200, page.text
        found += [e for e in page.json()["items"] if e["request_id"] == request_id]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return found


def test_every_touch_of_patient_data_is_on_the_audit_trail_once(
    server: Server, nurse: httpx.Client, admin: httpx.Client, two_patients: Any
) -> None:
    me, mine, other, _ = two_patients
    center = make_center(nurse)
    chair = make_chair(nurse, center["id"])["id"]
    day = date.today() + timedelta(days=6)
    theirs = appointment_at(nurse, other["id"], chair, day, "09:00", center["timezone"])
    my_user = mine.get("/api/v1/auth/me").json()["id"]

    read = mine.get("/api/v1/portal/appointments")
    (event,) = events_of(admin, read.headers["x-request-id"], patient_id=me["id"])
    assert event["actor_id"] == my_user and event["role"] == "patient"
    assert (event["action"], event["resource_type"], event["outcome"]) == (
        "search",
        "appointment",
        "success",
    )
    assert event["client"] == "127.0.0.1"
    assert set(event) == {
        "id", "at", "actor_id", "actor_email", "role", "action", "patient_id", "resource_type",
        "resource_id", "outcome", "request_id", "client",
    }  # fmt: skip
    assert str(event["actor_email"]).endswith("@test.local")

    # A refused look at someone else's appointment: on record as denied, with what was asked
    # and whose it is (for whoever looks into that patient's record, never for the asker).
    denied = mine.get(f"/api/v1/portal/appointments/{theirs['id']}")
    (event,) = events_of(admin, denied.headers["x-request-id"], actor_id=my_user)
    assert event["outcome"] == "denied" and event["resource_id"] == theirs["id"]
    assert event["patient_id"] == other["id"] and other["id"] not in denied.text
    probe = mine.get("/fhir/r4/Appointment", params={"patient": f"Patient/{other['id']}"})
    (event,) = events_of(admin, probe.headers["x-request-id"], patient_id=other["id"])
    assert (event["outcome"], event["actor_id"]) == ("denied", my_user)
    nobody = httpx.get(f"{server.base_url}/api/v1/patients/{other['id']}")
    (event,) = events_of(admin, nobody.headers["x-request-id"], patient_id=other["id"])
    assert (event["outcome"], event["role"], event["actor_id"]) == ("denied", "anonymous", None)

    # A write that fails leaves one event, "error", and no success: the write rolled back.
    clash = book(nurse, me["id"], chair, at(day, 9, center["timezone"]).isoformat())
    assert clash.status_code == 409
    (event,) = events_of(admin, clash.headers["x-request-id"])
    assert (event["action"], event["outcome"]) == ("create", "error")
    junk = nurse.post("/api/v1/appointments", json={"patient_id": me["id"]})
    assert junk.status_code == 422
    (event,) = events_of(admin, junk.headers["x-request-id"])
    assert (event["action"], event["outcome"]) == ("create", "error")
    made = book(nurse, me["id"], chair, at(day, 14, center["timezone"]).isoformat())
    (event,) = events_of(admin, made.headers["x-request-id"], patient_id=me["id"])
    assert (event["action"], event["outcome"], event["resource_id"]) == (
        "create",
        "success",
        made.json()["id"],
    )
    # Reading the trail is on the trail too; `since` narrows it.
    later = admin.get("/api/v1/audit-events", params={"since": event["at"], "limit": 500})
    assert all(e["at"] >= event["at"] for e in later.json()["items"])


def test_the_audit_trail_cannot_be_changed_or_removed(server: Server, nurse: httpx.Client) -> None:
    nurse.get("/api/v1/patients")  # at least one event

    async def tamper() -> list[str]:
        db = Database(server.database_url)
        refused = []
        statements = ["UPDATE audit_events SET outcome = 'success'", "DELETE FROM audit_events"]
        if db.dialect == "postgresql":
            statements.append("TRUNCATE audit_events")
        try:
            for statement in statements:
                try:
                    async with db.unit_of_work() as session:
                        await session.execute(text(statement))
                except DBAPIError as exc:
                    assert "never changed or removed" in str(exc.orig)
                    refused.append(statement.split()[0])
            async with db.unit_of_work(write=False) as session:
                assert await session.scalar(text("SELECT count(*) FROM audit_events"))
        finally:
            await db.dispose()
        return refused

    refused = asyncio.run(tamper())
    assert refused == ["UPDATE", "DELETE"] + (["TRUNCATE"] if server.kind == "postgresql" else [])


def test_deactivating_a_patient_user_kills_their_calendar_link(
    server: Server, anonymous: httpx.Client, two_patients: Any
) -> None:
    from app.auth.service import deactivate_user
    from core.users import User

    _, mine, _, _ = two_patients
    url = mine.get("/api/v1/portal/calendar-token").json()["url"]
    assert anonymous.get(url).status_code == 200
    user_id = uuid.UUID(mine.get("/api/v1/auth/me").json()["id"])

    async def deactivate() -> None:
        db = Database(server.database_url)
        try:
            async with db.unit_of_work() as session:
                email = await session.scalar(select(User.email).where(User.id == user_id))
                assert email is not None
                await deactivate_user(session, email)
        finally:
            await db.dispose()

    asyncio.run(deactivate())
    assert anonymous.get(url).status_code == 404
