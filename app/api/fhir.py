"""FHIR R4: Appointment read and search, Patient and Location read, and the server's
CapabilityStatement.

Staff read any patient's appointments; a patient reads only their own, and another
patient's, by id or by search parameter, is a 404 that says nothing about it. Errors are
OperationOutcome (see app.api.errors); only JSON is spoken (406 for any other format).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse

from app import fhir
from app.api.deps import Allowed, Audited, Session
from app.api.smart import fhir_base
from core.clock import utcnow
from core.problems import Invalid, NotFound, Problem
from patients import service as patients
from scheduling.appointments import patient_view
from scheduling.centers import repository as centers


class NotAcceptable(Problem):
    status = 406
    slug = "not-acceptable"
    title = "Not acceptable"


class UnknownParameter(Problem):
    status = 400
    slug = "unknown-search-parameter"
    title = "Bad request"


def negotiate(
    request: Request,
    accept: Annotated[str | None, Header()] = None,
    format_: Annotated[str | None, Query(alias="_format", max_length=100)] = None,
) -> None:
    """JSON only: `_format` (which overrides Accept) or Accept must allow it (406 otherwise)."""
    if not fhir.speaks_json(accept, format_):
        raise NotAcceptable("this server speaks FHIR JSON only (application/fhir+json)")


router = APIRouter(prefix=fhir.BASE_PATH, tags=["fhir"], dependencies=[Depends(negotiate)])
# 404, 422 and the rest are documented for every route (app.api.openapi, as OperationOutcome
# under /fhir/r4); these are FHIR's own.
_OUTCOME: dict[str, Any] = {
    "content": {fhir.FHIR_JSON: {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}}
}
FHIR_OK: dict[int | str, dict[str, Any]] = {
    200: {"content": {fhir.FHIR_JSON: {}}, "description": "FHIR R4 JSON"},
    406: {**_OUTCOME, "description": "A format other than JSON was asked for"},
}
SEARCH_OK: dict[int | str, dict[str, Any]] = {
    **FHIR_OK,
    400: {**_OUTCOME, "description": "An unknown parameter under Prefer: handling=strict"},
}
MAX_COUNT = 500


def _fhir(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, media_type=fhir.FHIR_JSON)


@router.get("/metadata", response_class=JSONResponse, responses=FHIR_OK)
async def capability_statement(request: Request) -> JSONResponse:
    """The CapabilityStatement: what this server reads and searches, its search parameters,
    and how apps sign in (SMART on FHIR OAuth URLs). Public."""
    root = fhir_base(request).removesuffix(fhir.BASE_PATH)  # CHAIRSIDE_PUBLIC_URL, when set
    return _fhir(fhir.capability_statement(utcnow().date(), root))


def _self_url(request: Request, **extra: int) -> str:
    """The search as understood: only the parameters we know (FHIR: what was ignored is not
    echoed), plus `extra`."""
    kept = [
        (k, v)
        for k, v in request.query_params.multi_items()
        if k in fhir.APPOINTMENT_PARAMETERS and k not in extra
    ]
    kept += [(k, str(v)) for k, v in extra.items()]
    return str(request.url.replace(query=urlencode(kept)))


@router.get("/Appointment", response_class=JSONResponse, responses=SEARCH_OK)
async def search_appointments(
    request: Request,
    session: Session,
    caller: Allowed,
    trail: Audited,
    patient: Annotated[str | None, Query(max_length=80)] = None,
    date: Annotated[list[str] | None, Query(max_length=4)] = None,
    status: Annotated[list[str] | None, Query(max_length=4)] = None,
    id_: Annotated[list[str] | None, Query(alias="_id", max_length=4)] = None,
    count: Annotated[int, Query(alias="_count", ge=0, le=MAX_COUNT)] = 50,
    offset: Annotated[int, Query(alias="_offset", ge=0, le=patient_view.MOST_VISITS)] = 0,
    summary: Annotated[Literal["count", "false"] | None, Query(alias="_summary")] = None,
    total: Annotated[Literal["accurate", "estimate", "none"] | None, Query(alias="_total")] = None,
    total_method: Annotated[str | None, Query(alias="_totalMethod", max_length=20)] = None,
    prefer: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Search appointments: a Bundle (searchset) of one patient's appointments, soonest first.

    `patient` (a Patient id or Patient/{id}) is required of staff; a patient may leave it
    out. `_id`: appointment ids, comma for any of them. `date`: FHIR dates and dateTimes
    with prefixes, against the appointment's [start, end) (no time zone: the center's local
    time). `status`: FHIR codes. `_count=0` or `_summary=count`: the total only;
    `_total=none`: no total. Unknown parameters are ignored, or a 400 with
    `Prefer: handling=strict`; a malformed value of a known one is a 422."""
    if fhir.strict(prefer):
        unknown = fhir.unknown(request.query_params.keys(), fhir.APPOINTMENT_PARAMETERS)
        if unknown:
            # Parameter names are ours to echo (they are not values, so not patient data).
            names = ", ".join(n[:40] for n in unknown[:5])
            raise UnknownParameter(f"unknown search parameters (handling=strict): {names}")
    try:
        wanted = fhir.patient_reference(patient) if patient is not None else None
        tests = fhir.date_tests(date or [], utcnow())
        statuses = fhir.statuses(status or [])
        ids = fhir.ids(id_ or [])
        entries, with_total = fhir.totals(summary, total, total_method)
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
    matches = [
        v
        for v in visits
        if (ids is None or v.id in ids) and all(t.holds(v.start, v.end) for t in tests)
    ]
    size = count if entries else 0
    page = matches[offset : offset + size]
    more = size > 0 and offset + size < len(matches)
    next_url = _self_url(request, _offset=offset + size) if more else None
    bundle = fhir.searchset(
        page,
        str(request.base_url),
        _self_url(request),
        next_url,
        len(matches) if with_total else None,
    )
    return _fhir(bundle)


