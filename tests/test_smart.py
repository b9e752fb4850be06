"""SMART App Launch against a running server: an admin registers a patient app; `fhirclient`
(the SMART on FHIR client) does the standalone launch with PKCE through the patient's web
session and consent page, reads their appointments, refreshes and revokes; and the ways the
flow must refuse (a wrong verifier, a code used twice, an unregistered redirect, no PKCE,
the plain method, a denial, a replayed refresh token, a token's scopes); how long access
lasts (refresh tokens only with offline or online access; online access ends 12 hours after
the patient allowed); the id_token's nonce; the signing keys sealed at rest; a switched-off
app's tokens; the consent page never framed; and CHAIRSIDE_PUBLIC_URL naming the issuer."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fhirclient import client as fhir_client  # type: ignore[import-untyped]
from hypothesis import given
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select, update

from app.auth.models import AccessToken
from app.auth.service import create_user, token_digest
from app.settings import Settings
from app.smart import scopes, sealing
from app.smart.models import SmartApp, SmartRefreshToken, SmartSigningKey
from core.db import Database
from tests.support.factories import book, make_center, make_chair, make_patient
from tests.support.servers import PASSWORD, SECRET, Server, start_server, stop_server

REDIRECT = "http://127.0.0.1:9/callback"  # nothing listens: the "browser" stops at the redirect
SCOPE = "openid fhirUser launch/patient patient/Appointment.rs online_access"


@dataclass
class Patient:
    id: str
    email: str
    browser: httpx.Client  # the web app's session cookie, as a browser holds it
    csrf: str


def web_session(server: Server, email: str) -> tuple[httpx.Client, str]:
    with httpx.Client(base_url=server.base_url, timeout=60) as c:
        r = c.post("/api/v1/auth/session", data={"username": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
    token = r.cookies["chairside_session"]
    browser = httpx.Client(
        base_url=server.base_url,
        timeout=60,
        headers={"Cookie": f"chairside_session={token}"},
        follow_redirects=False,
    )
    return browser, r.json()["csrf_token"]


def new_patient(server: Server, nurse: httpx.Client) -> Patient:
    record = make_patient(nurse)
    email = f"smart-{uuid.uuid4().hex[:8]}@test.local"

    async def add() -> None:
        db = Database(server.database_url)
        try:
            async with db.unit_of_work() as session:
                await create_user(session, email, "patient", PASSWORD, uuid.UUID(record["id"]))
        finally:
            await db.dispose()

    asyncio.run(add())
    browser, csrf = web_session(server, email)
    return Patient(record["id"], email, browser, csrf)


@pytest.fixture
def patient(server: Server, nurse: httpx.Client) -> Iterator[Patient]:
    p = new_patient(server, nurse)
    try:
        yield p
    finally:
        p.browser.close()


def register(admin: httpx.Client, *uris: str, name: str = "My Infusions") -> dict[str, Any]:
    r = admin.post("/api/v1/smart-apps", json={"name": name, "redirect_uris": list(uris)})
    assert r.status_code == 201, r.text
    app: dict[str, Any] = r.json()
    return app


@pytest.fixture
def smart_app(admin: httpx.Client) -> dict[str, Any]:
    return register(admin, REDIRECT, "https://app.example/callback")


def appointment(nurse: httpx.Client, patient_id: str, days: int = 3) -> dict[str, Any]:
    center = make_center(nurse)
    chair = make_chair(nurse, center["id"])["id"]
    day = datetime.now(UTC).date() + timedelta(days=days)
    start = datetime(day.year, day.month, day.day, 15, 0, tzinfo=UTC)
    r = book(nurse, patient_id, chair, start.isoformat(), minutes=120)
    assert r.status_code == 201, r.text
    booked: dict[str, Any] = r.json()
    return booked


class Form(HTMLParser):
    """The consent page's form fields (hidden ones and the decision buttons)."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.decisions: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = a.get("action")
        elif tag == "input" and a.get("type") == "hidden":
            self.fields[a["name"]] = a.get("value", "")
        elif tag == "button" and a.get("name") == "decision":
            self.decisions.append(a["value"])


def consent(browser: httpx.Client, authorize_url: str) -> tuple[httpx.Response, Form]:
    page = browser.get(authorize_url)
    assert page.status_code == 200, page.text
    form = Form()
    form.feed(page.text)
    return page, form


def answer(
    server: Server, browser: httpx.Client, form: Form, decision: str = "allow"
) -> httpx.Response:
    assert form.action == "/oauth/authorize" and decision in form.decisions
    return browser.post(
        "/oauth/authorize",
        data={**form.fields, "decision": decision},
        headers={"Origin": server.base_url},
    )


