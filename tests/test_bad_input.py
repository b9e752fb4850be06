"""Bad input never gives a 500 and never changes stored data.

Every refusal is an RFC 9457 problem (application/problem+json with type, title, status and
detail; request-validation errors also list the offending fields in `errors`), and nothing a
caller submitted about a patient is echoed back in it.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.support.factories import book, make_center, make_chair, make_patient

DAY = "2027-01-12"  # a Tuesday, EST (-05:00)
PROBLEM_JSON = "application/problem+json"
SENTINEL = "Zebulon-Sentinel"  # a patient value that must never come back in an error
MAX_BODY = 1_000_000


def at(hhmm: str, day: str = DAY, offset: str = "-05:00") -> str:
    return f"{day}T{hhmm}:00{offset}"


def assert_problem(r: httpx.Response, status: int, *, fields: bool = False) -> dict[str, Any]:
    """`r` is the RFC 9457 problem `status`; `fields`: it lists the offending fields."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].split(";")[0].strip() == PROBLEM_JSON, r.headers
    body: dict[str, Any] = r.json()
    for key, kind in (("type", str), ("title", str), ("status", int), ("detail", str)):
        assert isinstance(body.get(key), kind) and body[key] != "", (key, body)
    assert body["status"] == status
    if fields:
        errors = body.get("errors")
        assert isinstance(errors, list) and errors, body
        assert all(isinstance(e.get("loc"), list) and e.get("msg") for e in errors), errors
    assert SENTINEL not in r.text
    return body


def error_fields(problem: dict[str, Any]) -> set[str]:
    return {str(e["loc"][-1]) for e in problem.get("errors", []) if e["loc"]}


def appointments(api: httpx.Client, center_id: str) -> list[dict[str, Any]]:
    r = api.get("/api/v1/appointments", params={"center_id": center_id, "limit": 500})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def patients_matching(api: httpx.Client, q: str) -> list[dict[str, Any]]:
    r = api.get("/api/v1/patients", params={"q": q, "limit": 500})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def center_names(api: httpx.Client) -> set[str]:
    names: set[str] = set()
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        r = api.get("/api/v1/centers", params=params)
        assert r.status_code == 200, r.text
        names.update(c["name"] for c in r.json()["items"])
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return names


def raw_post(api: httpx.Client, path: str, content: bytes | Iterator[bytes]) -> httpx.Response:
    return api.post(path, content=content, headers={"Content-Type": "application/json"})


def forged_cursor(values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def center_body(**overrides: Any) -> dict[str, Any]:
    return {
        "name": f"Bad input {uuid.uuid4().hex[:8]}",
        "timezone": "America/New_York",
        "patients_per_nurse": 4,
        "opening_hours": [{"weekday": d, "opens": "07:00", "closes": "19:00"} for d in range(7)],
        "staffing": [
            {"weekday": d, "start": "07:00", "end": "19:00", "nurses": 2} for d in range(7)
        ],
        **overrides,
    }


def patient_body(**overrides: Any) -> dict[str, Any]:
    return {
        "mrn": f"B{uuid.uuid4().hex[:12]}",
        "given_name": SENTINEL,
        "family_name": f"Badinput{uuid.uuid4().hex[:8]}",
        "birth_date": "1970-05-06",
        "sex": "male",
        "weight_kg": 80.0,
        "height_cm": 180,
        **overrides,
    }


@pytest.fixture
def world(nurse: httpx.Client) -> dict[str, Any]:
    """A center with one chair, one patient and one appointment 08:00-09:00 on DAY."""
    center = make_center(nurse)
    chair = make_chair(nurse, center["id"])
    patient = make_patient(nurse)
    r = book(nurse, patient["id"], chair["id"], at("08:00"), 60)
    assert r.status_code == 201, r.text
    return {"center": center, "chair": chair, "patient": patient, "appointment": r.json()}


def appointment_body(world: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"patient_id": world["patient"]["id"], "chair_id": world["chair"]["id"], **fields}


# --- instants -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "naive"),
    [
        ({"start": "2027-01-12T09:00:00", "duration_minutes": 60}, "start"),
        ({"start": "2027-01-12T09:00", "duration_minutes": 60}, "start"),
        ({"start": "2027-01-12T09:00:00", "end": "2027-01-12T10:00:00"}, "start"),
        ({"start": at("09:00"), "end": "2027-01-12T10:00:00"}, "end"),
    ],
)
def test_naive_appointment_instants_are_422(
    nurse: httpx.Client, world: dict[str, Any], fields: dict[str, Any], naive: str
) -> None:
    before = appointments(nurse, world["center"]["id"])
    r = nurse.post("/api/v1/appointments", json=appointment_body(world, **fields))
    assert naive in error_fields(assert_problem(r, 422, fields=True))
    url = f"/api/v1/appointments/{world['appointment']['id']}"
    r = nurse.patch(
        url,
        json={k: v for k, v in fields.items() if k != "duration_minutes"},
        headers={"If-Match": '"1"'},
    )
    assert naive in error_fields(assert_problem(r, 422, fields=True))
    assert appointments(nurse, world["center"]["id"]) == before


