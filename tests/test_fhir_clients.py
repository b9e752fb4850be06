"""/fhir/r4 as real FHIR clients use it: fhirpy searching, counting and following references
with a bearer token against a running server; every answer parsed by fhir.resources (R4B);
errors as OperationOutcome."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fhir.resources.R4B.appointment import Appointment
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.location import Location
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome as OutcomeError
from fhirpy.base.exceptions import ResourceNotFound
from starlette.types import Receive, Scope, Send

from app import fhir
from app.api import errors
from app.api.metrics import Metrics
from app.api.middleware import RequestGuard
from core.outages import Outage
from tests.support.factories import book, make_center, make_chair, patient_user
from tests.support.servers import Server

TZ = "Europe/Berlin"
FHIR_JSON = "application/fhir+json"


def plain(resource: Any) -> dict[str, Any]:
    """A fhirpy resource (or raw answer) as plain JSON, for fhir.resources to validate."""
    value: dict[str, Any] = json.loads(json.dumps(resource, default=dict))
    return value


def outcome(r: httpx.Response, status: int, code: str) -> OperationOutcome:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].split(";")[0] == FHIR_JSON, r.headers
    parsed = OperationOutcome.model_validate(r.json())
    assert parsed.issue[0].code == code and parsed.issue[0].diagnostics
    return parsed


@pytest.fixture(scope="module")
def world(server: Server) -> Iterator[dict[str, Any]]:
    """A center, a patient with two appointments (one cancelled), another patient with one."""
    with server.client("nurse") as nurse:
        center = make_center(nurse, timezone=TZ)
        changed = nurse.patch(
            f"/api/v1/centers/{center['id']}",
            json={"address": "Infusionsweg 1, Berlin"},
            headers={"If-Match": f'"{center["version"]}"'},
        )
        assert changed.is_success, changed.text
        chair = make_chair(nurse, center["id"])["id"]
        me, mine = patient_user(server, nurse)
        other, theirs = patient_user(server, nurse)
        day = date.today() + timedelta(days=5)

        def visit(patient_id: str, on: date, hour: int) -> dict[str, Any]:
            start = datetime.combine(on, time(hour), ZoneInfo(TZ))
            r = book(nurse, patient_id, chair, start.isoformat(), minutes=150)
            assert r.status_code == 201, r.text
            booked: dict[str, Any] = r.json()
            return booked

        one = visit(me["id"], day, 8)
        two = visit(me["id"], day + timedelta(days=21), 8)
        assert nurse.post(f"/api/v1/appointments/{two['id']}/cancel").status_code == 200
        their = visit(other["id"], day, 12)
        try:
            yield {
                "center": center,
                "me": me,
                "other": other,
                "one": one,
                "two": two,
                "theirs": their,
                "day": day,
                "my_token": mine.headers["Authorization"].split()[1],
                "mine": mine,
                "their_client": theirs,
            }
        finally:
            mine.close()
            theirs.close()


def client(server: Server, token: str, **headers: str) -> SyncFHIRClient:
    return SyncFHIRClient(
        f"{server.base_url}/fhir/r4", authorization=f"Bearer {token}", extra_headers=headers
    )


def test_fhirpy_searches_counts_and_reads_as_staff(server: Server, world: dict[str, Any]) -> None:
    staff = client(server, server.tokens["nurse"])
    me, one, two = world["me"]["id"], world["one"]["id"], world["two"]["id"]
    day: date = world["day"]
    appointments = staff.resources("Appointment").search(patient=me)

    # What fhirpy sends for datetimes: date=ge2026-12-06T00:00:00Z&date=lt…Z (instants).
    start_of_day = datetime.combine(day, time(0), ZoneInfo(TZ)).astimezone(UTC)
    that_day = appointments.search(
        date__ge=start_of_day, date__lt=start_of_day + timedelta(days=1)
    ).fetch()
    assert [a.id for a in that_day] == [one]
    later = appointments.search(date__ge=start_of_day + timedelta(days=1)).fetch()
    assert [a.id for a in later] == [two]
    assert appointments.search(date__ge=day, date__lt=day + timedelta(days=1)).fetch()[0].id == one
    same_year = 1 + ((day + timedelta(days=21)).year == day.year)
    assert appointments.search(date=f"eq{day.year}").count() == same_year  # a year holds days
    assert appointments.search(date=f"eq{day.isoformat()[:7]}").count() >= 1
    assert appointments.search(date=f"ap{day.isoformat()}").count() == 1
    assert appointments.search(date=f"sa{day.isoformat()}").count() == 1

    # count(): _count=0&_totalMethod=count, a Bundle with the total and no entries.
    assert appointments.count() == 2
    assert appointments.search(status="cancelled").count() == 1
    raw = staff.execute("Appointment", method="get", params={"patient": me, "_count": 0})
    counted = Bundle.model_validate(plain(raw))
    assert counted.total == 2 and not counted.entry
    summary = staff.execute(
        "Appointment", method="get", params={"patient": me, "_summary": "count"}
    )
    assert summary["total"] == 2 and "entry" not in summary
    no_total = staff.execute("Appointment", method="get", params={"patient": me, "_total": "none"})
    assert "total" not in no_total and len(no_total["entry"]) == 2
    accurate = staff.execute(
        "Appointment", method="get", params={"patient": me, "_total": "accurate"}
    )
    assert Bundle.model_validate(plain(accurate)).total == 2

    # _id: any of the ids given; someone else's id is simply not among this patient's.
    assert {a.id for a in appointments.search(_id=f"{one},{two}").fetch()} == {one, two}
    assert [a.id for a in appointments.search(_id=two).fetch()] == [two]
    assert appointments.search(_id=world["theirs"]["id"]).fetch() == []
    assert appointments.search(_id="not-one-of-ours").fetch() == []

    # Fetch by id, and follow the references in it.
    fetched = staff.reference("Appointment", one).to_resource()
    appointment = Appointment.model_validate(plain(fetched))
    assert appointment.id == one and appointment.status == "booked"
    references = {p.actor.reference for p in appointment.participant if p.actor is not None}
    assert references == {f"Patient/{me}", f"Location/{world['center']['id']}"}
    for participant in fetched["participant"]:
        resource = plain(staff.reference(reference=participant["actor"]["reference"]).to_resource())
        if resource["resourceType"] == "Patient":
            patient = Patient.model_validate(resource)
            assert patient.id == me and patient.birthDate is not None and patient.name
            assert set(resource) == {"resourceType", "id", "meta", "active", "name", "birthDate"}
            assert world["me"]["mrn"] not in json.dumps(resource)
        else:
            location = Location.model_validate(resource)
            assert location.name == world["center"]["name"]
            assert location.address is not None
            assert location.address.text == "Infusionsweg 1, Berlin"
            (zone,) = location.extension or []
            assert (zone.url, zone.valueCode) == (fhir.TIMEZONE_EXTENSION, TZ)


def test_a_patients_app_sees_only_them(server: Server, world: dict[str, Any]) -> None:
    app = client(server, world["my_token"])
    me, one = world["me"]["id"], world["one"]["id"]
    mine = app.resources("Appointment")
    assert {a.id for a in mine.fetch()} == {one, world["two"]["id"]}
    assert mine.count() == 2
    assert mine.search(_id=one).get().id == one
    assert Patient.model_validate(plain(app.reference("Patient", me).to_resource())).id == me
    location = app.reference("Location", world["center"]["id"]).to_resource()
    assert Location.model_validate(plain(location)).status == "active"

    # Someone else's Patient and Appointment: the same 404 as nobody's, saying nothing.
    other, theirs = world["other"]["id"], world["theirs"]["id"]
    for reference in (f"Patient/{other}", f"Appointment/{theirs}", "Patient/nobody"):
        with pytest.raises(ResourceNotFound) as refused:
            app.reference(reference=reference).to_resource()
        said = OperationOutcome.model_validate(json.loads(str(refused.value)))
        assert said.issue[0].code == "not-found"
        assert other not in str(refused.value) and theirs not in str(refused.value)
    with pytest.raises(ResourceNotFound):
        mine.search(patient=other).fetch()
    mine_raw = world["mine"]
    r = mine_raw.get(f"/fhir/r4/Patient/{other}")
    nobody = mine_raw.get(f"/fhir/r4/Patient/{uuid.uuid4()}")
    assert (
        outcome(r, 404, "not-found").model_dump() == outcome(nobody, 404, "not-found").model_dump()
    )
    # The other patient reads themselves all right.
    assert world["their_client"].get(f"/fhir/r4/Patient/{other}").status_code == 200


def test_unknown_parameters_are_ignored_unless_handling_is_strict(
    server: Server, world: dict[str, Any], nurse: httpx.Client
) -> None:
    me = world["me"]["id"]
    lenient = nurse.get("/fhir/r4/Appointment", params={"patient": me, "_sort": "date", "x": "y"})
    assert lenient.status_code == 200, lenient.text
    bundle = Bundle.model_validate(lenient.json())
    assert bundle.total == 2
    (self_link,) = [str(link.url) for link in bundle.link or [] if link.relation == "self"]
    assert "_sort" not in self_link and "x=y" not in self_link and f"patient={me}" in self_link

    strict = nurse.get(
        "/fhir/r4/Appointment",
        params={"patient": me, "_sort": "date"},
        headers={"Prefer": "handling=strict"},
    )
    said = outcome(strict, 400, "invalid")
    assert "_sort" in str(said.issue[0].diagnostics)
    known = nurse.get(
        "/fhir/r4/Appointment",
        params={"patient": me, "_count": 0, "_totalMethod": "count"},
        headers={"Prefer": "handling=strict"},
    )
    assert known.status_code == 200 and known.json()["total"] == 2

    # fhirpy with the preference: its own count() still works; an unknown parameter raises.
    picky = client(server, server.tokens["nurse"], Prefer="handling=strict")
    assert picky.resources("Appointment").search(patient=me).count() == 2
    with pytest.raises(OutcomeError) as refused:
        picky.resources("Appointment").search(patient=me, _elements="status").fetch()
    assert OperationOutcome.model_validate(plain(refused.value.resource)).issue[0].code == "invalid"

    # A malformed value of a known parameter stays a 422 (our API's code for bad input).
    for bad in ({"date": "yesterday"}, {"_id": "Appointment/x"}, {"_summary": "text"}):
        outcome(nurse.get("/fhir/r4/Appointment", params={"patient": me, **bad}), 422, "invalid")
    invalid = outcome(
        nurse.get("/fhir/r4/Appointment", params={"patient": me, "_count": -1}), 422, "invalid"
    )
    assert any("_count" in str(i.diagnostics) for i in invalid.issue[1:])


def test_json_only_other_formats_are_406(nurse: httpx.Client, world: dict[str, Any]) -> None:
    me = world["me"]["id"]
    path = f"/fhir/r4/Appointment/{world['one']['id']}"
    for accept in ("application/fhir+xml", "application/xml", "text/turtle"):
        outcome(nurse.get(path, headers={"Accept": accept}), 406, "not-supported")
        outcome(nurse.get("/fhir/r4/metadata", headers={"Accept": accept}), 406, "not-supported")
    for format_ in ("xml", "application/fhir+xml", "ttl"):
        outcome(nurse.get(path, params={"_format": format_}), 406, "not-supported")
    for accept in ("*/*", "application/json", FHIR_JSON, "text/html,*/*;q=0.8"):
        r = nurse.get(path, headers={"Accept": accept})
        assert r.status_code == 200 and r.headers["content-type"] == FHIR_JSON, accept
    for format_ in ("json", "application/json", FHIR_JSON):
        r = nurse.get(
            "/fhir/r4/Appointment",
            params={"patient": me, "_format": format_},
            headers={"Accept": "application/fhir+xml"},
        )
        assert r.status_code == 200, (format_, r.text)
        assert "_format=" in r.json()["link"][0]["url"]


def test_errors_are_operation_outcomes_with_their_status_and_headers(
    server: Server, anonymous: httpx.Client, pharmacy: httpx.Client, nurse: httpx.Client
) -> None:
    r = anonymous.get("/fhir/r4/Appointment")
    outcome(r, 401, "login")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    outcome(pharmacy.get("/fhir/r4/Appointment"), 403, "forbidden")
    assert pharmacy.get(f"/fhir/r4/Location/{make_center(nurse)['id']}").status_code == 200
    outcome(nurse.get("/fhir/r4/Observation"), 404, "not-found")
    outcome(nurse.get("/fhir/r4"), 404, "not-found")
    outcome(nurse.get("/fhir/r4/Location/not-a-center"), 404, "not-found")
    outcome(nurse.post("/fhir/r4/Appointment", json={}), 405, "not-supported")
    outcome(nurse.get("/fhir/r4/Appointment"), 422, "invalid")  # staff name the patient
    big = nurse.request("GET", "/fhir/r4/metadata", content=b" " * 1_000_001)
    outcome(big, 413, "too-costly")
    # The rest of the API still speaks problem+json.
    assert nurse.get("/api/v1/nothing").headers["content-type"] == "application/problem+json"

    meta = anonymous.get("/fhir/r4/metadata")
    statement = CapabilityStatement.model_validate(meta.json())
    (rest,) = statement.rest or []
    kinds = {r.type: r for r in rest.resource or []}
    assert set(kinds) == {"Appointment", "Patient", "Location"}
    params = {p.name for p in kinds["Appointment"].searchParam or []}
    assert {"_id", "patient", "date", "status", "_count", "_summary", "_total", "_format"} <= params
    assert all(p.documentation for p in kinds["Appointment"].searchParam or [])
    security = meta.json()["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    (uris,) = security["extension"]
    assert {e["url"]: e["valueUri"] for e in uris["extension"]} == {
        "authorize": f"{server.base_url}/oauth/authorize",
        "token": f"{server.base_url}/oauth/token",
        "revoke": f"{server.base_url}/oauth/revoke",
    }


def test_database_outages_timeouts_and_bugs_under_fhir_are_outcomes_too() -> None:
    busy = errors.fhir_aware("/fhir/r4/Appointment", errors.outage_response(Outage.BUSY))
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
    assert busy.media_type == FHIR_JSON
    assert json.loads(bytes(busy.body))["issue"][0]["code"] == "transient"
    elsewhere = errors.fhir_aware("/api/v1/patients", errors.outage_response(Outage.BUSY))
    assert elsewhere.media_type == errors.PROBLEM_JSON

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(1)

    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("a bug")

    async def ask(app: Any, path: str) -> httpx.Response:
        guard = RequestGuard(app, max_bytes=100, metrics=Metrics(), timeout=0.05)
        transport = httpx.ASGITransport(app=guard)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await http.get(path)

    for app, status, code in ((slow, 503, "transient"), (broken, 500, "exception")):
        r = asyncio.run(ask(app, "/fhir/r4/Appointment"))
        outcome(r, status, code)
        r = asyncio.run(ask(app, "/api/v1/appointments"))
        assert r.status_code == status
        assert r.headers["content-type"] == errors.PROBLEM_JSON


def test_reading_a_patient_is_on_the_audit_trail(
    admin: httpx.Client, world: dict[str, Any]
) -> None:
    me, other = world["me"]["id"], world["other"]["id"]

    def event(r: httpx.Response, patient_id: str) -> dict[str, Any]:
        page = admin.get("/api/v1/audit-events", params={"patient_id": patient_id, "limit": 500})
        assert page.status_code == 200, page.text
        (found,) = [e for e in page.json()["items"] if e["request_id"] == r.headers["x-request-id"]]
        return dict(found)

    own = world["mine"].get(f"/fhir/r4/Patient/{me}")
    assert own.status_code == 200
    seen = event(own, me)
    assert (seen["action"], seen["resource_type"], seen["outcome"]) == (
        "read",
        "patient",
        "success",
    )
    assert seen["resource_id"] == me and seen["role"] == "patient"
    probe = world["mine"].get(f"/fhir/r4/Patient/{other}")
    assert probe.status_code == 404
    refused = event(probe, other)
    assert (refused["action"], refused["outcome"]) == ("read", "denied")
