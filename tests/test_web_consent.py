"""The SMART consent page in a real browser (Debian's Chromium through Playwright), on both
databases: an app sends a patient who is not signed in to /oauth/authorize; they sign in on
the sign-in page, come back to the consent page, allow, and land on the app's redirect URI
with a code the app can exchange. Checked with axe-core; the SQLite run's screenshot goes to
CHAIRSIDE_SCREENS (docs/screens/consent.png) when set."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import uuid
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from playwright.sync_api import Page, expect

from app.auth.service import create_user
from core.db import Database
from tests.support.browser import BrowserSession, requires_chromium
from tests.support.factories import make_patient
from tests.support.servers import PASSWORD, Server
from tests.support.web import no_serious_violations, own_server, screenshot

pytestmark = [pytest.mark.browser, requires_chromium]

server = own_server("web-consent")


def patient_login(server: Server, browser_session: BrowserSession) -> tuple[str, str]:
    """A patient and their sign-in email (seeded over HTTP and, for the login, the database)."""
    with server.client("nurse") as nurse:
        patient_id = make_patient(nurse)["id"]
    email = f"consent-{uuid.uuid4().hex[:8]}@test.local"

    async def add() -> None:
        db = Database(server.database_url)
        try:
            async with db.unit_of_work() as session:
                await create_user(session, email, "patient", PASSWORD, uuid.UUID(patient_id))
        finally:
            await db.dispose()

    with browser_session.parked():
        asyncio.run(add())
    return patient_id, email


def test_a_patient_signs_in_allows_the_app_and_lands_on_its_redirect_with_a_code(
    page: Page, server: Server, browser_session: BrowserSession
) -> None:
    patient_id, email = patient_login(server, browser_session)
    # The "app" is on the test server too (the page may load nothing from elsewhere).
    redirect = server.base_url + "/healthz"
    with server.client("admin") as admin:
        r = admin.post(
            "/api/v1/smart-apps", json={"name": "My Infusions", "redirect_uris": [redirect]}
        )
        assert r.status_code == 201, r.text
        client_id = r.json()["client_id"]
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect,
        "scope": "openid fhirUser launch/patient patient/Appointment.rs offline_access",
        "state": "from-the-app",
        "aud": server.base_url + "/fhir/r4",
        "code_challenge": challenge.decode().rstrip("="),
        "code_challenge_method": "S256",
    }

    page.goto("/oauth/authorize?" + urlencode(query))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.wait_for_url("**/oauth/authorize?**")
    expect(
        page.get_by_role("heading", name="Connect “My Infusions” to your Chairside account?")
    ).to_be_visible()
    expect(
        page.get_by_role("listitem").filter(has_text="your upcoming appointments")
    ).to_be_visible()
    expect(page.get_by_role("listitem").filter(has_text="who you are")).to_be_visible()
    expect(page.get_by_role("listitem").filter(has_text="keep access")).to_be_visible()
    no_serious_violations(page)
    screenshot(page, server, "consent")

    page.get_by_role("button", name="Allow").click()
    page.wait_for_url("**/healthz?**")
    landed = parse_qs(urlsplit(page.url).query)
    assert landed["state"] == ["from-the-app"] and landed["code"][0]

    tokens = httpx.post(
        server.base_url + "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": landed["code"][0],
            "redirect_uri": redirect,
            "client_id": client_id,
            "code_verifier": verifier,
        },
    )
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["patient"] == patient_id


def test_a_signed_in_patient_who_denies_goes_back_with_access_denied(
    page: Page, server: Server, browser_session: BrowserSession
) -> None:
    _, email = patient_login(server, browser_session)
    redirect = server.base_url + "/healthz"
    with server.client("admin") as admin:
        client_id = admin.post(
            "/api/v1/smart-apps", json={"name": "Second App", "redirect_uris": [redirect]}
        ).json()["client_id"]
    page.goto("/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/board**")
    challenge = base64.urlsafe_b64encode(hashlib.sha256(b"x" * 50).digest()).decode().rstrip("=")
    page.goto(
        "/oauth/authorize?"
        + urlencode(
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": redirect,
                "scope": "launch/patient patient/Appointment.read",
                "state": "s2",
                "aud": server.base_url + "/fhir/r4",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
    )
    expect(
        page.get_by_role("heading", name="Connect “Second App” to your Chairside account?")
    ).to_be_visible()
    page.get_by_role("button", name="Deny").click()
    page.wait_for_url("**/healthz?**")
    landed = parse_qs(urlsplit(page.url).query)
    assert landed["error"] == ["access_denied"] and landed["state"] == ["s2"]
    assert "code" not in landed


# Each spelling parses to the path "//evil.example" (another host) or is another site outright;
# the last one is our own page, but not the consent page.
BAD_RETURNS = (
    "/.//evil.example",
    "/%2e//evil.example",
    "/a/..//evil.example",
    "/./\\evil.example",
    "//evil.example",
    "https://evil.example/oauth/authorize",
    "/oauth/authorize/..//evil.example",
    "/api/v1/portal/calendar-token",
)


def test_the_sign_in_page_goes_back_only_to_the_consent_page(
    page: Page, server: Server, browser_session: BrowserSession
) -> None:
    _, email = patient_login(server, browser_session)
    page.goto("/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/board**")
    for bad in BAD_RETURNS:
        # Signed in, a return path it took would be followed at once (after /auth/me): by the
        # time the page is idle it would have gone. (A request to another host would fail the
        # test by itself: see the `page` fixture.)
        page.goto("/?" + urlencode({"next": bad}))
        page.wait_for_load_state("networkidle")
        assert urlsplit(page.url).path == "/", (bad, page.url)
    page.goto("/?" + urlencode({"next": "/oauth/authorize?client_id=nobody"}))
    page.wait_for_url("**/oauth/authorize?client_id=nobody")
