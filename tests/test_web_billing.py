"""The billing screens in a real browser (Debian's Chromium through Playwright), on both
databases: the work queue shows alerts the API raised, filters them, and acts on them in
place (assign, acknowledge, resolve with a note, a refusal said plainly); its CSV download
has the filtered rows; an authorization's screen shows its burn-down, renew-by and alerts; a
nurse is told these screens are not hers. Each screen is checked with axe-core, and
screenshotted (the SQLite run's, at 1366x768)."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import (
    open_context,
    requires_chromium,
)
from tests.support.servers import Server, at
from tests.support.web import no_serious_violations, own_server, screenshot, sign_in
from tests.test_alert_queue_filters import alerts, as_at, insured_course

pytestmark = [pytest.mark.browser, requires_chromium]


server = own_server("web-billing")


SEVERITY = {"critical": "Critical", "warning": "Warning", "info": "Info"}
KIND = {"auth_units_low": "Units running out", "session_uncovered": "Session not covered"}


def open_queue(page: Page) -> None:
    page.goto("/billing")
    expect(page.locator("#count")).to_contain_text("alert")


def shown_date(iso: str) -> str:
    """A local date as the screens write it: 22 Feb 2027."""
    d = date.fromisoformat(iso)
    return f"{d.day} {d:%b %Y}"


def dollars(amount: float) -> str:
    return f"${amount:,.2f}"


def live_of(billing: httpx.Client, made: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["kind"]: a for a in alerts(billing, patient_id=made["patient"]["id"])}


def row(page: Page, alert: dict[str, Any]) -> Any:
    return page.locator(f"#rows tr[data-alert='{alert['id']}']")


def test_the_queue_shows_filters_and_acts_on_alerts_in_place(
    page: Page, server: Server, admin: httpx.Client, nurse: httpx.Client, billing: httpx.Client
) -> None:
    made = insured_course(admin, nurse, billing, given_name="Amara", family_name="Nwosu")
    for given, family, visits in (("Jonas", "Weber", 3), ("Grace", "Sato", 4)):
        insured_course(admin, nurse, billing, given_name=given, family_name=family, visits=visits)
    live = live_of(billing, made)
    low, uncovered = live["auth_units_low"], live["session_uncovered"]
    payer = made["payer"]["name"]

    sign_in(page, "billing@test.local")
    expect(page.get_by_role("link", name="Billing")).to_be_visible()
    open_queue(page)
    for alert in (low, uncovered):
        shown = row(page, alert)
        expect(shown).to_contain_text(KIND[alert["kind"]])
        expect(shown).to_contain_text(SEVERITY[alert["severity"]])
        expect(shown).to_contain_text("Nwosu, Amara")
        expect(shown).to_contain_text(payer)
        expect(shown).to_contain_text(alert["detail"])
        expect(shown).to_contain_text(shown_date(alert["due_date"]))
        expect(shown).to_contain_text("Open")
        expect(shown).to_contain_text("Nobody")
    expect(row(page, low)).to_contain_text(made["auth"]["auth_number"])
    expect(row(page, uncovered)).to_contain_text(dollars(uncovered["amount_at_risk"]))
    # Rows in the API's order: severity, then money at risk, then due date.
    order = [a["id"] for a in alerts(billing, queue="billing")]
    on_screen = page.locator("#rows tr").evaluate_all("rows => rows.map(r => r.dataset.alert)")
    assert on_screen == order
    no_serious_violations(page)
    screenshot(page, server, "billing")

    # Filters: one payer's alerts, then one kind of them; the URL keeps ids, never names.
    page.get_by_label("Payer", exact=True).select_option(label=payer)
    expect(page.locator("#rows tr")).to_have_count(2)
    page.get_by_label("Kind").select_option(label="Session not covered")
    expect(page.locator("#rows tr")).to_have_count(1)
    expect(row(page, uncovered)).to_be_visible()
    assert "Nwosu" not in page.url and made["payer"]["id"] in page.url
    page.get_by_label("Kind").select_option(label="Any kind")
    expect(page.locator("#rows tr")).to_have_count(2)

    # Assign to me, through the dialog; the row says so at once.
    row(page, low).get_by_role("button", name="Assign…").click()
    dialog = page.get_by_role("dialog", name="Assign alert")
    expect(dialog.get_by_label("Assign to")).to_have_value(
        billing.get("/api/v1/auth/me").json()["id"]
    )
    no_serious_violations(page)
    dialog.get_by_role("button", name="Assign").click()
    expect(dialog).to_be_hidden()
    expect(row(page, low)).to_contain_text("billing@test.local")
    expect(row(page, low)).to_contain_text("(me)")
    assert billing.get(f"/api/v1/alerts/{low['id']}").json()["assignee_email"] == (
        "billing@test.local"
    )
    page.get_by_label("Assigned to").select_option(label="Me")
    expect(page.locator("#rows tr")).to_have_count(1)
    expect(row(page, low)).to_be_visible()
    page.get_by_label("Assigned to").select_option(label="Nobody")
    expect(page.locator("#rows tr")).to_have_count(1)
    expect(row(page, uncovered)).to_be_visible()
    page.get_by_label("Assigned to").select_option(label="Anyone or nobody")
    expect(page.locator("#rows tr")).to_have_count(2)

    # Acknowledge: the row changes in place.
    row(page, low).get_by_role("button", name="Acknowledge").click()
    expect(row(page, low)).to_contain_text("Acknowledged")
    expect(row(page, low).get_by_role("button", name="Acknowledge")).to_have_count(0)
    assert billing.get(f"/api/v1/alerts/{low['id']}").json()["status"] == "acknowledged"

    # Another biller got there first: the refusal (409) is said, and the row catches up.
    assert billing.post(f"/api/v1/alerts/{uncovered['id']}/acknowledge").status_code == 200
    row(page, uncovered).get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_role("alert")).to_contain_text("Could not acknowledge")
    expect(page.get_by_role("alert")).to_contain_text("already acknowledged")
    expect(row(page, uncovered)).to_contain_text("Acknowledged")

    # Resolve with a note: it leaves the live list.
    row(page, uncovered).get_by_role("button", name="Resolve…").click()
    dialog = page.get_by_role("dialog", name="Resolve alert")
    dialog.get_by_label("Note: what was done").fill("Session paid by the secondary payer.")
    dialog.get_by_role("button", name="Resolve").click()
    expect(dialog).to_be_hidden()
    expect(row(page, uncovered)).to_have_count(0)
    expect(page.locator("#rows tr")).to_have_count(1)
    kept = billing.get(f"/api/v1/alerts/{uncovered['id']}").json()
    assert (kept["status"], kept["note"]) == ("resolved", "Session paid by the secondary payer.")
    page.get_by_label("Status").select_option(label="Resolved")
    expect(row(page, uncovered)).to_contain_text("Resolved")
    expect(row(page, uncovered)).to_contain_text("Note: Session paid by the secondary payer.")
    expect(row(page, uncovered).get_by_role("button")).to_have_count(0)


def test_the_csv_download_has_the_rows_the_filters_show(
    page: Page, server: Server, admin: httpx.Client, nurse: httpx.Client, billing: httpx.Client
) -> None:
    made = insured_course(admin, nurse, billing, given_name="Lior", family_name="Ben-David")
    insured_course(admin, nurse, billing)  # another payer's: not in the download
    sign_in(page, "billing@test.local")
    open_queue(page)
    page.get_by_label("Payer", exact=True).select_option(label=made["payer"]["name"])
    expect(page.locator("#rows tr")).to_have_count(2)
    shown = page.locator("#rows tr").evaluate_all("rows => rows.map(r => r.dataset.alert)")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    saved = download.value.path()
    rows = list(csv.DictReader(io.StringIO(Path(saved).read_text(encoding="utf-8"))))
    assert download.value.suggested_filename.startswith("worklist-")
    assert [r["alert_id"] for r in rows] == shown
    assert {r["patient"] for r in rows} == {"Ben-David, Lior"}
    assert {r["payer"] for r in rows} == {made["payer"]["name"]}
    assert {r["kind"] for r in rows} == {"auth_units_low", "session_uncovered"}


def test_the_authorization_screen_burns_down_and_acts(
    browser: Browser,
    server: Server,
    admin: httpx.Client,
    nurse: httpx.Client,
    billing: httpx.Client,
) -> None:
    made = insured_course(admin, nurse, billing, given_name="Rosa", family_name="Tanaka")
    first = made["sessions"][0]
    start = datetime.fromisoformat(first["start"])
    for step, minutes in (("check-in", -30), ("start", 0), ("complete", 180)):
        with as_at(server, "nurse", start + timedelta(minutes=minutes)) as c:
            r = c.post(f"/api/v1/appointments/{first['id']}/{step}")
            assert r.status_code == 200, r.text
    auth = made["auth"]
    low = live_of(billing, made)["auth_units_low"]
    context, guard = open_context(browser, server.base_url)
    # The browser works ten days after the first session (the server's clock for it).
    context.set_extra_http_headers(at(start + timedelta(days=10)))
    try:
        page = context.new_page()
        sign_in(page, "billing@test.local")
        usage = billing.get(
            f"/api/v1/authorizations/{auth['id']}/usage",
            params={"include": "sessions"},
            headers=at(start + timedelta(days=10)),
        ).json()
        assert usage["units_used"] == 1 and usage["renew_by"]
        # From the queue row to the authorization.
        open_queue(page)
        page.get_by_label("Payer", exact=True).select_option(label=made["payer"]["name"])
        row(page, low).get_by_role("link", name=auth["auth_number"]).click()
        page.wait_for_url(f"**/billing/authorizations/{auth['id']}")
        expect(page.get_by_role("heading", level=1)).to_have_text(
            f"Authorization {auth['auth_number']}"
        )
        facts = page.locator("#facts")
        expect(facts).to_contain_text("Tanaka, Rosa")
        expect(facts).to_contain_text(made["payer"]["name"])
        expect(facts).to_contain_text("Gamunex-C queue")
        expect(facts).to_contain_text(f"{shown_date(auth['valid_from'])} to")

        def figure(name: str) -> Any:
            return page.locator("#figures dt", has_text=name).locator("xpath=following-sibling::dd")

        expect(figure("Renew by")).to_contain_text(shown_date(usage["renew_by"]))
        expect(figure("Used")).to_contain_text("1 by sessions given")
        expect(figure("Booked")).to_contain_text("3 held by sessions booked")
        expect(figure("Left")).to_have_text("0 visits")

        chart = page.get_by_role("img", name=f"Units left on authorization {auth['auth_number']}")
        expect(chart).to_be_visible()
        expect(chart.locator("path.used")).to_have_count(1)
        expect(chart.locator("path.booked")).to_have_count(3)
        expect(chart.locator(".marker.renew")).to_contain_text(
            f"Renew by {shown_date(usage['renew_by'])}"
        )
        expect(chart.locator(".marker.today")).to_contain_text(shown_date(usage["today"]))
        assert chart.evaluate("svg => svg.querySelectorAll('[style]').length") == 0
        table = page.get_by_role("table", name="Units left after each session")
        marks = [usage["renew_by"], usage["projected_exhaustion_date"]]
        # The head, the approval, the four sessions it pays for, renew-by and runs-out.
        expect(table.get_by_role("row")).to_have_count(1 + 1 + 4 + len([m for m in marks if m]))
        expect(table.get_by_role("row", name="Session given")).to_contain_text("3")
        expect(table.get_by_role("row", name="Renew by")).to_contain_text(
            shown_date(usage["renew_by"])
        )

        # Its live alerts, with the queue's actions.
        alerts_table = page.get_by_role("table", name="Live alerts on this authorization")
        expect(alerts_table.locator(f"tr[data-alert='{low['id']}']")).to_contain_text(
            "Units running out"
        )
        no_serious_violations(page)
        screenshot(page, server, "authorization")
        alerts_table.get_by_role("button", name="Acknowledge").click()
        expect(alerts_table.locator(f"tr[data-alert='{low['id']}']")).to_contain_text(
            "Acknowledged"
        )
        assert billing.get(f"/api/v1/alerts/{low['id']}").json()["status"] == "acknowledged"
    finally:
        context.close()
    guard.check()


def test_a_nurse_has_no_billing_screens(page: Page, server: Server) -> None:
    sign_in(page, "nurse@test.local")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Day board")).to_be_visible()
    expect(nav.get_by_role("link", name="Billing")).to_have_count(0)
    page.goto("/billing")
    expect(
        page.get_by_text("The billing work queue is for billing and admin users")
    ).to_be_visible()
    expect(page.locator("#queue")).to_be_hidden()
    no_serious_violations(page)
    page.goto("/billing/authorizations/00000000-0000-0000-0000-000000000000")
    expect(
        page.get_by_text("Authorizations are worked on by billing and admin users")
    ).to_be_visible()