@pytest.mark.parametrize(
    ("start", "end", "naive"),
    [
        ("2027-01-12T10:00:00", at("12:00"), "start"),
        (at("10:00"), "2027-01-12T12:00:00", "end"),
    ],
)
def test_naive_chair_block_instants_are_422(
    nurse: httpx.Client, world: dict[str, Any], start: str, end: str, naive: str
) -> None:
    chair = world["chair"]["id"]
    r = nurse.post(
        f"/api/v1/chairs/{chair}/blocks", json={"start": start, "end": end, "reason": "x"}
    )
    assert naive in error_fields(assert_problem(r, 422, fields=True))
    # No block was stored: the chair can still be booked then.
    assert book(nurse, make_patient(nurse)["id"], chair, at("10:30"), 60).status_code == 201


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ({"start": at("10:00"), "end": at("09:00")}, "after start"),
        ({"start": at("10:00"), "end": at("10:00")}, "after start"),
        ({"start": at("07:00"), "end": at("08:00", "2027-01-13")}, "24 hours"),
        ({"start": at("07:00"), "duration_minutes": 25 * 60}, None),
        ({"start": at("10:00"), "duration_minutes": 0}, None),
        ({"start": at("10:00"), "duration_minutes": -30}, None),
        ({"start": "2027-01-12T10:00:30-05:00", "duration_minutes": 60}, "whole minutes"),
        ({"start": at("10:00"), "end": "2027-01-12T11:00:00.250-05:00"}, "whole minutes"),
    ],
)
def test_impossible_appointment_spans_are_422(
    nurse: httpx.Client, world: dict[str, Any], fields: dict[str, Any], detail: str | None
) -> None:
    before = appointments(nurse, world["center"]["id"])
    r = nurse.post("/api/v1/appointments", json=appointment_body(world, **fields))
    problem = assert_problem(r, 422, fields=detail is None)
    if detail is not None:
        assert detail in problem["detail"]
    # The same span as a reschedule is refused as well.
    url = f"/api/v1/appointments/{world['appointment']['id']}"
    r = nurse.patch(url, json=fields, headers={"If-Match": '"1"'})
    problem = assert_problem(r, 422, fields=detail is None)
    if detail is not None:
        assert detail in problem["detail"]
    assert appointments(nurse, world["center"]["id"]) == before


def test_chair_block_ending_before_it_starts_is_422(
    nurse: httpx.Client, world: dict[str, Any]
) -> None:
    chair = world["chair"]["id"]
    for start, end in [(at("12:00"), at("10:00")), (at("10:00"), at("10:00"))]:
        r = nurse.post(
            f"/api/v1/chairs/{chair}/blocks", json={"start": start, "end": end, "reason": "x"}
        )
        assert_problem(r, 422, fields=True)
    assert book(nurse, make_patient(nurse)["id"], chair, at("10:00"), 60).status_code == 201


