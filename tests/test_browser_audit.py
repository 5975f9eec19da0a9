"""An auditor searches the trail in a real Chromium and opens a model's printable report."""

import pytest
from django.db import transaction
from playwright.sync_api import expect

from governance import audit
from registry_ui.mirror.models import ModelVersion, RegisteredModel
from tests.conftest import browser_login, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_auditor_searches_the_trail_and_opens_a_report(page, live_server, screenshot):
    make_user("aud", "auditor")
    model = RegisteredModel.objects.create(name="fraud-detector", description="Flags card fraud")
    ModelVersion.objects.create(model=model, version=3, stage="Production", run_id="abc", source="s3://m/3")
    with transaction.atomic():
        audit.record(actor_name="alice", action="request.created", model="fraud-detector", version=3, request=11,
                     after={"evidence": {"auc": 0.94}}, comment="Promote after holdout review")
        audit.record(actor_name="bob", action="request.approved", model="fraud-detector", version=3, request=11,
                     comment="approved")
        audit.record(actor_name="carol", action="deploy.succeeded", model="fraud-detector", version=3, request=11,
                     before={"alias": "champion", "version": 2}, after={"alias": "champion", "version": 3})
        audit.record(actor_name="system:sync", action="registry.drift", model="fraud-detector", version=2,
                     before={"stage": "Staging"}, after={"stage": "Archived"}, comment="changed in MLflow")
        audit.record(actor_name="alice", action="registry.synced", model="other-model", comment="unrelated")
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    browser_login(page, live_server, "aud")
    page.get_by_role("link", name="Audit trail").click()
    page.get_by_label("Text").fill("holdout")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table[aria-label='Audit events'] tbody tr")
    assert rows.count() == 1
    assert "Promote after holdout review" in rows.first.inner_text()
    screenshot("audit-search")
    page.get_by_label("Text").fill("champion")  # a word only in the recorded details of the deploy
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("deploy.succeeded")
    rows.first.get_by_role("link", name="fraud-detector").click()
    # The search page stays on screen until the report arrives: wait for the report's heading.
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit report: fraud-detector")
    report = page.get_by_role("article", name="Audit report")
    assert "Request #11" in report.inner_text()
    assert "changed in MLflow" in report.inner_text()
    assert report.get_by_test_id("head-hash").inner_text() == audit.chain_head()[1]
    summary = report.locator("#report-summary")
    expect(summary).to_contain_text("1 request")
    expect(summary).to_contain_text("1 deploy")
    expect(summary).to_contain_text("1 drift")
    expect(report.locator("#report-people")).to_contain_text("Deployed by carol")
    events = report.locator("table.report-events")
    expect(events).to_contain_text("carol deployed v3 (request #11): alias champion → champion; version 2 → 3")
    assert events.locator("details").first.get_attribute("open") is None  # the detail is folded away
    # The one thing an auditor may do here: verify the chain (and that check is itself recorded).
    expect(report.locator("#chain-status")).to_contain_text("never verified")
    report.get_by_role("button", name="Verify chain now").click()
    expect(page.locator(".messages")).to_contain_text("Audit chain intact: 6 events verified")
    expect(page.get_by_role("article", name="Audit report").locator("#chain-status")).to_contain_text("intact")
    assert audit.chain_head()[0] == 7  # 5 recorded here, the sign-in, and the audit.verified
    page.emulate_media(media="print")
    assert not page.get_by_role("link", name="CSV").is_visible()
    assert not page.get_by_role("button", name="Verify chain now").is_visible()
    page.emulate_media(media="screen")
    screenshot("audit-report")
    assert not [e for e in errors if "Content Security Policy" in e]
