"""Each role signs in through a real Chromium and is greeted with its role."""

import pytest

from tests.conftest import browser_login, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("role", ["data_scientist", "ml_engineer", "ops", "auditor"])
def test_each_role_logs_in_and_sees_its_role(page, live_server, screenshot, role):
    make_user(f"u-{role}", role)
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    browser_login(page, live_server, f"u-{role}")
    assert page.get_by_role("heading", level=1).inner_text() == f"Welcome, u-{role}"
    assert role in page.locator("#roles").inner_text()
    if role == "data_scientist":
        screenshot("home")
    # The CSP blocks nothing of ours (a violation is reported as a console error).
    assert not [e for e in errors if "Content Security Policy" in e]
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{live_server.url}/accounts/login/")


def test_wrong_password_is_refused_in_the_browser(page, live_server):
    make_user("someone", "ops")
    browser_login(page, live_server, "someone", "wrong-password")
    assert page.get_by_role("alert").inner_text().startswith("Your username and password did not match")