@pytest.mark.parametrize(
    ("instant", "in_utc"),
    [
        ("0001-01-01T00:00:00+14:00", False),  # before 0001-01-01 in UTC
        ("9999-12-31T23:00:00-14:00", False),  # after 9999-12-31 in UTC
        ("9999-12-31T23:30:00+00:00", True),  # representable, but would end in the year 10000
    ],
)
def test_instants_at_the_edge_of_the_calendar_are_422(
    nurse: httpx.Client, world: dict[str, Any], instant: str, in_utc: bool
) -> None:
    before = appointments(nurse, world["center"]["id"])
    r = nurse.post(
        "/api/v1/appointments", json=appointment_body(world, start=instant, duration_minutes=60)
    )
    assert_problem(r, 422)
    chair = world["chair"]["id"]
    blocks = [(instant, at("12:00"))] + ([] if in_utc else [(at("10:00"), instant)])
    for start, end in blocks:
        r = nurse.post(
            f"/api/v1/chairs/{chair}/blocks", json={"start": start, "end": end, "reason": "x"}
        )
        assert_problem(r, 422)
    assert appointments(nurse, world["center"]["id"]) == before
    assert book(nurse, make_patient(nurse)["id"], chair, at("10:00"), 60).status_code == 201


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
@pytest.mark.parametrize("timezone", ["America/New_York", "Europe/Paris"])
def test_dates_at_the_edge_of_the_calendar_are_not_a_server_error(
    nurse: httpx.Client, day: str, timezone: str
) -> None:
    center = make_center(nurse, timezone=timezone)
    chair = make_chair(nurse, center["id"])
    patient = make_patient(nurse)
    reads: list[tuple[str, dict[str, Any]]] = [
        (f"/api/v1/centers/{center['id']}/availability", {"date": day, "duration_minutes": 60}),
        (f"/api/v1/centers/{center['id']}/day", {"date": day}),
        ("/api/v1/appointments", {"center_id": center["id"], "date": day}),
    ]
    for path, params in reads:
        r = nurse.get(path, params=params)
        assert r.status_code in (200, 422), (path, r.status_code, r.text)
        if r.status_code == 422:
            assert_problem(r, 422)
    r = nurse.post(
        "/api/v1/appointments",
        json={
            "patient_id": patient["id"],
            "chair_id": chair["id"],
            "local_date": day,
            "local_time": "23:00",
            "duration_minutes": 60,
        },
    )
    assert_problem(r, 422)
    assert appointments(nurse, center["id"]) == []


# --- unknown ids ----------------------------------------------------------------------------


def test_unknown_ids_are_404(nurse: httpx.Client, world: dict[str, Any]) -> None:
    before = appointments(nurse, world["center"]["id"])
    ghost = str(uuid.uuid4())
    r = nurse.post(
        "/api/v1/appointments",
        json={
            "patient_id": ghost,
            "chair_id": world["chair"]["id"],
            "start": at("10:00"),
            "duration_minutes": 60,
        },
    )
    assert_problem(r, 404)
    r = nurse.post(
        "/api/v1/appointments",
        json={
            "patient_id": world["patient"]["id"],
            "chair_id": ghost,
            "start": at("10:00"),
            "duration_minutes": 60,
        },
    )
    assert_problem(r, 404)
    r = nurse.patch(
        f"/api/v1/appointments/{world['appointment']['id']}",
        json={"chair_id": ghost},
        headers={"If-Match": '"1"'},
    )
    assert_problem(r, 404)

    if_match = {"If-Match": '"1"'}
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"/api/v1/appointments/{ghost}", {}),
        (
            "PATCH",
            f"/api/v1/appointments/{ghost}",
            {"json": {"start": at("10:00")}, "headers": if_match},
        ),
        ("POST", f"/api/v1/appointments/{ghost}/cancel", {}),
        ("GET", f"/api/v1/centers/{ghost}", {}),
        ("PATCH", f"/api/v1/centers/{ghost}", {"json": {"name": "x"}, "headers": if_match}),
        ("GET", f"/api/v1/centers/{ghost}/chairs", {}),
        ("POST", f"/api/v1/centers/{ghost}/chairs", {"json": {"label": "X-1", "kind": "chair"}}),
        ("POST", f"/api/v1/centers/{ghost}/closures", {"json": {"date": DAY, "reason": "snow"}}),
        (
            "GET",
            f"/api/v1/centers/{ghost}/availability",
            {"params": {"date": DAY, "duration_minutes": 60}},
        ),
        ("GET", f"/api/v1/centers/{ghost}/day", {"params": {"date": DAY}}),
        ("GET", "/api/v1/appointments", {"params": {"center_id": ghost, "date": DAY}}),
        ("GET", f"/api/v1/chairs/{ghost}", {}),
        ("PATCH", f"/api/v1/chairs/{ghost}", {"json": {"label": "X-2"}, "headers": if_match}),
        (
            "POST",
            f"/api/v1/chairs/{ghost}/blocks",
            {"json": {"start": at("10:00"), "end": at("11:00"), "reason": "x"}},
        ),
        ("GET", f"/api/v1/patients/{ghost}", {}),
        (
            "PATCH",
            f"/api/v1/patients/{ghost}",
            {"json": {"given_name": SENTINEL}, "headers": if_match},
        ),
    ]
    for method, path, kwargs in requests:
        assert_problem(nurse.request(method, path, **kwargs), 404)
    assert appointments(nurse, world["center"]["id"]) == before