def redirected_to(response: httpx.Response) -> dict[str, str]:
    assert response.status_code in (302, 303), response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


# --- a client written by hand, for what fhirclient would never send --------------------------


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.decode().rstrip("=")


def authorize_url(server: Server, client_id: str, **overrides: str | None) -> str:
    _, challenge = pkce()
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": SCOPE,
        "state": "st-" + secrets.token_hex(4),
        "aud": server.base_url + "/fhir/r4",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **overrides,
    }
    return "/oauth/authorize?" + urlencode({k: v for k, v in params.items() if v is not None})


def code_for(
    server: Server, patient: Patient, client_id: str, scope: str = SCOPE
) -> tuple[str, str]:
    """A code (and its verifier) the patient allowed."""
    verifier, challenge = pkce()
    url = authorize_url(server, client_id, scope=scope, code_challenge=challenge)
    _, form = consent(patient.browser, url)
    query = redirected_to(answer(server, patient.browser, form))
    return query["code"], verifier


def exchange(
    server: Server, client_id: str, code: str, verifier: str, redirect_uri: str = REDIRECT
) -> httpx.Response:
    return httpx.post(
        server.base_url + "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": client_id,
            "code_verifier": verifier,
        },
    )


def refresh(server: Server, client_id: str, token: str, **extra: str) -> httpx.Response:
    return httpx.post(
        server.base_url + "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": token,
            "client_id": client_id,
            **extra,
        },
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- registration and discovery ----------------------------------------------------------------


def test_an_admin_registers_a_public_client_and_can_switch_it_off(
    server: Server, admin: httpx.Client, nurse: httpx.Client
) -> None:
    app = register(admin, "https://app.example/cb", "http://localhost:8000/cb")
    assert set(app) == {
        "id",
        "client_id",
        "name",
        "redirect_uris",
        "active",
        "created_at",
        "version",
    }
    assert app["active"] and app["redirect_uris"] == [
        "https://app.example/cb",
        "http://localhost:8000/cb",
    ]
    assert "secret" not in str(app)
    one = admin.get(f"/api/v1/smart-apps/{app['id']}")
    assert one.json() == app and one.headers["etag"] == f'"{app["version"]}"'
    assert app["id"] in [a["id"] for a in admin.get("/api/v1/smart-apps").json()]

    for bad in ("http://app.example/cb", "https://app.example/cb#frag", "ftp://x.example/", "/cb"):
        r = admin.post("/api/v1/smart-apps", json={"name": "X", "redirect_uris": [bad]})
        assert r.status_code == 422, (bad, r.text)
    assert (
        nurse.post(
            "/api/v1/smart-apps", json={"name": "X", "redirect_uris": [REDIRECT]}
        ).status_code
        == 403
    )
    assert nurse.get("/api/v1/smart-apps").status_code == 403

    path = f"/api/v1/smart-apps/{app['id']}"
    assert admin.patch(path, json={"active": False}).status_code == 428
    stale = admin.patch(path, json={"active": False}, headers={"If-Match": '"99"'})
    assert stale.status_code == 412
    off = admin.patch(
        path, json={"name": "Renamed", "active": False}, headers={"If-Match": one.headers["etag"]}
    )
    assert off.status_code == 200, off.text
    assert off.json()["active"] is False and off.json()["name"] == "Renamed"
    assert off.json()["version"] == app["version"] + 1

    events = admin.get("/api/v1/audit-events", params={"resource_type": "smart_app"}).json()
    mine = [e for e in events["items"] if e["resource_id"] == app["id"]]
    assert {e["action"] for e in mine} == {"create", "update"}, mine


def test_the_smart_configuration_describes_the_launch(
    server: Server, anonymous: httpx.Client
) -> None:
    r = anonymous.get("/fhir/r4/.well-known/smart-configuration")
    assert r.status_code == 200, r.text
    conf = r.json()
    base = server.base_url
    assert conf["issuer"] == base + "/fhir/r4"
    assert conf["authorization_endpoint"] == base + "/oauth/authorize"
    assert conf["token_endpoint"] == base + "/oauth/token"
    assert conf["revocation_endpoint"] == base + "/oauth/revoke"
    assert conf["code_challenge_methods_supported"] == ["S256"]
    assert conf["token_endpoint_auth_methods_supported"] == ["none"]
    assert conf["response_types_supported"] == ["code"]
    assert set(conf["grant_types_supported"]) == {"authorization_code", "refresh_token"}
    for capability in (
        "launch-standalone",
        "client-public",
        "context-standalone-patient",
        "permission-patient",
        "permission-v1",
        "permission-v2",
        "sso-openid-connect",
    ):
        assert capability in conf["capabilities"]
    for scope in [*SCOPE.split(), "patient/Appointment.read", "patient/Patient.rs"]:
        assert scope in conf["scopes_supported"]
    assert anonymous.get(urlsplit(conf["jwks_uri"]).path).status_code == 200


