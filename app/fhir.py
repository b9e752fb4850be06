"""Our appointments as FHIR R4 resources (plain dicts, ready for JSON). Pure functions.

An Appointment carries its status, start, end, length and two participants, the Patient and
the Location (the center); nothing clinical. Date searches compare the appointment's local date
at its center, as a patient reads it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from scheduling.appointments.patient_view import Visit

FHIR_JSON = "application/fhir+json"
FHIR_VERSION = "4.0.1"

# Our lifecycle in FHIR's words (R4 AppointmentStatus, whose order is booked, arrived,
# checked-in, fulfilled): checked in at the desk is "arrived"; in the chair, "checked-in"
# (the encounter has begun).
STATUS = {
    "booked": "booked",
    "checked_in": "arrived",
    "in_progress": "checked-in",
    "completed": "fulfilled",
    "cancelled": "cancelled",
    "no_show": "noshow",
}
OURS = {fhir: ours for ours, fhir in STATUS.items()}


def _instant(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


def appointment(visit: Visit) -> dict[str, Any]:
    location: dict[str, Any] = {"reference": f"Location/{visit.center_id}"}
    location["display"] = visit.center_name
    return {
        "resourceType": "Appointment",
        "id": str(visit.id),
        "meta": {"versionId": str(visit.version), "lastUpdated": _instant(visit.updated_at)},
        "status": STATUS[visit.status],
        "start": _instant(visit.start),
        "end": _instant(visit.end),
        "minutesDuration": visit.minutes,
        "participant": [
            {
                "actor": {"reference": f"Patient/{visit.patient_id}"},
                "required": "required",
                "status": "accepted",
            },
            {"actor": location, "required": "required", "status": "accepted"},
        ],
    }


def searchset(
    visits: Sequence[Visit], base_url: str, self_url: str, next_url: str | None
) -> dict[str, Any]:
    """`base_url`: the server's root, for each entry's absolute fullUrl."""
    links = [{"relation": "self", "url": self_url}]
    if next_url is not None:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": [
            {
                "fullUrl": f"{base_url.rstrip('/')}/fhir/r4/Appointment/{v.id}",
                "resource": appointment(v),
                "search": {"mode": "match"},
            }
            for v in visits
        ],
    }


def capability_statement(published: date) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": published.isoformat(),
        "kind": "instance",
        "software": {"name": "Chairside"},
        "implementation": {"description": "Chairside infusion-center scheduling"},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "description": "Bearer tokens from /api/v1/auth/token. Staff read any "
                    "patient's appointments; a patient reads only their own."
                },
                "resource": [
                    {
                        "type": "Appointment",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [
                            {"name": "patient", "type": "reference"},
                            {"name": "date", "type": "date"},
                            {"name": "status", "type": "token"},
                            {"name": "_count", "type": "number"},
                        ],
                    }
                ],
            }
        ],
    }


# --- search parameters -----------------------------------------------------------------------


class BadSearch(ValueError):
    pass


_PATIENT = re.compile(r"(?:Patient/)?([0-9a-fA-F-]{36})")
_DATE = re.compile(r"(eq|ne|lt|gt|le|ge|sa|eb|ap)?(\d{4}-\d{2}-\d{2})")


def patient_reference(value: str) -> uuid.UUID:
    """The id in `patient=ID` or `patient=Patient/ID`."""
    match = _PATIENT.fullmatch(value.strip())
    try:
        if match is not None:
            return uuid.UUID(match.group(1))
    except ValueError:
        pass
    raise BadSearch("patient must be a Patient id or Patient/{id}")


@dataclass(frozen=True)
class DateTest:
    prefix: str
    day: date

    def holds(self, local_day: date) -> bool:
        match self.prefix:
            case "eq":
                return local_day == self.day
            case "ne":
                return local_day != self.day
            case "lt" | "eb":
                return local_day < self.day
            case "gt" | "sa":
                return local_day > self.day
            case "le":
                return local_day <= self.day
            case "ge":
                return local_day >= self.day
        return False


def date_tests(values: Sequence[str]) -> list[DateTest]:
    """`date=ge2026-12-01&date=lt2027-01-01`: each a prefix and a calendar date."""
    tests = []
    for value in values:
        match = _DATE.fullmatch(value.strip())
        if match is None:
            raise BadSearch("date takes a prefix (eq, ne, lt, gt, le, ge) and YYYY-MM-DD")
        prefix = match.group(1) or "eq"
        if prefix == "ap":
            raise BadSearch("date does not support the ap prefix")
        try:
            tests.append(DateTest(prefix, date.fromisoformat(match.group(2))))
        except ValueError as exc:
            raise BadSearch("date is not a calendar date") from exc
    return tests


def statuses(values: Sequence[str]) -> list[str] | None:
    """Our statuses for `status=booked,cancelled` (FHIR codes, comma for OR)."""
    if not values:
        return None
    ours = []
    for value in values:
        for code in value.split(","):
            if code.strip() not in OURS:
                raise BadSearch(f"status must be one of {', '.join(sorted(OURS))}")
            ours.append(OURS[code.strip()])
    return ours
