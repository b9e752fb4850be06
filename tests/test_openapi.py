"""The OpenAPI document as a generated client and Swagger UI read it: its security schemes,
each operation's security (by the policy table), tags and descriptions; and the docs pages,
served with their own assets and nothing from another host, signing in through Swagger UI's
Authorize dialog with the password flow."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
from playwright.sync_api import Page, expect

from app.api import policy
from app.main import create_app
from app.settings import Settings
from tests.support.servers import PASSWORD, Server
from tests.support.web import screenshot

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
WHO = re.compile(r"\n\n(Who may call: [a-z, ]+|Public: needs no sign-in)\.$")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    """The document as the app builds it: no server, no database."""
    document: dict[str, Any] = create_app(Settings(database_url="sqlite:///unused.db")).openapi()
    return document


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_no_operation_takes_the_authorization_header_as_a_parameter(spec: dict[str, Any]) -> None:
    ops = operations(spec)
    assert len(ops) > 100
    for method, path, operation in ops:
        names = [p["name"].lower() for p in operation.get("parameters", [])]
        assert "authorization" not in names, (method, path)


def test_the_password_flow_bearer_and_session_schemes_are_declared(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert schemes["password"]["type"] == "oauth2"
    assert schemes["password"]["flows"] == {
        "password": {"tokenUrl": "/api/v1/auth/token", "scopes": {}}
    }
    assert {k: schemes["bearer"][k] for k in ("type", "scheme")} == {
        "type": "http",
        "scheme": "bearer",
    }
    session = schemes["session"]
    assert (session["type"], session["in"], session["name"]) == (
        "apiKey",
        "cookie",
        "chairside_session",
    )
    assert all(s.get("description") for s in schemes.values())


def test_signed_in_operations_carry_security_and_public_ones_none(spec: dict[str, Any]) -> None:
    declared = set(spec["components"]["securitySchemes"])
    public, signed_in = [], []
    for method, path, operation in operations(spec):
        rule = policy.POLICY[(method, path)]
        if rule.public:
            public.append((method, path))
            assert operation.get("security") == [], (method, path)
            assert operation["description"].endswith("Public: needs no sign-in."), (method, path)
        else:
            signed_in.append((method, path))
            security = operation.get("security")
            # Alternatives: any one of the schemes will do.
            assert security is not None, (method, path)
            assert {"password": []} in security and {"bearer": []} in security, (method, path)
            assert all(len(s) == 1 and set(s) <= declared for s in security), (method, path)
            roles = ", ".join(r for r in policy.ROLES if r in rule.roles)
            assert operation["description"].endswith(f"Who may call: {roles}."), (method, path)
    assert {("POST", "/api/v1/auth/token"), ("GET", "/healthz"), ("GET", "/fhir/r4/metadata")} <= (
        set(public)
    )
    assert ("GET", "/calendar/{secret}.ics") in public
    assert ("GET", "/api/v1/auth/me") in signed_in and len(signed_in) > 100
    assert "security" not in spec  # no default: each operation says its own


def test_every_operation_is_tagged_and_described(spec: dict[str, Any]) -> None:
    tags = {t["name"]: t for t in spec["tags"]}
    assert all(t.get("description") for t in tags.values())
    used = set()
    for method, path, operation in operations(spec):
        assert operation.get("tags"), (method, path)
        assert set(operation["tags"]) <= set(tags), (method, path, operation["tags"])
        used |= set(operation["tags"])
        # More than the line on access that the document adds to a route's own description.
        own = WHO.sub("", operation.get("description", ""))
        assert own.strip() and own != operation["description"], (method, path)
        assert operation.get("summary"), (method, path)
    assert used >= {"auth", "centers", "appointments", "fhir", "webhooks", "operations"}


def test_the_document_says_who_runs_it_and_where(spec: dict[str, Any]) -> None:
    info = spec["info"]
    assert info["description"] and info["contact"]["name"]
    assert info["license"]["name"] and info["license"]["identifier"]
    assert spec["servers"] == [{"url": "/", "description": "This server"}]
    problem = spec["paths"]["/api/v1/appointments"]["post"]["responses"]["409"]
    assert problem["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/ProblemDetail"
    }
    # Under /fhir/r4 the same errors are FHIR's OperationOutcome (app.api.errors).
    outcome = spec["paths"]["/fhir/r4/Appointment"]["get"]["responses"]["401"]["content"]
    assert outcome == {
        "application/fhir+json": {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}
    }


ASSET_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


def assets_of(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


@pytest.mark.parametrize("page_path", ["/docs", "/redoc"])
def test_the_docs_pages_load_only_their_own_assets(anonymous: httpx.Client, page_path: str) -> None:
    r = anonymous.get(page_path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assets = assets_of(r.text)
    assert len(assets) >= 2, assets
    assert "/openapi.json" in r.text
    assert "://" not in r.text.replace("window.location.origin", "")  # no host named at all
    for asset in assets:
        assert asset.startswith("/docs/assets/"), asset
        got = anonymous.get(asset)
        assert got.status_code == 200, asset
        kind = ASSET_TYPES[asset[asset.rindex(".") :]]
        assert got.headers["content-type"].startswith(kind), (asset, got.headers["content-type"])
        assert len(got.content) > 1000, asset
    redirect = anonymous.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200 and "oauth2" in redirect.text
    assert anonymous.get("/docs/assets/nothing.js").status_code == 404


def test_swagger_ui_signs_in_with_the_password_flow_and_calls_the_api(
    page: Page, server: Server
) -> None:
    """The Authorize dialog's password flow gets a token from /api/v1/auth/token, and "Try it
    out" sends it: every request stays on the server (the `page` fixture's guard)."""
    page.goto("/docs")
    # Swagger UI lays out every operation before the title shows: a while on a busy machine
    # (it missed 5 s once in CI, with the other worker loading both cores).
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Chairside", timeout=60_000)
    page.get_by_role("button", name="Authorize").first.click()
    dialog = page.locator(".dialog-ux .modal-ux")
    expect(dialog).to_be_visible()
    password_flow = dialog.locator(".auth-container").filter(has_text="password (OAuth2, password)")
    password_flow.locator("input#oauth_username").fill("nurse@test.local")
    password_flow.locator("input#oauth_password").fill(PASSWORD)
    with page.expect_response(urljoin(server.base_url, "/api/v1/auth/token")) as token:
        password_flow.locator("button.authorize").click()
    assert token.value.status == 200
    expect(password_flow.locator("button", has_text="Logout")).to_be_visible()
    screenshot(page, server, "api-docs-authorize")
    dialog.locator("button.btn-done").first.click()

    me = page.locator("#operations-auth-who_am_i_api_v1_auth_me_get")
    me.locator(".opblock-summary").click()
    me.get_by_role("button", name="Try it out").click()
    with page.expect_response(urljoin(server.base_url, "/api/v1/auth/me")) as answer:
        me.get_by_role("button", name="Execute").click()
    assert answer.value.status == 200
    assert answer.value.request.headers["authorization"].startswith("Bearer ")
    expect(me.locator(".live-responses-table tbody .response-col_status").first).to_contain_text(
        "200", timeout=30_000
    )


def test_redoc_renders_the_document(page: Page) -> None:
    page.goto("/redoc")
    # The whole document is laid out before the first heading shows: a while on a busy machine.
    expect(page.locator("h1").first).to_contain_text("Chairside", timeout=60_000)
    expect(page.get_by_text("Who may call: admin.").first).to_be_attached()
