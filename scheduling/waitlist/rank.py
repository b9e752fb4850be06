"""Which waitlist entries an opening fits, most deserving first. Pure: no database.

An entry fits an opening when it is waiting, at the opening's center, the opening's day is in
its window (`earliest` <= day <= `latest`), it needs no longer than the opening lasts, and it
wants the opening's kind of chair exactly. A bed does not take a chair-kind entry (nor an
isolation room any other): booking places a course's sessions only on chairs of its own kind,
so an offer across kinds could not be booked, and a bed or an isolation room handed to a
patient who needs neither is one lost to the next patient who does.

The fitting entries are ranked by priority (1 first), then by deadline — the fewer days left
from the opening's day to the entry's `latest`, the sooner — then by who waited longest
(`created_at`), then by id, so the order is total and the same on every run."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time


@dataclass(frozen=True)
class Opening:
    center_id: uuid.UUID
    day: date
    start: time
    duration_minutes: int
    chair_kind: str


@dataclass(frozen=True)
class Entry:
    id: uuid.UUID
    center_id: uuid.UUID
    status: str
    earliest: date
    latest: date
    duration_minutes: int
    chair_kind: str
    priority: int
    created_at: datetime


def fits(opening: Opening, entry: Entry) -> bool:
    return (
        entry.status == "waiting"
        and entry.center_id == opening.center_id
        and entry.earliest <= opening.day <= entry.latest
        and entry.duration_minutes <= opening.duration_minutes
        and entry.chair_kind == opening.chair_kind
    )


def rank_key(opening: Opening, entry: Entry) -> tuple[int, int, datetime, uuid.UUID]:
    return (entry.priority, (entry.latest - opening.day).days, entry.created_at, entry.id)


def ranked(opening: Opening, entries: Iterable[Entry]) -> list[Entry]:
    """The entries that fit the opening, in the order it would be offered to them."""
    return sorted((e for e in entries if fits(opening, e)), key=lambda e: rank_key(opening, e))