@pytest.mark.parametrize(
    "path",
    ["/api/v1/appointments/42", "/api/v1/centers/not-a-uuid", "/api/v1/patients/%20"],
)
def test_ids_that_are_not_uuids_are_422(nurse: httpx.Client, path: str) -> None:
    assert_problem(nurse.get(path), 422, fields=True)


# --- bodies -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b'{"patient_id": ',
        b"{'patient_id': 'x'}",
        b'{"start": "2027-01-12T09:00:00-05:00",}',
        b'{"duration_minutes": 60} trailing',
        b"\x00",
    ],
)
def test_malformed_json_is_422(nurse: httpx.Client, world: dict[str, Any], content: bytes) -> None:
    before = appointments(nurse, world["center"]["id"])
    assert_problem(raw_post(nurse, "/api/v1/appointments", content), 422, fields=True)
    assert appointments(nurse, world["center"]["id"]) == before


def test_json_that_is_not_utf8_is_a_client_error(
    nurse: httpx.Client, world: dict[str, Any]
) -> None:
    # docs/api.md prefers 422 for a body that cannot be read; 400 is tolerated (and reported).
    body = json.dumps(appointment_body(world, start=at("10:00"), duration_minutes=60)).encode()
    for content in (b"\xff\xfe" + body, body.replace(b"10:00", b"10:\xff0")):
        r = raw_post(nurse, "/api/v1/appointments", content)
        assert r.status_code in (400, 422), r.text
        assert_problem(r, r.status_code)
    patient = patient_body()
    content = json.dumps(patient).encode().replace(b"Badinput", b"Bad\xe9input")
    r = raw_post(nurse, "/api/v1/patients", content)
    assert r.status_code in (400, 422), r.text
    assert_problem(r, r.status_code)
    assert patients_matching(nurse, patient["mrn"]) == []
    assert len(appointments(nurse, world["center"]["id"])) == 1


def _oversized_patient() -> tuple[str, bytes]:
    """A patient that would be created, padded with JSON whitespace past the body limit."""
    patient = patient_body()
    return patient["mrn"], json.dumps(patient).encode() + b" " * (MAX_BODY + 1)


def test_a_body_over_the_limit_with_content_length_is_413(nurse: httpx.Client) -> None:
    mrn, content = _oversized_patient()
    r = raw_post(nurse, "/api/v1/patients", content)
    assert r.request.headers["Content-Length"] == str(len(content))
    assert_problem(r, 413)
    assert patients_matching(nurse, mrn) == []


