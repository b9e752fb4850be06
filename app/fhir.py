"""Our appointments, patients and centers as FHIR R4 resources (plain dicts, ready for JSON),
the errors as OperationOutcome, and the search parameters read the FHIR way. Pure functions.

An Appointment carries its status, start, end, length and two participants, the Patient and
the Location (the center); nothing clinical. A Patient is the minimum an app needs to greet
them (name, birth date); no MRN, insurance or clinical data.

Date searches follow FHIR R4 (search.html#date): a value stands for the range its precision
implies (`2026` the year, `2026-12-11` the day, `2026-12-11T09:00Z` that minute), and an
appointment for the period [start, end). Values without a time zone mean the center's local
time, as a patient reads the appointment; values with one compare instants.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from patients.models import Patient
from scheduling.appointments.patient_view import Visit
from scheduling.centers.models import Center

FHIR_JSON = "application/fhir+json"
FHIR_VERSION = "4.0.1"
BASE_PATH = "/fhir/r4"
TIMEZONE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/timezone"
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
SECURITY_SERVICE = "http://terminology.hl7.org/CodeSystem/restful-security-service"
PROBLEM_TYPES = "https://chairside.dev/problems"

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


def under_fhir(path: str) -> bool:
    """Whether a request path is FHIR's (its errors are then OperationOutcome)."""
    return path == BASE_PATH or path.startswith(BASE_PATH + "/")


