"""FHIR R4: Appointment read and search, and the server's CapabilityStatement.

Staff read any patient's appointments; a patient reads only their own, and another
patient's, by id or by search parameter, is a 404 that says nothing about it. Errors are
problem+json like the rest of the API.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from app import fhir
from app.api.deps import Allowed, Audited, Session
from core.clock import utcnow
from core.problems import Invalid, NotFound
from scheduling.appointments import patient_view

router = APIRouter(prefix="/fhir/r4", tags=["fhir"])
FHIR_OK: dict[int | str, dict[str, Any]] = {
    200: {"content": {fhir.FHIR_JSON: {}}, "description": "FHIR R4 JSON"}
}
MAX_COUNT = 500


def _fhir(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, media_type=fhir.FHIR_JSON)


@router.get("/metadata", response_class=JSONResponse, responses=FHIR_OK)
async def capability_statement() -> JSONResponse:
    return _fhir(fhir.capability_statement(utcnow().date()))


@router.get("/Appointment", response_class=JSONResponse, responses=FHIR_OK)
async def search_appointments(
    request: Request,
    session: Session,
    caller: Allowed,
    trail: Audited,
    patient: Annotated[str | None, Query(max_length=80)] = None,
    date: Annotated[list[str] | None, Query(max_length=4)] = None,
    status: Annotated[list[str] | None, Query(max_length=4)] = None,
    count: Annotated[int, Query(alias="_count", ge=1, le=MAX_COUNT)] = 50,
    offset: Annotated[int, Query(alias="_offset", ge=0, le=patient_view.MOST_VISITS)] = 0,
) -> JSONResponse:
    """A Bundle (searchset) of one patient's appointments, soonest first. `patient` (a
    Patient id or Patient/{id}) is required of staff; a patient may leave it out. `date`:
    the local date at the center, with a prefix (`ge2026-12-01`); `status`: FHIR codes."""
    try:
        wanted = fhir.patient_reference(patient) if patient is not None else None
        tests = fhir.date_tests(date or [])
        statuses = fhir.statuses(status or [])
    except fhir.BadSearch as exc:
        raise Invalid(str(exc)) from exc
    if caller.role == "patient":
        own = caller.patient_id
        if own is None or (wanted is not None and wanted != own):
            trail.saw(wanted)  # the record shows whose appointments were asked for
            raise NotFound("no such patient")
        patient_id = own
    elif wanted is None:
        raise Invalid("patient is required: search one patient's appointments at a time")
    else:
        patient_id = wanted
    trail.saw(patient_id)
    visits = await patient_view.between(session, patient_id, None, None, statuses)
    matches = [v for v in visits if all(t.holds(v.start.date()) for t in tests)]
    page = matches[offset : offset + count]
    more = offset + count < len(matches)
    next_url = str(request.url.include_query_params(_offset=offset + count)) if more else None
    bundle = fhir.searchset(page, str(request.base_url), str(request.url), next_url)
    bundle["total"] = len(matches)
    return _fhir(bundle)


@router.get("/Appointment/{appointment_id}", response_class=JSONResponse, responses=FHIR_OK)
async def read_appointment(
    appointment_id: uuid.UUID, session: Session, caller: Allowed, trail: Audited
) -> JSONResponse:
    mine = caller.patient_id if caller.role == "patient" else None
    if caller.role == "patient" and mine is None:
        raise NotFound("no such appointment")
    visit = await patient_view.visit(session, appointment_id, mine, trail)
    trail.saw(visit.patient_id, visit.id)
    return _fhir(fhir.appointment(visit))