# --- the whole dance, with fhirclient -----------------------------------------------------------


def test_fhirclient_connects_a_patient_app_reads_refreshes_and_revokes(
    server: Server,
    nurse: httpx.Client,
    admin: httpx.Client,
    smart_app: dict[str, Any],
    patient: Patient,
) -> None:
    mine = appointment(nurse, patient.id)
    other = new_patient(server, nurse)
    theirs = appointment(nurse, other.id)
    other.browser.close()

    app = fhir_client.FHIRClient(
        settings={
            "app_id": smart_app["client_id"],
            "api_base": server.base_url + "/fhir/r4",
            "redirect_uri": REDIRECT,
            "scope": SCOPE,
        }
    )
    url = app.authorize_url
    assert url.startswith(server.base_url + "/oauth/authorize?")
    sent = parse_qs(urlsplit(url).query)
    assert sent["code_challenge_method"] == ["S256"] and sent["aud"] == [
        server.base_url + "/fhir/r4"
    ]

    page, form = consent(patient.browser, url)
    assert "My Infusions" in page.text and "your upcoming appointments" in page.text
    assert "who you are" in page.text
    assert form.fields["csrf_token"] == patient.csrf
    allowed = answer(server, patient.browser, form)
    query = redirected_to(allowed)
    assert query["state"] == sent["state"][0] and query["code"]

    app.handle_callback(allowed.headers["location"])
    assert app.patient_id == patient.id
    ctx = app.launch_context
    assert set(ctx["scope"].split()) == set(SCOPE.split())
    assert ctx["token_type"] == "Bearer"
    first_access, first_refresh = app.server.auth.access_token, app.server.auth.refresh_token
    assert first_refresh

    # The id_token: signed with a key at jwks_uri, naming the patient as fhirUser.
    keys = KeySet.import_key_set(
        httpx.get(server.base_url + "/fhir/r4/.well-known/jwks.json").json()
    )
    claims = jwt.decode(ctx["id_token"], keys).claims
    assert claims["aud"] == smart_app["client_id"] and claims["iss"] == server.base_url + "/fhir/r4"
    assert claims["fhirUser"] == f"{server.base_url}/fhir/r4/Patient/{patient.id}"
    assert claims["exp"] > claims["iat"] and claims["sub"]

    # Their appointments, through fhirclient's own requests (the token signs them).
    bundle = app.server.request_json("Appointment")
    assert [e["resource"]["id"] for e in bundle["entry"]] == [mine["id"]]
    assert app.server.request_json(f"Appointment/{mine['id']}")["id"] == mine["id"]
    with httpx.Client(base_url=server.base_url, headers=bearer(first_access)) as as_app:
        assert as_app.get(f"/fhir/r4/Appointment/{theirs['id']}").status_code == 404
        # Nothing but what the scopes grant: not the portal, not the rest of the API.
        assert as_app.get("/api/v1/portal/appointments").status_code == 403
        assert as_app.get("/api/v1/auth/me").status_code == 403
        assert as_app.get(f"/fhir/r4/Patient/{patient.id}").status_code == 403  # no Patient scope

    # Refresh: a new pair; the old refresh token works no more, the new access token does.
    assert app.reauthorize()
    assert app.server.auth.access_token != first_access
    assert app.server.auth.refresh_token != first_refresh
    assert app.patient_id == patient.id
    assert app.server.request_json("Appointment")["total"] == 1
    replay = refresh(server, smart_app["client_id"], first_refresh)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    # The replay revoked the authorization: the newest tokens stop too.
    latest = app.server.auth.access_token
    assert (
        httpx.get(server.base_url + "/fhir/r4/Appointment", headers=bearer(latest)).status_code
        == 401
    )
    r = refresh(server, smart_app["client_id"], app.server.auth.refresh_token)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"

    events = admin.get(
        "/api/v1/audit-events",
        params={"resource_type": "smart_authorization", "patient_id": patient.id},
    ).json()["items"]
    assert [e["action"] for e in events] == ["create"]