def _instant(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


def _meta(version: int, updated_at: datetime) -> dict[str, str]:
    return {"versionId": str(version), "lastUpdated": _instant(updated_at)}


def appointment(visit: Visit) -> dict[str, Any]:
    location: dict[str, Any] = {"reference": f"Location/{visit.center_id}"}
    location["display"] = visit.center_name
    return {
        "resourceType": "Appointment",
        "id": str(visit.id),
        "meta": _meta(visit.version, visit.updated_at),
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


def patient(person: Patient) -> dict[str, Any]:
    """Minimum necessary: who they are by name and birth date, nothing else."""
    return {
        "resourceType": "Patient",
        "id": str(person.id),
        "meta": _meta(person.version, person.updated_at),
        "active": True,
        "name": [{"use": "official", "family": person.family_name, "given": [person.given_name]}],
        "birthDate": person.birth_date.isoformat(),
    }


def location(center: Center) -> dict[str, Any]:
    """A center: where patients go, and the time zone its appointments are told in."""
    body: dict[str, Any] = {
        "resourceType": "Location",
        "id": str(center.id),
        "meta": _meta(center.version, center.updated_at),
        "extension": [{"url": TIMEZONE_EXTENSION, "valueCode": center.timezone}],
        "status": "active",
        "name": center.name,
        "mode": "instance",
    }
    if center.address:
        body["address"] = {"text": center.address}
    return body


def searchset(
    visits: Sequence[Visit],
    base_url: str,
    self_url: str,
    next_url: str | None,
    total: int | None = None,
) -> dict[str, Any]:
    """`base_url`: the server's root, for each entry's absolute fullUrl. `total` None: the
    Bundle says no total (`_total=none`)."""
    links = [{"relation": "self", "url": self_url}]
    if next_url is not None:
        links.append({"relation": "next", "url": next_url})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        bundle["total"] = total
    bundle["link"] = links
    bundle["entry"] = [
        {
            "fullUrl": f"{base_url.rstrip('/')}{BASE_PATH}/Appointment/{v.id}",
            "resource": appointment(v),
            "search": {"mode": "match"},
        }
        for v in visits
    ]
    if not bundle["entry"]:
        del bundle["entry"]  # FHIR: an empty list is left out, not sent as []
    return bundle


# --- what the server can do -------------------------------------------------------------------

_SPEC = "http://hl7.org/fhir/SearchParameter/"
# name, type, definition (FHIR's own SearchParameter, where there is one), what it does here.
APPOINTMENT_SEARCH = (
    ("_id", "token", _SPEC + "Resource-id", "Appointment ids, comma-separated (any of them)."),
    (
        "patient",
        "reference",
        _SPEC + "Appointment-patient",
        "A Patient id or Patient/{id}. Required of staff; a patient may leave it out and "
        "may name only themselves (anyone else's is a 404).",
    ),
    (
        "date",
        "date",
        _SPEC + "clinical-date",
        "The appointment's period [start, end) against the range the value's precision "
        "implies (YYYY, YYYY-MM, YYYY-MM-DD, or a dateTime to the minute, second or "
        "fraction). Prefixes eq ne gt lt ge le sa eb ap as FHIR defines them for ranges; "
        "ap widens the value by 10% of its distance from now, at least a day, each side. "
        "Without a time zone the center's local time; with one, instants. Repeat it for "
        "AND (up to 4).",
    ),
    (
        "status",
        "token",
        _SPEC + "Appointment-status",
        "booked, arrived, checked-in, fulfilled, cancelled, noshow; comma-separated (any).",
    ),
    ("_count", "number", None, "Entries per page, 0-500 (default 50); 0 gives the total only."),
    ("_offset", "number", None, "How many matches to skip (the next link carries it)."),
    ("_summary", "token", None, "count: the total only, no entries; false: everything."),
    ("_total", "token", None, "accurate or estimate (the exact total), none (no total)."),
    ("_totalMethod", "token", None, "What fhirpy's count() sends: count means _total=accurate."),
    (
        "_format",
        "token",
        None,
        "json, application/json or application/fhir+json; any other format is a 406.",
    ),
)
APPOINTMENT_PARAMETERS = frozenset(name for name, *_ in APPOINTMENT_SEARCH)


def _search_param(name: str, kind: str, definition: str | None, text: str) -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "type": kind, "documentation": text}
    if definition is not None:
        param["definition"] = definition
    return param


def capability_statement(published: date, base_url: str) -> dict[str, Any]:
    """`base_url`: the server's public root (CHAIRSIDE_PUBLIC_URL, or as the caller reached
    it), for the SMART OAuth URLs."""
    root = base_url.rstrip("/")
    read = [{"code": "read"}]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": published.isoformat(),
        "kind": "instance",
        "software": {"name": "Chairside"},
        "implementation": {
            "description": "Chairside infusion-center scheduling",
            "url": f"{root}{BASE_PATH}",
        },
        "fhirVersion": FHIR_VERSION,
        "format": [FHIR_JSON, "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Unknown search parameters are ignored unless the request "
                "says Prefer: handling=strict (then 400). Errors are OperationOutcome.",
                "security": {
                    "extension": [
                        {
                            "url": OAUTH_URIS,
                            "extension": [
                                {"url": "authorize", "valueUri": f"{root}/oauth/authorize"},
                                {"url": "token", "valueUri": f"{root}/oauth/token"},
                                {"url": "revoke", "valueUri": f"{root}/oauth/revoke"},
                            ],
                        }
                    ],
                    "cors": False,
                    "service": [
                        {
                            "coding": [{"system": SECURITY_SERVICE, "code": "SMART-on-FHIR"}],
                            "text": "SMART App Launch (authorization code with PKCE)",
                        }
                    ],
                    "description": "Bearer tokens: SMART App Launch for patient apps, or "
                    "/api/v1/auth/token. Staff read any patient's appointments; a patient "
                    "reads only their own.",
                },
                "resource": [
                    {
                        "type": "Appointment",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [_search_param(*p) for p in APPOINTMENT_SEARCH],
                    },
                    {
                        "type": "Patient",
                        "interaction": read,
                        "documentation": "Name and birth date only; a patient reads "
                        "themselves, staff anyone.",
                    },
                    {
                        "type": "Location",
                        "interaction": read,
                        "documentation": "A center: name, address and time zone.",
                    },
                ],
            }
        ],
    }


# --- errors -----------------------------------------------------------------------------------

# FHIR's IssueType for each of our statuses (R4 valueset issue-type).
_ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    412: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "invalid",
    428: "required",
    429: "throttled",
    503: "transient",
}


def issue_code(status: int) -> str:
    if status in _ISSUE_CODES:
        return _ISSUE_CODES[status]
    return "exception" if status >= 500 else "processing"


def operation_outcome(
    status: int,
    diagnostics: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    fields: Iterable[str] = (),
) -> dict[str, Any]:
    """The problem with `status` as FHIR tells it. `diagnostics` and `fields` (each "where:
    what") are the problem's own safe text, never the values sent."""
    code = issue_code(status)
    severity = "fatal" if status == 500 else "error"
    first: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if slug is not None:
        first["details"] = {"coding": [{"system": PROBLEM_TYPES, "code": slug}]}
        if title is not None:
            first["details"]["text"] = title
    more = [{"severity": severity, "code": code, "diagnostics": f} for f in fields]
    return {"resourceType": "OperationOutcome", "issue": [first, *more]}


# --- formats and handling ---------------------------------------------------------------------

