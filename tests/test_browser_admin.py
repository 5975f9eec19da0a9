"""The admin's main task in a real Chromium: from the branded admin home, grant one user rights on one
model with pickers (no username typed by hand); the grant is recorded in the audit trail."""

import pytest
from django.contrib.auth import get_user_model
from guardian.shortcuts import get_perms
from playwright.sync_api import expect

from governance.audit.models import AuditEvent
from tests.conftest import browser_login, make_user
from tests.fixtures_pages import MirrorFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_grants_a_model_to_a_user_with_pickers(page, live_server, screenshot):
    f = MirrorFactory()
    model = f.model("fraud-detector", description="Flags fraud")
    f.version(model)
    make_user("root", staff=True)
    make_user("dana")  # no role yet
    browser_login(page, live_server, "root")
    expect(page.locator("#roles")).to_contain_text("You are an administrator")
    assert "Ask an administrator" not in page.content()
    page.get_by_role("link", name="Admin", exact=True).click()
    expect(page.locator("#site-name")).to_have_text("Model Governance Console: administration")
    links = page.locator("#governance-links")
    expect(links.get_by_role("link", name="Audit trail")).to_have_attribute("href", "/audit/")
    links.get_by_role("link", name="Registered models").click()
    page.get_by_role("link", name="fraud-detector").click()
    page.get_by_role("link", name="Object permissions").click()
    page.locator("select[name=user]").select_option("dana")  # a picker, not a text field
    page.locator("input[name=submit_manage_user]").click()
    # Django's two-list picker: choose from the left list, move to the right one.
    page.locator("#id_permissions_from").select_option(["view_registeredmodel", "request_promotion"])
    page.locator("#id_permissions_add, #id_permissions_add_link").first.click()
    screenshot("admin-grant")
    page.locator("input#submit").click()
    expect(page.locator(".messagelist, .success").first).to_be_visible()
    dana = get_user_model().objects.get(username="dana")
    assert set(get_perms(dana, model)) == {"view_registeredmodel", "request_promotion"}
    granted = AuditEvent.objects.filter(action="permission.granted", actor_username="root")
    assert sorted(e.after["permission"] for e in granted) == ["request_promotion", "view_registeredmodel"]
