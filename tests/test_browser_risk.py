"""The validator's main task in a real Chromium: an approver raises a blocking finding on a version,
its owner proposes the remediation, a second approver accepts it; the portfolio counts it."""

import pytest
from playwright.sync_api import expect

from tests.conftest import browser_login, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.mlflow]


def test_raise_remediate_and_accept_a_finding_in_the_browser(page, live_server, promo, engineer):
    make_user("engineer2", "ml_engineer")
    version_url = f"{live_server.url}/registry/models/{promo.name}/versions/2/"
    browser_login(page, live_server, "engineer")
    page.goto(version_url)
    page.get_by_text("Raise a finding").click()
    page.get_by_label("Severity").select_option("blocking")
    page.get_by_role("textbox", name="Description").fill("Leakage: a feature is computed after the outcome")
    page.get_by_label("Owner (username)").fill("engineer2")
    page.get_by_label("Due date").fill("2030-01-31")
    page.get_by_role("button", name="Raise finding").click()
    expect(page.locator("#risk-findings")).to_contain_text("Leakage: a feature")
    expect(page.locator("#risk-findings")).to_contain_text("Open")
    page.goto(f"{live_server.url}/portfolio/?tier=none")
    expect(page.locator("#portfolio-totals")).to_contain_text("1 blocking")
    # The month's findings chart is drawn by the vendored plotly (no inline script under the CSP).
    expect(page.locator("#chart-findings")).to_have_attribute("data-drawn", "true")
    expect(page.locator("#chart-findings .plot-container")).to_have_count(1)

    page.context.clear_cookies()
    browser_login(page, live_server, "engineer2")
    page.goto(version_url)
    assert not page.get_by_role("button", name="Accept closure").count()  # the owner never accepts
    page.get_by_label("Remediation note").fill("feature dropped; re-run validation passed")
    page.get_by_role("button", name="Propose closure").click()
    expect(page.locator("#risk-findings")).to_contain_text("Closure proposed")
    assert not page.get_by_role("button", name="Accept closure").count()

    page.context.clear_cookies()
    browser_login(page, live_server, "engineer")
    page.goto(version_url)
    page.get_by_role("button", name="Accept closure").click()
    expect(page.locator("#risk-findings")).to_contain_text("Closed")
    page.goto(f"{live_server.url}/portfolio/")
    expect(page.locator("#portfolio-totals")).to_contain_text("0 blocking")