_JSON_TYPES = frozenset({"application/fhir+json", "application/json", "application/json+fhir"})
_JSON_FORMATS = _JSON_TYPES | {"json"}


def _media_ranges(accept: str) -> Iterable[tuple[str, float]]:
    for part in accept.split(","):
        kind, *params = (p.strip() for p in part.split(";"))
        if not kind:
            continue
        weight = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        yield kind.lower(), weight


def speaks_json(accept: str | None, format_: str | None) -> bool:
    """Whether we may answer in JSON: `_format` (which overrides Accept, as FHIR says) names
    JSON, or the Accept header takes JSON (none, */*, application/*, a JSON type)."""
    if format_ is not None:
        # An unencoded '+' arrives as a space.
        return format_.strip().lower().replace(" ", "+") in _JSON_FORMATS
    if accept is None or not accept.strip():
        return True
    return any(
        weight > 0 and (kind in _JSON_TYPES or kind in ("*/*", "application/*"))
        for kind, weight in _media_ranges(accept)
    )


def strict(prefer: str | None) -> bool:
    """`Prefer: handling=strict` (RFC 7240, FHIR search.html#errors): refuse what we do not
    know instead of ignoring it."""
    for preference in (prefer or "").split(","):
        key, _, value = preference.partition("=")
        if key.strip().lower() == "handling" and value.strip().strip('"').lower() == "strict":
            return True
    return False


def unknown(names: Iterable[str], known: frozenset[str]) -> list[str]:
    """The parameter names we do not know (modifiers such as `date:missing` included)."""
    return sorted({n for n in names if n not in known})


# --- search parameters -----------------------------------------------------------------------


class BadSearch(ValueError):
    pass


_PATIENT = re.compile(r"(?:Patient/)?([0-9a-fA-F-]{36})")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # FHIR's id type


def patient_reference(value: str) -> uuid.UUID:
    """The id in `patient=ID` or `patient=Patient/ID`."""
    match = _PATIENT.fullmatch(value.strip())
    try:
        if match is not None:
            return uuid.UUID(match.group(1))
    except ValueError:
        pass
    raise BadSearch("patient must be a Patient id or Patient/{id}")


def resource_id(value: str) -> uuid.UUID | None:
    """Our id for a FHIR id in a URL: None when it cannot be one of ours (so: not found)."""
    try:
        return uuid.UUID(value) if len(value) == 36 else None
    except ValueError:
        return None


def ids(values: Sequence[str]) -> set[uuid.UUID] | None:
    """`_id=a,b`: any of these. A well-formed FHIR id that is not one of ours matches nothing;
    something that is no FHIR id at all is refused. Repeated, each must hold (AND)."""
    if not values:
        return None
    wanted: set[uuid.UUID] | None = None
    for value in values:
        these = set()
        for part in value.split(","):
            if _ID.fullmatch(part.strip()) is None:
                raise BadSearch(
                    "_id takes FHIR ids (letters, digits, '-' and '.'), comma-separated"
                )
            ours = resource_id(part.strip())
            if ours is not None:
                these.add(ours)
        wanted = these if wanted is None else wanted & these
    return wanted


PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
_DATE = re.compile(
    r"(?P<prefix>eq|ne|gt|lt|ge|le|sa|eb|ap)?"
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?"
)
# How wide `ap` is: this share of the distance between now and the value, at least a day.
APPROXIMATELY = 0.1
AT_LEAST = timedelta(days=1)


@dataclass(frozen=True)
class DateTest:
    """One `date=` value: its prefix and the half-open range [low, high) its precision implies;
    naive for the center's local time, aware for instants. `ap` carries its widened range."""

    prefix: str
    low: datetime
    high: datetime

    def holds(self, start: datetime, end: datetime) -> bool:
        """Whether an appointment over [start, end) (aware, in its center's offset) matches."""
        if self.low.tzinfo is None:
            start, end = start.replace(tzinfo=None), end.replace(tzinfo=None)
        return matches(self.prefix, self.low, self.high, start, end)


def matches(prefix: str, low: datetime, high: datetime, start: datetime, end: datetime) -> bool:
    """FHIR R4's prefixes for a search range [low, high) and a target period [start, end)."""
    contains = low <= start and end <= high
    overlaps = start < high and low < end if start < end else low <= start < high
    match prefix:
        case "eq":
            return contains
        case "ne":
            return not contains
        case "gt":  # the range above the value overlaps the period
            return end > high
        case "lt":  # the range below the value overlaps the period
            return start < low
        case "ge":
            return end > high or contains
        case "le":
            return start < low or contains
        case "sa":  # no overlap, and the period lies in the range above
            return start >= high
        case "eb":
            return end <= low
        case "ap":  # the (widened) range overlaps the period
            return overlaps
    raise BadSearch(f"date prefix must be one of {', '.join(PREFIXES)}")