def test_a_streamed_body_over_the_limit_without_content_length_is_413(
    nurse: httpx.Client,
) -> None:
    mrn, content = _oversized_patient()

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(content), 64 * 1024):
            yield content[i : i + 64 * 1024]

    r = raw_post(nurse, "/api/v1/patients", chunks())
    assert "Content-Length" not in r.request.headers
    assert r.request.headers["Transfer-Encoding"] == "chunked"
    assert_problem(r, 413)
    assert patients_matching(nurse, mrn) == []


def test_a_body_just_under_the_limit_is_read(nurse: httpx.Client) -> None:
    patient = patient_body(given_name="Accepted")
    content = json.dumps(patient).encode()
    r = raw_post(nurse, "/api/v1/patients", content + b" " * (MAX_BODY - len(content)))
    assert r.status_code == 201, r.text
    assert len(patients_matching(nurse, patient["mrn"])) == 1


def test_unknown_fields_are_422(nurse: httpx.Client, world: dict[str, Any]) -> None:
    center_id, chair_id = world["center"]["id"], world["chair"]["id"]
    before = appointments(nurse, center_id)
    r = nurse.post(
        "/api/v1/appointments",
        json=appointment_body(world, start=at("10:00"), duration_minutes=60, notes="hi"),
    )
    assert "notes" in error_fields(assert_problem(r, 422, fields=True))
    r = nurse.patch(
        f"/api/v1/appointments/{world['appointment']['id']}",
        json={"start": at("10:00"), "status": "completed"},
        headers={"If-Match": '"1"'},
    )
    assert "status" in error_fields(assert_problem(r, 422, fields=True))
    assert appointments(nurse, center_id) == before

    body = center_body(colour="teal")
    assert "colour" in error_fields(
        assert_problem(nurse.post("/api/v1/centers", json=body), 422, fields=True)
    )
    body = center_body()
    body["opening_hours"][0]["lunch"] = "12:00"
    assert "lunch" in error_fields(
        assert_problem(nurse.post("/api/v1/centers", json=body), 422, fields=True)
    )
    assert body["name"] not in center_names(nurse)

    r = nurse.post(
        f"/api/v1/centers/{center_id}/chairs", json={"label": "U-1", "kind": "chair", "floor": 2}
    )
    assert_problem(r, 422, fields=True)
    r = nurse.get(f"/api/v1/centers/{center_id}/chairs")
    assert [c["id"] for c in r.json()["items"]] == [chair_id]

    patient = patient_body(ssn="078-05-1120")
    r = nurse.post("/api/v1/patients", json=patient)
    assert "ssn" in error_fields(assert_problem(r, 422, fields=True))
    assert "078-05-1120" not in r.text
    assert patients_matching(nurse, patient["mrn"]) == []


def test_wrong_types_are_422(nurse: httpx.Client, world: dict[str, Any]) -> None:
    center_id = world["center"]["id"]
    before = appointments(nurse, center_id)
    cases: list[tuple[dict[str, Any], str]] = [
        (appointment_body(world, start=at("10:00"), duration_minutes="sixty"), "duration_minutes"),
        (appointment_body(world, start=at("10:00"), duration_minutes=60.5), "duration_minutes"),
        (
            {**appointment_body(world, start=at("10:00"), duration_minutes=60), "patient_id": 42},
            "patient_id",
        ),
        (
            {**appointment_body(world, start=at("10:00"), duration_minutes=60), "chair_id": 4.2},
            "chair_id",
        ),
        (appointment_body(world, start=[at("10:00")], duration_minutes=60), "start"),
    ]
    for body, field in cases:
        r = nurse.post("/api/v1/appointments", json=body)
        assert field in error_fields(assert_problem(r, 422, fields=True)), body
    not_objects: list[Any] = [[appointment_body(world, start=at("10:00"))], "x", 7, None]
    for not_an_object in not_objects:
        r = nurse.post("/api/v1/appointments", json=not_an_object)
        assert_problem(r, 422, fields=True)
    assert appointments(nurse, center_id) == before

    center_cases: list[tuple[dict[str, Any], str]] = [
        (center_body(patients_per_nurse="four"), "patients_per_nurse"),
        (
            center_body(opening_hours={"weekday": 0, "opens": "07:00", "closes": "19:00"}),
            "opening_hours",
        ),
        (center_body(opening_hours=[["0", "07:00", "19:00"]]), "0"),
        (center_body(timezone=["America/New_York"]), "timezone"),
        (center_body(name={"first": "x"}), "name"),
    ]
    for body, field in center_cases:
        r = nurse.post("/api/v1/centers", json=body)
        assert field in error_fields(assert_problem(r, 422, fields=True)), body
    names = center_names(nurse)
    assert not any(
        body["name"] in names for body, _ in center_cases if isinstance(body["name"], str)
    )

    patient = patient_body(weight_kg="heavy", birth_date=["1970-05-06"])
    r = nurse.post("/api/v1/patients", json=patient)
    assert {"weight_kg", "birth_date"} <= error_fields(assert_problem(r, 422, fields=True))
    assert patients_matching(nurse, patient["mrn"]) == []


