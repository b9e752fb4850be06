"""Patient registration and search."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import Field

from app.api.deps import DEFAULT_PAGE, Allowed, Audited, Cursor, IfMatch, Limit, Session, etag
from core.pagination import MAX_LIMIT
from core.schemas import Input, Page, SearchText
from patients import service
from patients.schemas import PatientCreate, PatientOut, PatientUpdate
from scheduling.courses import changes

router = APIRouter(prefix="/api/v1", tags=["patients"])


@router.post(
    "/patients",
    status_code=status.HTTP_201_CREATED,
    response_model=PatientOut,
    responses={409: {"description": "A patient with this MRN exists"}},
)
async def create_patient(
    data: PatientCreate, session: Session, caller: Allowed, trail: Audited, response: Response
) -> PatientOut:
    """Register a patient. Answers 201 with its Location and ETag; 409 when a patient with
    this MRN exists."""
    patient = await service.create_patient(session, data, caller.user_id)
    trail.saw(patient.id, patient.id)
    response.headers["Location"] = f"/api/v1/patients/{patient.id}"
    response.headers["ETag"] = etag(patient.version)
    return PatientOut.model_validate(patient)


@router.get("/patients", response_model=Page[PatientOut])
async def search_patients(
    session: Session,
    _: Allowed,
    q: Annotated[SearchText | None, Query()] = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Page[PatientOut]:
    """Patients, a page at a time; with `q`, those whose MRN or name contains it. The terms
    are in the URL: POST /api/v1/patients/search keeps them out of URLs and logs."""
    items, nxt = await service.search_patients(session, q, limit, cursor)
    return Page[PatientOut](items=[PatientOut.model_validate(p) for p in items], next_cursor=nxt)


class PatientSearch(Input):
    q: SearchText | None = None
    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(default=None, max_length=500)


@router.post("/patients/search", response_model=Page[PatientOut])
async def search_patients_privately(
    data: PatientSearch, session: Session, _: Allowed
) -> Page[PatientOut]:
    """The same search with the terms in the body, so names never appear in URLs or logs."""
    items, nxt = await service.search_patients(session, data.q, data.limit, data.cursor)
    return Page[PatientOut](items=[PatientOut.model_validate(p) for p in items], next_cursor=nxt)


@router.get("/patients/{patient_id}", response_model=PatientOut)
async def get_patient(
    patient_id: uuid.UUID, session: Session, _: Allowed, response: Response
) -> PatientOut:
    """One patient's record, with its ETag for a later change."""
    patient = await service.get_patient(session, patient_id)
    response.headers["ETag"] = etag(patient.version)
    return PatientOut.model_validate(patient)


@router.patch("/patients/{patient_id}", response_model=PatientOut)
async def update_patient(
    patient_id: uuid.UUID,
    data: PatientUpdate,
    version: IfMatch,
    session: Session,
    caller: Allowed,
    response: Response,
) -> PatientOut:
    """Change a patient's record (each change is kept in its history). Send If-Match with the
    ETag you read: 428 without one, 412 when it is stale."""
    patient = await changes.update_patient(session, patient_id, version, data, caller.user_id)
    response.headers["ETag"] = etag(patient.version)
    return PatientOut.model_validate(patient)
