"""The patient portal: a patient's own appointments, and their calendar feed.

A patient user reaches only their own patient's visits; anyone else's appointment is a 404,
the same answer as one that does not exist.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime

from fastapi import APIRouter, Request, Response, status

from app import calendar_feeds, ical
from app.api.deps import DEFAULT_PAGE, Allowed, Audited, Cursor, Limit, Session, get_settings
from app.auth.service import Caller
from core.clock import utcnow
from core.problems import Forbidden, Invalid
from core.schemas import Output, Page
from scheduling.appointments import patient_view
from scheduling.appointments.patient_view import Visit
from scheduling.localtime import zone

router = APIRouter(tags=["portal"])


class PlaceOut(Output):
    id: uuid.UUID
    name: str
    address: str | None
    timezone: str


class VisitOut(Output):
    id: uuid.UUID
    start: datetime
    end: datetime
    duration_minutes: int
    status: str
    chair_kind: str
    center: PlaceOut


def visit_out(v: Visit) -> VisitOut:
    return VisitOut(
        id=v.id,
        start=v.start,
        end=v.end,
        duration_minutes=v.minutes,
        status=v.status,
        chair_kind=v.chair_kind,
        center=PlaceOut(id=v.center_id, name=v.center_name, address=v.center_address,
                        timezone=v.timezone),
    )  # fmt: skip


class CalendarLinkOut(Output):
    url: str


def own_patient(caller: Caller) -> uuid.UUID:
    if caller.patient_id is None:  # a patient user always has one; belt and braces
        raise Forbidden("this user is not linked to a patient")
    return caller.patient_id


def _cursor(v: Visit) -> str:
    raw = f"{v.start.isoformat()}|{v.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        start, _, id_ = raw.partition("|")
        after = datetime.fromisoformat(start), uuid.UUID(id_)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise Invalid("the cursor is not one this list handed out") from exc
    if after[0].tzinfo is None:
        raise Invalid("the cursor is not one this list handed out")
    return after


@router.get("/api/v1/portal/appointments", response_model=Page[VisitOut])
async def my_appointments(
    session: Session,
    caller: Allowed,
    trail: Audited,
    include_past: bool = False,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Page[VisitOut]:
    """Your upcoming appointments, soonest first (with `include_past`, your history too).
    Times are in each center's local offset."""
    patient_id = own_patient(caller)
    trail.saw(patient_id)
    after = _after(cursor) if cursor else None
    await trail.record_now()  # the list's one read carries it (nothing fails after it)
    found = await patient_view.upcoming(
        session, patient_id, include_past=include_past, limit=limit, after=after
    )
    nxt = _cursor(found[limit - 1]) if len(found) > limit else None
    return Page[VisitOut](items=[visit_out(v) for v in found[:limit]], next_cursor=nxt)


@router.get("/api/v1/portal/appointments/{appointment_id}", response_model=VisitOut)
async def my_appointment(
    appointment_id: uuid.UUID, session: Session, caller: Allowed, trail: Audited
) -> VisitOut:
    """One of the signed-in patient's own appointments. Another patient's is 404, as if it
    did not exist."""
    patient_id = own_patient(caller)
    visit = await patient_view.visit(session, appointment_id, patient_id, trail)
    trail.saw(patient_id, visit.id)
    return visit_out(visit)


@router.get("/api/v1/portal/calendar-token", response_model=CalendarLinkOut)
async def calendar_link(
    request: Request, response: Response, session: Session, caller: Allowed, trail: Audited
) -> CalendarLinkOut:
    """A secret link to an iCalendar feed of your appointments, for your calendar app. The
    same link comes back until you revoke it (DELETE); anyone with it can read the feed."""
    patient_id = own_patient(caller)
    feed = await calendar_feeds.live_feed(session, patient_id)
    trail.saw(patient_id, feed.id)
    secret = calendar_feeds.secret_of(feed.id, get_settings(request).secret_key)
    response.headers["Cache-Control"] = "no-store"  # the link is a credential
    return CalendarLinkOut(url=str(request.url_for("calendar_feed", secret=secret)))


@router.delete("/api/v1/portal/calendar-token", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_calendar_link(session: Session, caller: Allowed, trail: Audited) -> Response:
    """Kill your calendar link at once; asking for a link again makes a new one."""
    patient_id = own_patient(caller)
    trail.saw(patient_id)
    await calendar_feeds.revoke(session, patient_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/calendar/{secret}.ics",
    name="calendar_feed",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}, "description": "RFC 5545 calendar"}},
)
async def calendar_feed(
    secret: str, request: Request, session: Session, trail: Audited
) -> Response:
    """The feed behind a calendar link: no token, the link's secret is the credential."""
    trail.credential = "calendar_feed"
    feed = await calendar_feeds.feed_of(session, secret, get_settings(request).secret_key)
    trail.saw(feed.patient_id)
    first, last = ical.window(utcnow().date())
    visits = await patient_view.between(
        session,
        feed.patient_id,
        datetime.combine(first, datetime.min.time(), zone("UTC")),
        datetime.combine(last, datetime.min.time(), zone("UTC")),
        statuses=(*patient_view.UPCOMING_STATUSES, "completed"),
    )
    return Response(
        ical.feed(visits, utcnow()),
        media_type=ical.ICAL,
        headers={"Cache-Control": "private, max-age=300"},
    )
