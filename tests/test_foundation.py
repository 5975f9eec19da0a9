"""The first brick: login, home page with roles, security headers, role groups, throttling."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from tests.conftest import TEST_PASSWORD, make_user


@pytest.mark.django_db
def test_role_groups_exist_after_migrations():
    assert set(Group.objects.values_list("name", flat=True)) >= {"data_scientist", "ml_engineer", "ops", "auditor"}


@pytest.mark.parametrize("role", ["data_scientist", "ml_engineer", "ops", "auditor"])
@pytest.mark.django_db
def test_home_greets_user_with_role(client, role):
    user = make_user(f"user-{role}", role)
    client.force_login(user)
    response = client.get(reverse("home"))
    assert response.status_code == 200
    body = response.content.decode()
    assert f"Welcome, user-{role}" in body
    assert f'<span class="badge role">{role}</span>' in body


@pytest.mark.django_db
def test_every_page_has_a_strict_content_security_policy(client):
    response = client.get(reverse("login"))
    policy = response["Content-Security-Policy"]
    directives = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}
    assert directives["script-src"] == ["'self'"]
    assert "'unsafe-inline'" not in directives["script-src"]
    assert "'unsafe-eval'" not in directives["script-src"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert response["X-Frame-Options"] == "DENY"


@pytest.mark.django_db
def test_no_inline_script_in_pages(client):
    client.force_login(make_user("reader", "auditor"))
    for url in (reverse("login"), reverse("home")):
        body = client.get(url).content.decode()
        for chunk in body.split("<script")[1:]:
            tag = chunk.split(">", 1)[0]
            assert "src=" in tag or 'type="application/json"' in tag, f"inline script on {url}: {tag}"


@pytest.mark.django_db
def test_login_with_wrong_password_shows_error_and_locks_out_after_repeats(client, settings):
    make_user("victim", "ops")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post(reverse("login"), {"username": "victim", "password": "nope"})
        assert response.status_code == 200
        assert "did not match" in response.content.decode()
    response = client.post(reverse("login"), {"username": "victim", "password": "nope"})
    assert response.status_code == 429
    # Even the right password is refused while locked out.
    response = client.post(reverse("login"), {"username": "victim", "password": TEST_PASSWORD})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_login_and_logout_with_the_real_password_hasher(client, real_password_hashers):
    user = make_user("someone", "auditor")
    assert user.password.startswith("pbkdf2_sha256$")  # what the project stores, not the suite's cheap hash
    response = client.post(reverse("login"), {"username": "someone", "password": TEST_PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 200
    # Logout is a POST with CSRF (GET is refused by Django 5).
    assert client.get(reverse("logout")).status_code == 405
    client.post(reverse("logout"))
    assert client.get(reverse("home")).status_code == 302


@pytest.mark.django_db
def test_csrf_is_enforced_on_login(db):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    make_user("csrfuser", "auditor")
    response = strict.post(reverse("login"), {"username": "csrfuser", "password": TEST_PASSWORD})
    assert response.status_code == 403


@pytest.mark.django_db
def test_unknown_url_is_a_404_page_without_traceback(client):
    client.force_login(make_user("lost", "auditor"))
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert "Traceback" not in response.content.decode()
    assert "Not found" in response.content.decode()


@pytest.mark.django_db
def test_vendored_scripts_are_served_from_static(client):
    for path in ("/static/vendor/plotly-scatter-bar.min.js", "/static/vendor/htmx.min.js"):
        response = client.get(path)
        assert response.status_code == 200, path
        first = b"".join(response.streaming_content)[:200] if response.streaming else response.content[:200]
        assert first.strip(), path
