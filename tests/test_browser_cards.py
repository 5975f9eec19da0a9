"""The card's governed edit in a real Chromium: a data scientist writes the Tier 1 card of a version
(prefilled from the evidence), previews the diff and proposes it; an approver sees the diff and approves
it, and the card is in force and written to MLflow."""

import pytest
from playwright.sync_api import expect

from governance.risk import services as risk
from tests.conftest import browser_login, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.mlflow]


def test_write_propose_and_approve_a_tier1_card_in_the_browser(page, live_server, promo, scientist, engineer):
    engineer2 = make_user("engineer2", "ml_engineer")
    change = risk.tier_change_request(actor=scientist, model_name=promo.name, tier="tier1", reason="credit")
    risk.tier_change_approve(actor=engineer2, change_id=change.pk)
    browser_login(page, live_server, "scientist")
    page.goto(f"{live_server.url}/registry/models/{promo.name}/versions/2/")
    expect(page.locator("#model-card")).to_contain_text("No approved card yet")
    page.locator("#card-edit-link").click()
    expect(page.get_by_label("Training data and lineage (required)")).to_contain_text("abc123")  # prefilled
    page.get_by_label("Purpose (required)").fill("Scores credit card applications.")
    page.get_by_role("button", name="Preview changes").click()
    expect(page.locator("#card-diff")).to_contain_text("+Scores credit card applications.")
    page.get_by_role("button", name="Propose for approval").click()
    expect(page.locator("#card-pending")).to_contain_text("Proposed revision 1 by scientist")
    assert not page.get_by_role("button", name="Approve card edit").count()  # never the author

    page.context.clear_cookies()
    browser_login(page, live_server, "engineer")
    page.goto(f"{live_server.url}/cards/{promo.name}/2/")
    expect(page.locator("#card-diff")).to_contain_text("+Scores credit card applications.")
    page.get_by_role("button", name="Approve card edit").click()
    expect(page.locator("#card-status")).to_contain_text("approved by engineer")
    expect(page.locator("#card-publish-state")).to_have_text("Written to MLflow")
    expect(page.locator("#card-section-purpose")).to_contain_text("Scores credit card applications.")
    assert "Scores credit card applications." in promo.factory.client.get_model_version(promo.name, "2").description
