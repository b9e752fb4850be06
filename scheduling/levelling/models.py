"""Optimiser proposals."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.db import Base, IdMixin, Instant
from scheduling.centers.models import _in

OPTIMISATION_STATUSES = ("proposed", "applied")


class Optimisation(IdMixin, Base):
    """What the optimiser proposes for a center's days (`first_day`..`last_day`): every move
    (`moves`), the figures before and after (`figures`) and the lower bound it proved on the
    peak census. A person applies it, once (`applied`); `fingerprint` is what each day looked
    like when it was proposed, so a proposal for a day that changed since is refused."""

    __tablename__ = "optimisations"

    center_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("centers.id"))
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), default="proposed")
    moves: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    fingerprint: Mapped[dict[str, str]] = mapped_column(JSON)
    lower_bound_peak: Mapped[int] = mapped_column(Integer)
    optimal: Mapped[bool] = mapped_column(Boolean)
    solve_ms: Mapped[int] = mapped_column(Integer)
    time_limit_seconds: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(Instant, default=utcnow)
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    applied_at: Mapped[datetime | None] = mapped_column(Instant)
    applied_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))

    __table_args__ = (
        CheckConstraint("first_day <= last_day", name="days"),
        CheckConstraint(_in("status", OPTIMISATION_STATUSES), name="status"),
        Index("ix_optimisations_center_created", "center_id", "created_at"),
    )