def test_instants_are_rfc3339_strings_not_numbers(
    nurse: httpx.Client, world: dict[str, Any]
) -> None:
    # 09:00 EST on DAY as Unix seconds: bookable if it were accepted as an instant.
    unix = int(datetime(2027, 1, 12, 14, 0, tzinfo=UTC).timestamp())
    before = appointments(nurse, world["center"]["id"])
    r = nurse.post(
        "/api/v1/appointments", json=appointment_body(world, start=unix, duration_minutes=60)
    )
    assert "start" in error_fields(assert_problem(r, 422, fields=True))
    assert appointments(nurse, world["center"]["id"]) == before


# --- centers ----------------------------------------------------------------------------------

BAD_ZONES = [
    "Mars/Olympus",
    "EST5EDT",
    "",
    "../../etc/passwd",
    "UTC+3",
    "America/New_York\x00",
    "/usr/share/zoneinfo/UTC",
    "America/../Europe/Paris",
    "localtime",
]


@pytest.mark.parametrize("timezone", BAD_ZONES)
def test_unknown_time_zones_are_refused_and_no_center_is_made(
    nurse: httpx.Client, timezone: str
) -> None:
    body = center_body(timezone=timezone)
    r = nurse.post("/api/v1/centers", json=body)
    assert_problem(r, 422, fields=timezone == "")
    assert body["name"] not in center_names(nurse)


def test_unknown_time_zones_in_a_patch_leave_the_center_unchanged(nurse: httpx.Client) -> None:
    center = make_center(nurse)
    url = f"/api/v1/centers/{center['id']}"
    for timezone in BAD_ZONES:
        r = nurse.patch(
            url, json={"name": "Renamed", "timezone": timezone}, headers={"If-Match": '"1"'}
        )
        assert_problem(r, 422, fields=timezone == "")
        after = nurse.get(url)
        assert after.json() == center and after.headers["ETag"] == '"1"'


def _hours(*entries: tuple[int, str, str]) -> list[dict[str, Any]]:
    return [{"weekday": d, "opens": o, "closes": c} for d, o, c in entries]


BAD_HOURS: list[dict[str, Any]] = [
    {"opening_hours": _hours((0, "25:00", "26:00"))},
    {"opening_hours": _hours((0, "07:00", "24:00"))},
    {"opening_hours": _hours((0, "7:00", "19:00"))},
    {"opening_hours": _hours((0, "07:60", "19:00"))},
    {"opening_hours": _hours((0, "07:00:00", "19:00"))},
    {"opening_hours": _hours((0, "19:00", "07:00"))},
    {"opening_hours": _hours((0, "07:00", "07:00"))},
    {"opening_hours": _hours((0, "07:00", "12:00"), (0, "13:00", "19:00"))},
    {"opening_hours": _hours((7, "07:00", "19:00"))},
    {"opening_hours": _hours((-1, "07:00", "19:00"))},
    {"opening_hours": _hours(*[(d % 7, "07:00", "19:00") for d in range(8)])},
    {"staffing": [{"weekday": 0, "start": "19:00", "end": "07:00", "nurses": 2}]},
    {"staffing": [{"weekday": 0, "start": "07:00", "end": "19:00", "nurses": -1}]},
    {"patients_per_nurse": 0},
]


