"""Ops in a real Chromium: "Sync this model" on a model page and "Sync now" on the Operations page are
run by a real worker, and the page (htmx polling under the strict CSP) shows the outcome when done."""

import pytest
from playwright.sync_api import expect

from registry_ui.mirror.sync import sync_model
from tests.conftest import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.mlflow]


def test_ops_syncs_a_model_and_the_registry_from_the_browser(page, live_server, ops_user, mlflow_server,
                                                            mlflow_factory, start_worker, settings, screenshot):
    settings.MLFLOW_TRACKING_URI = mlflow_server.url
    name = mlflow_factory.model()
    version = mlflow_factory.version(name, with_run=False)
    sync_model(name)
    mlflow_factory.alias(name, "challenger", version)  # no webhook: the mirror does not know yet
    start_worker(MLFLOW_TRACKING_URI=mlflow_server.url)

    browser_login(page, live_server, ops_user.username)
    page.goto(f"{live_server.url}/registry/models/{name}/")
    expect(page.locator("main")).not_to_contain_text("challenger")
    page.get_by_role("button", name="Sync this model").click()
    expect(page.locator(".messages")).to_contain_text("Sync done", timeout=60_000)  # the page reloaded
    expect(page.locator("main")).to_contain_text("challenger")
    screenshot("operations-1-model-synced")

    page.get_by_role("link", name="Operations").click()
    expect(page.locator("h1")).to_have_text("Operations")
    expect(page.locator("#ops-ages")).to_be_visible()
    page.get_by_role("button", name="Sync now").click()
    expect(page.locator(".messages")).to_contain_text("Sync done", timeout=120_000)
    screenshot("operations-2-synced")