def date_range(value: str) -> tuple[str, datetime, datetime]:
    """The prefix and the range [low, high) of a `date=` value."""
    match = _DATE.fullmatch(value.strip().replace(" ", "+"))  # an unencoded '+' is a space
    if match is None:
        raise BadSearch(
            "date takes a prefix (eq ne gt lt ge le sa eb ap) and YYYY, YYYY-MM, YYYY-MM-DD "
            "or YYYY-MM-DDThh:mm[:ss[.fff]][Z|+hh:mm]"
        )
    g = match.groupdict()
    prefix = g["prefix"] or "eq"
    zone = g["zone"]
    try:
        tz = None if zone is None else UTC if zone == "Z" else _offset(zone)
        year = int(g["year"])
        if g["month"] is None:
            return prefix, datetime(year, 1, 1, tzinfo=tz), datetime(year + 1, 1, 1, tzinfo=tz)
        month = int(g["month"])
        if g["day"] is None:
            low = datetime(year, month, 1, tzinfo=tz)
            nxt = (year + 1, 1) if month == 12 else (year, month + 1)
            return prefix, low, datetime(*nxt, 1, tzinfo=tz)
        day = date(year, month, int(g["day"]))
        if g["hour"] is None:
            low = datetime(day.year, day.month, day.day, tzinfo=tz)
            return prefix, low, low + timedelta(days=1)
        low = datetime(day.year, day.month, day.day, int(g["hour"]), int(g["minute"]), tzinfo=tz)
        if g["second"] is None:
            return prefix, low, low + timedelta(minutes=1)
        low = low.replace(second=int(g["second"]))
        fraction = g["fraction"]
        if fraction is None:
            return prefix, low, low + timedelta(seconds=1)
        digits = min(len(fraction), 6)  # Python keeps microseconds
        low = low.replace(microsecond=int(fraction[:digits].ljust(6, "0")))
        return prefix, low, low + timedelta(microseconds=10 ** (6 - digits))
    except (ValueError, OverflowError) as exc:
        raise BadSearch("date is not a calendar date or time") from exc


def _offset(zone: str) -> timezone:
    sign = -1 if zone[0] == "-" else 1
    hours, minutes = int(zone[1:3]), int(zone[4:6])
    if minutes >= 60:
        raise ValueError("offset minutes")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def approximately(low: datetime, high: datetime, now: datetime) -> tuple[datetime, datetime]:
    """`ap`'s range: [low, high) widened on each side by 10% of the time between now and the
    value, at least a day (FHIR leaves the width to the server)."""
    here = now if low.tzinfo is not None else now.astimezone(UTC).replace(tzinfo=None)
    distance = min(abs(low - here), abs(high - here)) if not low <= here < high else timedelta()
    margin = max(AT_LEAST, distance * APPROXIMATELY)
    try:
        wide_low = low - margin
    except OverflowError:
        wide_low = datetime.min.replace(tzinfo=low.tzinfo)
    try:
        wide_high = high + margin
    except OverflowError:
        wide_high = datetime.max.replace(tzinfo=high.tzinfo)
    return wide_low, wide_high


def date_tests(values: Sequence[str], now: datetime) -> list[DateTest]:
    """`date=ge2026-12-01&date=lt2027-01-01T00:00:00Z`: each must hold (AND). `now` (aware):
    where `ap` measures its width from."""
    tests = []
    for value in values:
        prefix, low, high = date_range(value)
        if prefix == "ap":
            low, high = approximately(low, high, now)
        tests.append(DateTest(prefix, low, high))
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


def totals(summary: str | None, total: str | None, total_method: str | None) -> tuple[bool, bool]:
    """(entries, total): whether the Bundle lists its entries, and says its total.
    `_summary=count` is the total alone; `_total=none` leaves it out; fhirpy's count() sends
    `_totalMethod=count` for the same as `_total=accurate`."""
    if summary not in (None, "count", "false"):
        raise BadSearch("_summary supports count and false")
    if total not in (None, "accurate", "estimate", "none"):
        raise BadSearch("_total must be accurate, estimate or none")
    if total_method not in (None, "count", "estimate", "accurate"):
        raise BadSearch("_totalMethod must be count, estimate or accurate")
    return summary != "count", total != "none" or summary == "count"
