"""The whole promotion path in a real Chromium: the scientist requests, the engineer approves, ops
deploys, and the real MLflow server then reports the new alias."""

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.mlflow]


def PICKERS(response) -> bool:
    return "/governance/requests/new/?" in response.url


def switch_user(page, live_server, username):
    page.context.clear_cookies()
    browser_login(page, live_server, username)


def test_request_approve_deploy_in_the_browser(page, live_server, promo, scientist, engineer, ops_user, screenshot):
    browser_login(page, live_server, "scientist")
    page.goto(f"{live_server.url}/governance/requests/new/")
    model = page.get_by_label("Registered model")
    assert promo.name in page.locator("#model-options option").evaluate_all("os => os.map(o => o.value)")
    model.fill(promo.name)
    with page.expect_response(PICKERS):  # each choice re-renders the pickers below it
        model.dispatch_event("change")  # what picking from the type-ahead list does
    version = page.get_by_label("Version")
    expect(version.locator("option")).to_have_count(4)  # "choose" + v3, v2, v1 with stage, aliases, metrics
    expect(version.locator("option[value='1']")).to_have_text(re.compile(r"v1 · Production · @champion · accuracy 0.8"))
    with page.expect_response(PICKERS):
        version.select_option("2")
    with page.expect_response(PICKERS):
        page.get_by_label("Target", exact=True).select_option("new")
    # Reserved: refused, and nothing typed is lost. The field is kept as typed while the pickers
    # around it re-render (hx-preserve).
    page.get_by_label("New alias name").fill("latest")
    page.get_by_label("Justification").fill("v2 beats v1 on accuracy (0.90 vs 0.80)")
    page.get_by_role("button", name="Submit request").click()
    expect(page.locator("#id_target_alias_error")).to_contain_text("not a valid alias")
    expect(page.get_by_label("Justification")).to_have_value("v2 beats v1 on accuracy (0.90 vs 0.80)")
    expect(page.get_by_label("Version")).to_have_value("2")
    with page.expect_response(PICKERS):
        page.get_by_label("Target", exact=True).select_option("alias:champion")
    expect(page.locator("#gate-preview")).to_contain_text("tag:validation_status")
    expect(page.get_by_label("New alias name")).to_have_count(0)  # only for a new alias
    screenshot("workflow-0-request-form")
    page.get_by_role("button", name="Submit request").click()
    expect(page.locator("#request-state")).to_have_text("pending")
    expect(page.locator("#gates")).to_contain_text("passed: tag:validation_status")
    request_url = page.url
    assert not page.get_by_role("button", name="Approve").count()  # no approving one's own request
    screenshot("workflow-1-requested")

    switch_user(page, live_server, "engineer")
    page.goto(f"{live_server.url}/governance/inbox/")
    page.get_by_role("link", name=re.compile(r"^#\d+$")).first.click()
    evidence = page.locator("table.evidence")
    expect(evidence).to_contain_text("0.9")
    expect(evidence).to_contain_text("0.8")
    expect(evidence.locator("tr", has_text="accuracy")).to_contain_text("+0.1 ▲ better")
    expect(page.locator("#timeline")).to_contain_text("scientist requested v2 → @champion (replacing v1)")
    expect(page.locator("#review-links").get_by_role("link", name="Compare v1 and v2")).to_be_visible()
    assert not page.get_by_role("button", name="Deploy").count()
    page.get_by_role("button", name="Approve").click()  # opens the confirmation, submits nothing
    dialog = page.get_by_role("dialog", name=re.compile("Approve request"))
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"{promo.name} v2 → @champion")
    screenshot("workflow-2a-approve-dialog")
    dialog.get_by_label("Comment (optional)").fill("Evidence checked")
    dialog.get_by_role("button", name="Confirm: approve").click()
    expect(page.locator("#request-state")).to_have_text("approved")
    screenshot("workflow-2-approved")

    switch_user(page, live_server, "ops")
    page.goto(f"{live_server.url}/governance/inbox/")
    expect(page.locator("section", has_text="waiting for my deploy")).to_contain_text(promo.name)
    page.goto(request_url)
    page.get_by_role("button", name="Deploy").click()
    dialog = page.get_by_role("dialog", name=re.compile("Deploy request"))
    expect(dialog).to_contain_text("MLflow's @champion moves to v2 (from v1)")
    dialog.get_by_role("button", name="Confirm: deploy").click()
    expect(page.locator("#request-state")).to_have_text("deployed")
    expect(page.locator(".history")).to_contain_text("deploy.succeeded")
    expect(page.locator("#timeline")).to_contain_text("ops deployed v2 to @champion (replacing v1)")
    screenshot("workflow-3-deployed")

    aliases = promo.factory.client.get_registered_model(promo.name).aliases
    assert str(aliases["champion"]) == "2"