def test_revoking_the_access_or_refresh_token(
    server: Server, smart_app: dict[str, Any], patient: Patient
) -> None:
    client_id = smart_app["client_id"]
    tokens = exchange(server, client_id, *code_for(server, patient, client_id)).json()
    access, refresh_token = tokens["access_token"], tokens["refresh_token"]
    fhir = server.base_url + "/fhir/r4/Appointment"
    assert httpx.get(fhir, headers=bearer(access)).status_code == 200

    revoke = server.base_url + "/oauth/revoke"
    gone = httpx.post(
        revoke, data={"token": access, "token_type_hint": "access_token", "client_id": client_id}
    )
    assert gone.status_code == 200, gone.text
    assert httpx.get(fhir, headers=bearer(access)).status_code == 401
    # Unknown tokens are no error (RFC 7009 §2.2); an unknown app is.
    assert httpx.post(revoke, data={"token": "nonsense", "client_id": client_id}).status_code == 200
    assert httpx.post(revoke, data={"token": access, "client_id": "nobody"}).status_code in (
        400,
        401,
    )

    renewed = refresh(server, client_id, refresh_token).json()
    assert httpx.get(fhir, headers=bearer(renewed["access_token"])).status_code == 200
    assert (
        httpx.post(
            revoke, data={"token": renewed["refresh_token"], "client_id": client_id}
        ).status_code
        == 200
    )
    r = refresh(server, client_id, renewed["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # Revoking the refresh token ended the authorization's access tokens too.
    assert httpx.get(fhir, headers=bearer(renewed["access_token"])).status_code == 401


# --- what must be refused --------------------------------------------------------------------


def test_a_code_needs_its_verifier_and_works_once(
    server: Server, smart_app: dict[str, Any], patient: Patient
) -> None:
    client_id = smart_app["client_id"]
    code, verifier = code_for(server, patient, client_id)
    wrong = exchange(server, client_id, code, pkce()[0])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant", wrong.text
    assert wrong.headers["content-type"].startswith("application/json")  # OAuth's, not problem+json
    assert (
        exchange(server, client_id, code, verifier, "https://app.example/callback").json()["error"]
        == "invalid_grant"
    )
    other = register(
        httpx.Client(base_url=server.base_url, headers=server.client("admin").headers), REDIRECT
    )
    assert exchange(server, other["client_id"], code, verifier).json()["error"] == "invalid_grant"

    code, verifier = code_for(server, patient, client_id)
    first = exchange(server, client_id, code, verifier)
    assert first.status_code == 200, first.text
    body = first.json()
    assert (
        body["token_type"] == "Bearer" and body["patient"] == patient.id and body["expires_in"] > 0
    )
    assert first.headers["cache-control"] == "no-store"
    again = exchange(server, client_id, code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    # A code used twice may have been stolen: what it gave stops working (RFC 6749 §4.1.2).
    assert (
        httpx.get(
            server.base_url + "/fhir/r4/Appointment", headers=bearer(body["access_token"])
        ).status_code
        == 401
    )
    no_verifier = httpx.post(
        server.base_url + "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code_for(server, patient, client_id)[0],
            "redirect_uri": REDIRECT,
            "client_id": client_id,
        },
    )
    assert no_verifier.status_code == 400 and no_verifier.json()["error"] == "invalid_request"


def test_unknown_apps_and_unregistered_redirects_are_told_on_our_page_never_redirected(
    server: Server, smart_app: dict[str, Any], patient: Patient
) -> None:
    for url in (
        authorize_url(server, smart_app["client_id"], redirect_uri="https://evil.example/cb"),
        authorize_url(server, smart_app["client_id"], redirect_uri=None),
        authorize_url(server, "no-such-client"),
    ):
        r = patient.browser.get(url)
        assert r.status_code == 400 and "location" not in r.headers, (url, r.status_code)
        assert "cannot connect" in r.text and "text/html" in r.headers["content-type"]


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),  # no PKCE
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),  # would default to plain
        ({"aud": "https://elsewhere.example/fhir"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "patient/Observation.rs user/*.*"}, "invalid_request"),  # nothing we grant
    ],
)
def test_bad_requests_go_back_to_the_app_with_an_error_and_the_state(
    server: Server,
    smart_app: dict[str, Any],
    patient: Patient,
    overrides: dict[str, str | None],
    error: str,
) -> None:
    url = authorize_url(server, smart_app["client_id"], state="keep-me", **overrides)
    query = redirected_to(patient.browser.get(url))
    assert query["error"] == error and query["state"] == "keep-me" and "code" not in query


