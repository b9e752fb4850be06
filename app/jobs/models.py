"""Job runs, and the lease that says which scheduler process runs jobs (SQLite)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.db import Base, Instant

RUN_OUTCOMES = ("running", "succeeded", "failed")
TRIGGERS = ("schedule", "manual", "command")


class JobRun(Base):
    """One run of a job: who started it, when, how it ended, and what it did."""

    __tablename__ = "job_runs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    job: Mapped[str] = mapped_column(String(40))
    # What part of the work, when a run covers less than everything (a center's booking run).
    scope: Mapped[str | None] = mapped_column(String(40))
    trigger: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime] = mapped_column(Instant, default=utcnow)
    # Renewed while the run works: a run whose heartbeat stopped died with its process.
    heartbeat_at: Mapped[datetime] = mapped_column(Instant, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(Instant)
    outcome: Mapped[str] = mapped_column(String(20), default="running")
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The exception's type and place only: messages may carry patient data.
    error: Mapped[str | None] = mapped_column(String(300))
    runner: Mapped[str] = mapped_column(String(80))

    __table_args__ = (
        CheckConstraint("outcome IN ('running', 'succeeded', 'failed')", name="outcome"),
        CheckConstraint("trigger IN ('schedule', 'manual', 'command')", name="trigger"),
        Index("ix_job_runs_job_started", "job", "started_at"),
        # One run of a job (for one scope) at a time, whichever process or route starts it.
        Index(
            "uq_job_runs_running",
            "job",
            text("coalesce(scope, '')"),
            unique=True,
            sqlite_where=text("outcome = 'running'"),
            postgresql_where=text("outcome = 'running'"),
        ),
    )


class SchedulerLease(Base):
    """On SQLite, the scheduler that holds this row (and keeps renewing it) is the leader.
    PostgreSQL uses an advisory lock held on a dedicated connection instead."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(80))
    expires_at: Mapped[datetime] = mapped_column(Instant)
    # The fencing token: raised by every takeover, checked before every job run.
    generation: Mapped[int] = mapped_column(Integer, server_default=text("0"))
