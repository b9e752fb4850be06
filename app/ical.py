"""A patient's visits as an RFC 5545 calendar. Pure: visits in, bytes out.

Each visit is a VEVENT whose UID never changes, whose SEQUENCE is the appointment's version
(so a move replaces the old entry) and whose STATUS is CANCELLED once cancelled (so the entry
disappears). Times are local to the center, with the center's VTIMEZONE in the feed. The
summary says only that it is an infusion visit: the feed's URL is a bearer secret, and a
calendar is shown on lock screens.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from icalendar import Calendar, Event, Timezone

from scheduling.appointments.patient_view import Visit
from scheduling.localtime import zone

ICAL = "text/calendar; charset=utf-8"
STATUS = {"cancelled": "CANCELLED", "booked": "CONFIRMED"}
CHAIR_KINDS = {"chair": "infusion chair", "bed": "bed", "isolation": "isolation room"}


def feed(visits: Sequence[Visit], stamped: datetime) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", "-//Chairside//Infusion visits//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", "Infusion visits")
    for tz_name in sorted({v.timezone for v in visits}):
        first = min(v.start for v in visits if v.timezone == tz_name).date()
        last = max(v.end for v in visits if v.timezone == tz_name).date()
        calendar.add_component(
            Timezone.from_tzinfo(
                zone(tz_name),
                tzid=tz_name,
                first_date=first - timedelta(days=366),
                last_date=last + timedelta(days=366),
            )
        )
    for v in visits:
        calendar.add_component(_event(v, stamped))
    if not visits:  # RFC 5545 wants at least one component
        calendar.add_component(Timezone.from_tzinfo(zone("UTC"), tzid="UTC"))
    data: bytes = calendar.to_ical()
    return data


def _event(v: Visit, stamped: datetime) -> Event:
    event = Event()
    event.add("uid", f"{v.id}@chairside")
    # Bumped by a move or a cancellation, and by the center's new name or address.
    event.add("sequence", v.version + v.center_version - 1)
    event.add("dtstamp", stamped)
    event.add("last-modified", v.updated_at)
    event.add("dtstart", v.start)  # aware, in the center's zone: written with its TZID
    event.add("dtend", v.end)
    event.add("summary", "Infusion visit")
    where = v.center_name + (f", {v.center_address}" if v.center_address else "")
    event.add("location", where)
    event.add(
        "description",
        f"{CHAIR_KINDS.get(v.chair_kind, v.chair_kind).capitalize()}, about {v.minutes} minutes.",
    )
    event.add("status", STATUS.get(v.status, "CONFIRMED"))
    event.add("transp", "OPAQUE")
    return event


def window(today: date) -> tuple[date, date]:
    """What a feed shows: the last month (calendars keep recent history) and what is booked."""
    return today - timedelta(days=31), today + timedelta(days=3 * 366)