@pytest.mark.parametrize("change", BAD_HOURS)
def test_invalid_opening_hours_and_staffing_are_422(
    nurse: httpx.Client, change: dict[str, Any]
) -> None:
    body = center_body(**change)
    assert_problem(nurse.post("/api/v1/centers", json=body), 422, fields=True)
    assert body["name"] not in center_names(nurse)

    center = make_center(nurse)
    url = f"/api/v1/centers/{center['id']}"
    r = nurse.patch(url, json={"name": "Renamed", **change}, headers={"If-Match": '"1"'})
    assert_problem(r, 422, fields=True)
    after = nurse.get(url)
    assert after.json() == center and after.headers["ETag"] == '"1"'


# --- patients ---------------------------------------------------------------------------------


def test_a_duplicate_mrn_is_409_and_there_is_one_patient(nurse: httpx.Client) -> None:
    first = make_patient(nurse, given_name="Original")
    for mrn in (first["mrn"], f"  {first['mrn']}  "):
        r = nurse.post("/api/v1/patients", json=patient_body(mrn=mrn))
        assert_problem(r, 409)
    assert patients_matching(nurse, first["mrn"]) == [first]


@pytest.mark.parametrize(
    "change",
    [
        {"sex": SENTINEL},
        {"birth_date": "2999-01-01"},
        {"birth_date": SENTINEL},
        {"weight_kg": SENTINEL},
        {"weight_kg": 70.55},
        {"weight_kg": 0},
        {"height_cm": -1},
        {"mrn": f"{SENTINEL} 1"},
        {"family_name": SENTINEL * 10},
        {"family_name": "   "},
        {"nickname": SENTINEL},
    ],
)
def test_refused_patients_are_not_stored_and_not_echoed(
    nurse: httpx.Client, change: dict[str, Any]
) -> None:
    body = patient_body(**change)
    r = nurse.post("/api/v1/patients", json=body)
    assert_problem(r, 422, fields=True)  # also checks SENTINEL is not in the reply
    q = body["family_name"] if SENTINEL in body["mrn"] else body["mrn"]
    assert patients_matching(nurse, q) == []

    patient = make_patient(nurse)
    url = f"/api/v1/patients/{patient['id']}"
    update = {"given_name": SENTINEL, **{k: v for k, v in change.items() if k != "mrn"}}
    if "mrn" in change:
        update["mrn"] = change["mrn"]  # the MRN cannot be changed: also an unknown field
    r = nurse.patch(url, json=update, headers={"If-Match": '"1"'})
    assert_problem(r, 422, fields=True)
    assert nurse.get(url).json() == patient


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/patients", patient_body(given_name=f"{SENTINEL}\x00")),
        ("/api/v1/centers", center_body(name="Night\x00Center")),
    ],
)
def test_nul_characters_are_refused(nurse: httpx.Client, path: str, body: dict[str, Any]) -> None:
    # PostgreSQL cannot store U+0000 in text; SQLite can. Both must refuse it the same way.
    assert_problem(nurse.post(path, json=body), 422, fields=True)
    if "mrn" in body:
        assert patients_matching(nurse, body["mrn"]) == []
    else:
        assert body["name"] not in center_names(nurse)


def test_a_nul_character_in_a_search_is_not_a_server_error(nurse: httpx.Client) -> None:
    r = nurse.get("/api/v1/patients", params={"q": "Zeb\x00"})
    assert r.status_code in (200, 422), r.text
    if r.status_code == 422:
        assert_problem(r, 422)
    else:
        assert r.json()["items"] == []


def test_malformed_patient_json_does_not_echo_the_patient(nurse: httpx.Client) -> None:
    patient = patient_body()
    body = json.dumps(patient).encode()
    for content in (body[:-1], body.replace(b'"sex"', b"'sex'"), body + b"]"):
        assert_problem(raw_post(nurse, "/api/v1/patients", content), 422, fields=True)
    assert patients_matching(nurse, patient["mrn"]) == []


