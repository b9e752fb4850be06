"""Electronic prior authorization in a real browser, on both databases: a biller submits a
draft to a fake PAS payer (real HTTP over loopback) from the authorization screen, sees it
pended with its exchange, the inquiry job decides it and the screen shows the approval and
three exchanges; the work queue lists it while it waits; a payer's refusal reads as words."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import requires_chromium
from tests.support.databases import backends
from tests.support.fake_payer import FakePayer
from tests.support.servers import Server, start_server, stop_server
from tests.support.web import no_serious_violations, screenshot, sign_in
from tests.test_pas import FAMILY, GIVEN, current, draft, run_inquiries

pytestmark = [pytest.mark.browser, requires_chromium]


@pytest.fixture(scope="module", params=backends())
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server of this module's own that may call the loopback fake payer."""
    srv = start_server(
        request.param,
        tmp_path_factory.mktemp(f"web-pas-{request.param}"),
        env={
            "CHAIRSIDE_PAYER_ALLOW_PRIVATE": "true",
            "CHAIRSIDE_PAYER_READ_TIMEOUT_SECONDS": "2",
            "CHAIRSIDE_PAYER_RETRY_SECONDS": "0.05",
        },
    )
    try:
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakePayer]:
    with FakePayer() as payer:
        yield payer


def open_authorization(page: Page, auth_id: str) -> None:
    page.goto(f"/billing/authorizations/{auth_id}")
    expect(page.locator("#authorization")).to_be_visible()


def test_a_biller_submits_a_draft_and_follows_it_to_approval(
    page: Page,
    server: Server,
    admin: httpx.Client,
    nurse: httpx.Client,
    billing: httpx.Client,
    fake: FakePayer,
) -> None:
    auth = draft(nurse, billing, fake, "PEND2-web")
    sign_in(page, "billing@test.local")
    open_authorization(page, auth["id"])
    card = page.locator("#payer-card")
    expect(card).to_contain_text("takes prior authorization requests electronically")
    expect(page.locator("#no-exchanges")).to_be_visible()
    button = page.get_by_role("button", name="Submit to payer")
    expect(button).to_be_visible()
    no_serious_violations(page)

    # Reached by keyboard: Tab until the button has the focus, then Enter.
    for _ in range(40):
        if page.evaluate("document.activeElement && document.activeElement.id") == "submit":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "submit"
    page.keyboard.press("Enter")
    busy = page.locator("#submit-busy")
    expect(busy).to_contain_text("Pending: the payer is reviewing it")
    expect(busy).to_be_focused()
    expect(button).to_be_hidden()
    expect(page.locator("#facts")).to_contain_text("Pending")
    expect(card).to_contain_text("Next inquiry")
    rows = page.locator("#exchange-rows tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Submitted")
    expect(rows.first).to_contain_text("Pended")
    expect(rows.first).to_contain_text("200")
    no_serious_violations(page)

    # The work queue shows it waiting on its payer.
    page.goto("/billing")
    waiting = page.locator(f"#waiting-rows tr[data-authorization='{auth['id']}']")
    expect(waiting).to_contain_text("Electronic")
    payer = billing.get(f"/api/v1/payers/{auth['payer_id']}").json()
    expect(waiting).to_contain_text(payer["name"])
    expect(waiting).to_contain_text(f"{FAMILY}, {GIVEN}")
    overdue = page.get_by_label("Kind").locator("option", has_text="Payer decision overdue")
    expect(overdue).to_have_count(1)
    no_serious_violations(page)

    # The inquiry job, twice: still pended, then approved.
    first = datetime.fromisoformat(current(billing, auth)["electronic"]["next_inquiry_at"])
    run_inquiries(admin, first + timedelta(minutes=1))
    second = datetime.fromisoformat(current(billing, auth)["electronic"]["next_inquiry_at"])
    run_inquiries(admin, second + timedelta(minutes=1))
    done = current(billing, auth)
    assert done["status"] == "approved"

    open_authorization(page, auth["id"])
    expect(page.locator("#heading")).to_have_text(f"Authorization {done['auth_number']}")
    expect(page.locator("#facts")).to_contain_text("Approved")
    expect(page.locator("#figures")).to_contain_text(str(done["units_approved"]))
    expect(rows).to_have_count(3)
    kinds = rows.locator("th").evaluate_all("cells => cells.map(c => c.firstChild.textContent)")
    assert kinds == ["Asked again", "Asked again", "Submitted"]
    expect(rows.nth(0)).to_contain_text("Approved")
    expect(rows.nth(1)).to_contain_text("Pended")
    expect(page.get_by_role("button", name="Submit to payer")).to_be_hidden()
    no_serious_violations(page)
    page.locator("#payer-card").scroll_into_view_if_needed()
    screenshot(page, server, "authorization-pas")

    page.goto("/billing")
    expect(page.locator("#waiting-count")).to_contain_text("waiting")
    expect(page.locator(f"#waiting-rows tr[data-authorization='{auth['id']}']")).to_have_count(0)


def test_a_payer_refusal_reads_as_words_and_the_draft_stays(
    page: Page, server: Server, nurse: httpx.Client, billing: httpx.Client, fake: FakePayer
) -> None:
    auth = draft(nurse, billing, fake, "REFUSE-web")
    sign_in(page, "billing@test.local")
    open_authorization(page, auth["id"])
    page.get_by_role("button", name="Submit to payer").click()
    problem = page.locator("#submit-problem")
    expect(problem).to_contain_text("The payer refused the request.")
    expect(problem).to_be_focused()
    text = problem.inner_text()
    assert "{" not in text and "payer-refused" not in text
    expect(page.get_by_role("button", name="Submit to payer")).to_be_enabled()
    expect(page.locator("#facts")).to_contain_text("Draft")
    rows = page.locator("#exchange-rows tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Refused by the payer")
    expect(rows.first).to_contain_text("400")
    expect(page.locator("#payer-card")).to_contain_text("Last attempt")
    no_serious_violations(page)
    assert current(billing, auth)["status"] == "draft"