def test_denying_signing_in_first_and_staff(
    server: Server, smart_app: dict[str, Any], patient: Patient, anonymous: httpx.Client
) -> None:
    url = authorize_url(server, smart_app["client_id"], state="s1")
    _, form = consent(patient.browser, url)
    denied = redirected_to(answer(server, patient.browser, form, "deny"))
    assert denied["error"] == "access_denied" and denied["state"] == "s1" and "code" not in denied

    # No session: to the sign-in page, which comes back here.
    away = anonymous.get(url, follow_redirects=False)
    assert away.status_code == 303
    assert away.headers["location"].startswith("/?next=%2Foauth%2Fauthorize%3F")

    # The answer must carry the session's CSRF token and come from our page.
    forged = patient.browser.post(
        "/oauth/authorize", data={**form.fields, "csrf_token": "0" * 64, "decision": "allow"}
    )
    assert forged.status_code == 403 and "location" not in forged.headers
    cross = patient.browser.post(
        "/oauth/authorize",
        data={**form.fields, "decision": "allow"},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403 and "location" not in cross.headers

    nurse_browser, _ = web_session(server, "nurse@test.local")
    with nurse_browser:
        staff = nurse_browser.get(url)
        assert staff.status_code == 403 and "Only patients can connect apps" in staff.text


def test_a_tokens_scopes_bound_what_it_reads(
    server: Server, nurse: httpx.Client, smart_app: dict[str, Any], patient: Patient
) -> None:
    mine = appointment(nurse, patient.id)
    client_id = smart_app["client_id"]
    base = server.base_url + "/fhir/r4"

    def token(scope: str) -> dict[str, Any]:
        r = exchange(server, client_id, *code_for(server, patient, client_id, scope))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    v1 = token("launch/patient patient/Appointment.read patient/Patient.read made/up.scope")
    assert (
        v1["scope"] == "launch/patient patient/Appointment.read patient/Patient.read"
    )  # unknown dropped
    assert "id_token" not in v1
    with httpx.Client(headers=bearer(v1["access_token"])) as c:
        assert c.get(base + "/Appointment").status_code == 200
        assert c.get(f"{base}/Appointment/{mine['id']}").status_code == 200
        assert c.get(f"{base}/Patient/{patient.id}").status_code == 200

    read_only = token("patient/Appointment.r")
    assert "patient" not in read_only  # no launch/patient: no patient context
    with httpx.Client(headers=bearer(read_only["access_token"])) as c:
        assert c.get(f"{base}/Appointment/{mine['id']}").status_code == 200
        assert c.get(base + "/Appointment").status_code == 403  # search needs .s
        assert c.get(f"{base}/Patient/{patient.id}").status_code == 403

    # Narrowing on refresh is allowed; widening is not.
    both = token("patient/Appointment.rs patient/Patient.rs offline_access")
    wider = refresh(server, client_id, both["refresh_token"], scope="patient/Appointment.rs openid")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    narrower = refresh(server, client_id, both["refresh_token"], scope="patient/Appointment.rs")
    assert narrower.status_code == 200, narrower.text
    assert narrower.json()["scope"] == "patient/Appointment.rs"
    with httpx.Client(headers=bearer(narrower.json()["access_token"])) as c:
        assert c.get(f"{base}/Patient/{patient.id}").status_code == 403


def test_an_app_switched_off_loses_its_tokens(
    server: Server, admin: httpx.Client, patient: Patient
) -> None:
    app = register(admin, REDIRECT)
    tokens = exchange(server, app["client_id"], *code_for(server, patient, app["client_id"])).json()
    fhir = server.base_url + "/fhir/r4/Appointment"
    assert httpx.get(fhir, headers=bearer(tokens["access_token"])).status_code == 200
    off = admin.patch(
        f"/api/v1/smart-apps/{app['id']}", json={"active": False}, headers={"If-Match": '"1"'}
    )
    assert off.status_code == 200, off.text
    assert httpx.get(fhir, headers=bearer(tokens["access_token"])).status_code == 401
    r = refresh(server, app["client_id"], tokens["refresh_token"])
    assert r.status_code in (400, 401) and r.json()["error"] == "invalid_client"
    assert patient.browser.get(authorize_url(server, app["client_id"])).status_code == 400


# --- the scope rules, pure --------------------------------------------------------------------

_SCOPE_WORDS = st.sampled_from(
    [*scopes.SUPPORTED, "user/*.*", "patient/*.rs", "system/Appointment.rs", "launch", "x"]
)


@given(st.lists(_SCOPE_WORDS, max_size=12))
def test_only_supported_scopes_are_granted_each_once_in_the_order_asked(asked: list[str]) -> None:
    granted = scopes.granted(" ".join(asked)).split()
    assert set(granted) <= set(scopes.SUPPORTED) and len(granted) == len(set(granted))
    assert granted == [
        s for i, s in enumerate(asked) if s in scopes.SUPPORTED and s not in asked[:i]
    ]
    assert scopes.granted(" ".join(granted)).split() == granted


@given(st.frozensets(_SCOPE_WORDS, max_size=12), st.sampled_from(["GET", "POST", "PATCH"]))
def test_a_scoped_token_reaches_no_route_outside_fhir_reads(
    held: frozenset[str], method: str
) -> None:
    for route in ("/api/v1/portal/appointments", "/api/v1/auth/me", "/board", "/fhir/r4/metadata"):
        assert not scopes.reaches(held, method, route)
    if method != "GET":
        assert not scopes.reaches(held, method, "/fhir/r4/Appointment")


def test_read_and_search_follow_the_permission_letters() -> None:
    one, search = "/fhir/r4/Appointment/{appointment_id}", "/fhir/r4/Appointment"
    assert scopes.reaches(frozenset({"patient/Appointment.read"}), "GET", search)
    assert scopes.reaches(frozenset({"patient/Appointment.r"}), "GET", one)
    assert not scopes.reaches(frozenset({"patient/Appointment.r"}), "GET", search)
    assert not scopes.reaches(frozenset({"patient/Appointment.s"}), "GET", one)
    # The center an appointment names comes with reading appointments.
    location = "/fhir/r4/Location/{center_id}"
    assert scopes.reaches(frozenset({"patient/Appointment.rs"}), "GET", location)
    assert not scopes.reaches(frozenset({"patient/Patient.rs"}), "GET", location)
    assert not scopes.reaches(frozenset({"openid", "fhirUser"}), "GET", one)


# --- the review's findings (issue 17) ----------------------------------------------------------


def in_database(server: Server, work: Any) -> Any:
    """Run `work(session)` in a unit of work on the server's database; its result."""

    async def run() -> Any:
        db = Database(server.database_url)
        try:
            async with db.unit_of_work() as session:
                return await work(session)
        finally:
            await db.dispose()

    return asyncio.run(run())


def stored_refresh(server: Server, token: str) -> SmartRefreshToken:
    async def read(session: Any) -> SmartRefreshToken:
        row: SmartRefreshToken | None = await session.scalar(
            select(SmartRefreshToken).where(
                SmartRefreshToken.token_hash == token_digest(token, SECRET)
            )
        )
        assert row is not None
        return row

    found: SmartRefreshToken = in_database(server, read)
    return found


def change_access_token(server: Server, token: str, **values: Any) -> None:
    async def change(session: Any) -> None:
        await session.execute(
            update(AccessToken)
            .where(AccessToken.token_hash == token_digest(token, SECRET))
            .values(**values)
        )

    in_database(server, change)


def test_a_refresh_token_only_when_the_patient_let_the_app_keep_access(
    server: Server, smart_app: dict[str, Any], patient: Patient
) -> None:
    client_id = smart_app["client_id"]
    for scope in ("openid fhirUser launch/patient patient/Appointment.rs", "patient/Patient.r"):
        body = exchange(server, client_id, *code_for(server, patient, client_id, scope)).json()
        assert body["access_token"] and "refresh_token" not in body, body

    # The consent page says how long, in plain words.
    online = authorize_url(server, client_id, scope="patient/Appointment.rs online_access")
    assert "for up to 12 hours" in consent(patient.browser, online)[0].text
    offline = authorize_url(server, client_id, scope="patient/Appointment.rs offline_access")
    page = consent(patient.browser, offline)[0].text
    assert "until you withdraw it" in page and "12 hours" not in page

    body = exchange(
        server,
        client_id,
        *code_for(server, patient, client_id, "patient/Appointment.rs offline_access"),
    ).json()
    kept = stored_refresh(server, body["refresh_token"])
    assert kept.expires_at > datetime.now(UTC) + timedelta(days=89)  # offline: 90 days, sliding


def test_online_access_ends_12_hours_after_the_patient_allowed_however_often_refreshed(
    server: Server, smart_app: dict[str, Any], patient: Patient
) -> None:
    client_id = smart_app["client_id"]
    allowed = datetime.now(UTC)
    first = exchange(server, client_id, *code_for(server, patient, client_id)).json()
    row = stored_refresh(server, first["refresh_token"])
    assert row.expires_at <= allowed + timedelta(hours=12, minutes=1)
    assert row.expires_at > allowed + timedelta(hours=11, minutes=55)

    # Bring the chain's end near: no refresh may push it out again.
    end = datetime.now(UTC) + timedelta(minutes=10)

    async def near(session: Any) -> None:
        await session.execute(
            update(SmartRefreshToken).where(SmartRefreshToken.id == row.id).values(expires_at=end)
        )

    in_database(server, near)
    token = first["refresh_token"]
    for _ in range(3):
        renewed = refresh(server, client_id, token)
        assert renewed.status_code == 200, renewed.text
        token = renewed.json()["refresh_token"]
        assert abs(stored_refresh(server, token).expires_at - end) < timedelta(seconds=1)


def test_the_id_token_carries_the_nonce_and_when_the_patient_allowed(
    server: Server, smart_app: dict[str, Any], patient: Patient
) -> None:
    client_id = smart_app["client_id"]
    nonce = "n-" + secrets.token_urlsafe(16)
    verifier, challenge = pkce()
    before = int(datetime.now(UTC).timestamp())
    url = authorize_url(server, client_id, nonce=nonce, code_challenge=challenge)
    _, form = consent(patient.browser, url)
    assert form.fields["nonce"] == nonce  # carried through the consent form
    code = redirected_to(answer(server, patient.browser, form))["code"]
    after = int(datetime.now(UTC).timestamp()) + 1
    body = exchange(server, client_id, code, verifier).json()

    keys = KeySet.import_key_set(
        httpx.get(server.base_url + "/fhir/r4/.well-known/jwks.json").json()
    )
    claims = jwt.decode(body["id_token"], keys).claims  # raises unless a published key signed it
    assert claims["nonce"] == nonce
    assert before - 1 <= claims["auth_time"] <= after
    # A refreshed id_token is no answer to the request the nonce came with.
    again = jwt.decode(refresh(server, client_id, body["refresh_token"]).json()["id_token"], keys)
    assert "nonce" not in again.claims and again.claims["sub"] == claims["sub"]

    too_long = authorize_url(server, client_id, nonce="n" * 256, state="s2")
    query = redirected_to(patient.browser.get(too_long))
    assert query["error"] == "invalid_request" and query["state"] == "s2"


def test_the_signing_keys_are_sealed_at_rest(
    server: Server, smart_app: dict[str, Any], patient: Patient
) -> None:
    client_id = smart_app["client_id"]
    body = exchange(server, client_id, *code_for(server, patient, client_id)).json()
    assert body["id_token"]

    async def keys(session: Any) -> list[SmartSigningKey]:
        return list(await session.scalars(select(SmartSigningKey)))

    rows = in_database(server, keys)
    published = httpx.get(server.base_url + "/fhir/r4/.well-known/jwks.json").json()["keys"]
    assert rows and {k["kid"] for k in published} == {r.kid for r in rows}
    for row in rows:
        for field in ('"d"', '"p"', '"q"', '"kty"'):  # the JWK's members, were it clear
            assert field not in row.private_jwk_sealed
        assert b'"d"' in sealing.open_sealed(row.private_jwk_sealed, SECRET, row.kid)
        with pytest.raises(sealing.SealBroken):
            sealing.open_sealed(row.private_jwk_sealed, "another-secret", row.kid)


@given(
    plain=st.binary(max_size=300),
    secret=st.text(min_size=1, max_size=40),
    other=st.text(min_size=1, max_size=40),
    kid=st.text(max_size=20),
    flip=st.integers(min_value=0),
)
def test_a_sealed_value_opens_only_unchanged_with_its_secret_and_kid(
    plain: bytes, secret: str, other: str, kid: str, flip: int
) -> None:
    sealed = sealing.seal(plain, secret, kid)
    assert sealing.open_sealed(sealed, secret, kid) == plain
    raw = bytearray(base64.b64decode(sealed))
    raw[flip % len(raw)] ^= 0x01  # any bit of the nonce, the ciphertext or the tag
    changed = base64.b64encode(bytes(raw)).decode()
    refused = [(changed, secret, kid), (sealed, secret, kid + "x"), ("not sealed", secret, kid)]
    if other != secret:
        refused.append((sealed, other, kid))
    for value, key, label in refused:
        with pytest.raises(sealing.SealBroken):
            sealing.open_sealed(value, key, label)


def test_a_token_works_only_while_its_app_is_on_and_only_as_far_as_its_scopes(
    server: Server, admin: httpx.Client, patient: Patient
) -> None:
    app = register(admin, REDIRECT)
    client_id = app["client_id"]
    fhir = server.base_url + "/fhir/r4/Appointment"
    unscoped = exchange(server, client_id, *code_for(server, patient, client_id)).json()
    # A token with its app's mark but no scope recorded reaches nothing.
    change_access_token(server, unscoped["access_token"], scope=None)
    assert httpx.get(fhir, headers=bearer(unscoped["access_token"])).status_code == 403

    tokens = exchange(server, client_id, *code_for(server, patient, client_id)).json()
    assert httpx.get(fhir, headers=bearer(tokens["access_token"])).status_code == 200

    # As a token issued while the switch-off committed: not revoked, but its app is off.
    async def switch_off(session: Any) -> None:
        await session.execute(
            update(SmartApp).where(SmartApp.client_id == client_id).values(active=False)
        )

    in_database(server, switch_off)
    r = httpx.get(fhir, headers=bearer(tokens["access_token"]))
    assert r.status_code == 401 and "invalid or expired token" in r.text


def test_an_app_token_lasts_its_hour_unused(
    server: Server, smart_app: dict[str, Any], patient: Patient
) -> None:
    client_id = smart_app["client_id"]
    tokens = exchange(server, client_id, *code_for(server, patient, client_id)).json()
    assert tokens["expires_in"] == 3600
    fhir = server.base_url + "/fhir/r4/Appointment"
    change_access_token(
        server, tokens["access_token"], last_used_at=datetime.now(UTC) - timedelta(minutes=31)
    )
    assert httpx.get(fhir, headers=bearer(tokens["access_token"])).status_code == 200
    # Its own expiry still ends it (a sign-in token's idle limit: tests/test_auth.py).
    change_access_token(
        server, tokens["access_token"], expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    assert httpx.get(fhir, headers=bearer(tokens["access_token"])).status_code == 401


def test_the_consent_page_may_not_be_framed(
    server: Server, smart_app: dict[str, Any], patient: Patient
) -> None:
    page, _ = consent(patient.browser, authorize_url(server, smart_app["client_id"]))
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    error = patient.browser.get(authorize_url(server, "no-such-client"))
    assert error.status_code == 400 and error.headers["x-frame-options"] == "DENY"


PUBLIC = "https://chairside.example.org"


def test_a_public_url_names_the_issuer_whatever_the_host_header(tmp_path: Path) -> None:
    srv = start_server("sqlite", tmp_path, env={"CHAIRSIDE_PUBLIC_URL": PUBLIC + "/"})
    try:
        base = PUBLIC + "/fhir/r4"
        conf = httpx.get(
            srv.base_url + "/fhir/r4/.well-known/smart-configuration",
            headers={"Host": "evil.example"},
        ).json()
        assert conf["issuer"] == base and conf["jwks_uri"] == base + "/.well-known/jwks.json"
        assert conf["authorization_endpoint"] == PUBLIC + "/oauth/authorize"
        assert conf["token_endpoint"] == PUBLIC + "/oauth/token"
        meta = httpx.get(srv.base_url + "/fhir/r4/metadata", headers={"Host": "evil.example"})
        uris = meta.json()["rest"][0]["security"]["extension"][0]["extension"]
        assert {u["url"]: u["valueUri"] for u in uris} == {
            "authorize": PUBLIC + "/oauth/authorize",
            "token": PUBLIC + "/oauth/token",
            "revoke": PUBLIC + "/oauth/revoke",
        }

        with srv.client("admin") as admin, srv.client("nurse") as nurse:
            client_id = register(admin, REDIRECT)["client_id"]
            someone = new_patient(srv, nurse)
        with someone.browser:
            # `aud` must be the public FHIR base, not the address the request came to.
            query = redirected_to(someone.browser.get(authorize_url(srv, client_id, state="a")))
            assert query["error"] == "invalid_request" and query["state"] == "a"
            verifier, challenge = pkce()
            url = authorize_url(srv, client_id, aud=base, code_challenge=challenge)
            _, form = consent(someone.browser, url)
            code = redirected_to(answer(srv, someone.browser, form))["code"]
        body = exchange(srv, client_id, code, verifier).json()
        keys = KeySet.import_key_set(
            httpx.get(srv.base_url + "/fhir/r4/.well-known/jwks.json").json()
        )
        claims = jwt.decode(body["id_token"], keys).claims
        assert claims["iss"] == base and claims["fhirUser"] == f"{base}/Patient/{someone.id}"
    finally:
        stop_server(srv)


def test_the_public_url_setting_is_an_http_origin() -> None:
    def settings(public_url: str) -> Settings:
        return Settings(environment="test", secret_key="s", test_clock=False, public_url=public_url)

    assert settings("https://chairside.example.org/").public_url == PUBLIC
    assert settings("").public_url is None
    for bad in ("chairside.example.org", "ftp://x.example", "https://x.example/?a=1"):
        with pytest.raises(ValueError):
            settings(bad)
