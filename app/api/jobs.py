"""Background jobs: what runs when, what each run did, and running one now (admins)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import func, select

from app.api.deps import DEFAULT_PAGE, Allowed, Audited, Cursor, Limit, OwnTransactions, Session
from app.jobs.models import JobRun
from app.jobs.registry import JOBS, run_job
from core.pagination import page
from core.problems import Invalid
from core.schemas import Page

router = APIRouter(prefix="/api/v1", tags=["jobs"])
JobName = Literal[
    "auto_book",
    "lapse_sweep",
    "no_show_sweep",
    "reminders",
    "webhook_delivery",
    "housekeeping",
    "drug_check",
    "waitlist_offers",
    "pas_inquiry",
]


class RunOut(BaseModel):
    id: uuid.UUID
    job: str
    scope: str | None
    trigger: str
    started_at: datetime
    finished_at: datetime | None
    outcome: Literal["running", "succeeded", "failed"]
    counts: dict[str, Any]
    error: str | None
    runner: str


class JobOut(BaseModel):
    name: str
    schedule: str
    last_run: RunOut | None


def run_out(r: JobRun) -> RunOut:
    return RunOut(
        id=r.id,
        job=r.job,
        scope=r.scope,
        trigger=r.trigger,
        started_at=r.started_at,
        finished_at=r.finished_at,
        outcome=r.outcome,
        counts=r.counts,
        error=r.error,
        runner=r.runner,
    )


@router.get("/jobs", response_model=list[JobOut])
async def list_jobs(session: Session, _: Allowed) -> list[JobOut]:
    """The background jobs: each one's schedule and its last run."""
    latest = (
        select(JobRun.job, func.max(JobRun.started_at).label("started"))
        .group_by(JobRun.job)
        .subquery()
    )
    runs = await session.scalars(
        select(JobRun).join(
            latest, (JobRun.job == latest.c.job) & (JobRun.started_at == latest.c.started)
        )
    )
    last = {r.job: r for r in runs}
    return [
        JobOut(
            name=j.name,
            schedule=j.schedule,
            last_run=run_out(last[j.name]) if j.name in last else None,
        )
        for j in JOBS.values()
    ]


@router.get("/jobs/runs", response_model=Page[RunOut])
async def list_runs(
    session: Session,
    _: Allowed,
    job: JobName | None = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Page[RunOut]:
    """Runs, newest first."""
    query = select(JobRun)
    if job is not None:
        query = query.where(JobRun.job == job)
    items: list[JobRun]
    items, nxt = await page(
        session, query, [JobRun.started_at, JobRun.id], limit, cursor, newest_first=True
    )
    return Page[RunOut](items=[run_out(r) for r in items], next_cursor=nxt)


@router.post("/jobs/{name}/run", response_model=RunOut, summary="Run a job now")
async def run_now(
    name: JobName,
    db: OwnTransactions,
    _: Allowed,
    trail: Audited,
    center_id: uuid.UUID | None = None,
) -> RunOut:
    """Run the job now and answer when it has finished; `center_id` books one center only
    (auto_book). It commits in transactions of its own; runs at once do no harm (every job
    is idempotent)."""
    if center_id is not None and name != "auto_book":
        raise Invalid("only auto_book runs for one center")
    scope = str(center_id) if center_id is not None else None
    run = await run_job(db, name, "manual", scope, center_id=center_id)
    trail.saw(resource_id=run.id)  # the run names the job
    return run_out(run)