@router.get("/Appointment/{appointment_id}", response_class=JSONResponse, responses=FHIR_OK)
async def read_appointment(
    appointment_id: str, session: Session, caller: Allowed, trail: Audited
) -> JSONResponse:
    """Read an Appointment: its status, start, end, length, Patient and Location. A patient
    reads only their own (anyone else's is the same 404 as one that does not exist)."""
    mine = caller.patient_id if caller.role == "patient" else None
    wanted = fhir.resource_id(appointment_id)
    if wanted is None or (caller.role == "patient" and mine is None):
        raise NotFound("no such appointment")
    visit = await patient_view.visit(session, wanted, mine, trail)
    trail.saw(visit.patient_id, visit.id)
    return _fhir(fhir.appointment(visit))


@router.get("/Patient/{patient_id}", response_class=JSONResponse, responses=FHIR_OK)
async def read_patient(
    patient_id: str, session: Session, caller: Allowed, trail: Audited
) -> JSONResponse:
    """Read a Patient, minimum necessary: name and birth date (no MRN, insurance or clinical
    data). A patient reads only themselves (anyone else is the same 404 as nobody)."""
    wanted = fhir.resource_id(patient_id)
    trail.saw(wanted, wanted)
    if wanted is None or (caller.role == "patient" and caller.patient_id != wanted):
        raise NotFound("no such patient")
    return _fhir(fhir.patient(await patients.get_patient(session, wanted)))


@router.get("/Location/{center_id}", response_class=JSONResponse, responses=FHIR_OK)
async def read_location(center_id: str, session: Session, _: Allowed) -> JSONResponse:
    """Read a Location: a center's name, address and time zone (the R4 timezone
    extension), as its appointments name it."""
    wanted = fhir.resource_id(center_id)
    if wanted is None:
        raise NotFound("no such center")
    return _fhir(fhir.location(await centers.get_center(session, wanted)))