# --- paging -----------------------------------------------------------------------------------


def _list_paths(world: dict[str, Any]) -> list[str]:
    return [
        "/api/v1/centers",
        "/api/v1/patients",
        "/api/v1/appointments",
        f"/api/v1/centers/{world['center']['id']}/chairs",
    ]


def test_invalid_limits_are_422(nurse: httpx.Client, world: dict[str, Any]) -> None:
    for path in _list_paths(world):
        for limit in ("0", "501", "-1", "x", "", "1.5", str(10**30)):
            r = nurse.get(path, params={"limit": limit})
            assert "limit" in error_fields(assert_problem(r, 422, fields=True)), (path, limit)
        assert nurse.get(path, params={"limit": 500}).status_code == 200


def test_garbage_cursors_are_422(nurse: httpx.Client, world: dict[str, Any]) -> None:
    garbage = [
        "garbage!!",
        "a",
        base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(),
        forged_cursor({"a": 1}),
        forged_cursor([]),
        forged_cursor(["x"] * 5),
        "x" * 501,
    ]
    for path in _list_paths(world):
        for cursor in garbage:
            r = nurse.get(path, params={"cursor": cursor})
            assert_problem(r, 422, fields=len(cursor) > 500)


@pytest.mark.parametrize(
    ("which", "values"),
    [
        ("centers", ["Center", 5]),
        ("centers", ["Center", {"id": 1}]),
        ("chairs", ["C-1", [1]]),
        ("patients", ["Patient", "Test", 5]),
        ("appointments", ["2027-01-12T09:00:00+00:00", 5]),
        ("appointments", ["2027-01-12T09:00:00", "00000000-0000-0000-0000-000000000000"]),
        ("appointments", ["0001-01-01T00:00:00+14:00", "00000000-0000-0000-0000-000000000000"]),
    ],
)
def test_forged_cursors_are_422(
    nurse: httpx.Client, world: dict[str, Any], which: str, values: list[Any]
) -> None:
    """Well-formed base64 JSON of the right length, but not values this list hands out."""
    path = {
        "centers": "/api/v1/centers",
        "chairs": f"/api/v1/centers/{world['center']['id']}/chairs",
        "patients": "/api/v1/patients",
        "appointments": "/api/v1/appointments",
    }[which]
    assert_problem(nurse.get(path, params={"cursor": forged_cursor(values)}), 422)


# --- preconditions ----------------------------------------------------------------------------


def test_patch_needs_a_current_if_match_and_changes_nothing_otherwise(
    nurse: httpx.Client, world: dict[str, Any]
) -> None:
    edits = [
        (f"/api/v1/appointments/{world['appointment']['id']}", {"start": at("10:00")}),
        (f"/api/v1/centers/{world['center']['id']}", {"name": "Renamed", "patients_per_nurse": 1}),
        (f"/api/v1/chairs/{world['chair']['id']}", {"label": "Renamed", "active": False}),
        (f"/api/v1/patients/{world['patient']['id']}", {"given_name": SENTINEL}),
    ]
    for url, change in edits:
        before = nurse.get(url)
        assert before.status_code == 200 and before.headers["ETag"] == '"1"'
        assert_problem(nurse.patch(url, json=change), 428)
        for stale in ('"0"', '"2"', '"999"', "garbage"):
            assert_problem(nurse.patch(url, json=change, headers={"If-Match": stale}), 412)
        after = nurse.get(url)
        assert after.json() == before.json() and after.headers["ETag"] == '"1"'
    assert appointments(nurse, world["center"]["id"]) == [world["appointment"]]


def test_an_if_match_that_was_current_once_is_stale_after_an_edit(
    nurse: httpx.Client, world: dict[str, Any]
) -> None:
    url = f"/api/v1/chairs/{world['chair']['id']}"
    r = nurse.patch(url, json={"label": "First"}, headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.headers["ETag"] == '"2"'
    assert_problem(nurse.patch(url, json={"label": "Second"}, headers={"If-Match": '"1"'}), 412)
    assert nurse.get(url).json()["label"] == "First"
