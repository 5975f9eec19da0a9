"""The hooks through which governance plugs into the registry fail closed: a visibility rule (or any
other hook) that does not import stops start-up with the setting's name, never shows every model."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from registry_ui import extensions

ROOT = Path(__file__).resolve().parent.parent


def start_with(tmp_path, overrides: str) -> subprocess.CompletedProcess:
    """Start Django (`manage.py check`) with the project's settings plus `overrides`."""
    settings_text = "from registry_ui.settings import *  # noqa\n" + textwrap.dedent(overrides)
    (tmp_path / "bad_settings.py").write_text(settings_text)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bad_settings",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]), "MGC_VAR_DIR": str(tmp_path / "var")}
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), "check"], env=env, capture_output=True,
                          text=True, timeout=120, cwd=ROOT)


@pytest.mark.parametrize("overrides,named", [
    ('REGISTRY_VISIBILITY = "governance.access.no_such_rule"\n', "REGISTRY_VISIBILITY"),
    ('REGISTRY_VISIBILITY = "no_such_package.visible"\n', "REGISTRY_VISIBILITY"),
    ('REGISTRY_VISIBILITY = ""\n', "REGISTRY_VISIBILITY"),
    ('del REGISTRY_VISIBILITY\n', "REGISTRY_VISIBILITY"),
    ('REGISTRY_SYNC_REPORT_HANDLERS = ["governance.workflow.drift.gone"]\n', "REGISTRY_SYNC_REPORT_HANDLERS"),
    ('REGISTRY_PANEL_PROVIDERS = ["governance.workflow.panels.gone"]\n', "REGISTRY_PANEL_PROVIDERS"),
])
@pytest.mark.own_database  # a `manage.py check` of its own, on a var/ of its own
def test_a_hook_that_does_not_import_stops_start_up_naming_the_setting(tmp_path, overrides, named):
    result = start_with(tmp_path, overrides)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and named in result.stderr


@pytest.mark.own_database
def test_the_project_settings_start(tmp_path):
    result = start_with(tmp_path, "")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_a_changed_visibility_setting_is_checked_when_first_used(settings, django_user_model, db):
    settings.REGISTRY_VISIBILITY = "governance.access.no_such_rule"
    user = django_user_model(username="someone", is_active=True)
    with pytest.raises(ImproperlyConfigured, match="REGISTRY_VISIBILITY"):
        extensions.visible_models(user, django_user_model.objects.all())


def test_anonymous_users_see_nothing_whatever_the_rule(settings, django_user_model, db):
    from django.contrib.auth.models import AnonymousUser

    assert list(extensions.visible_models(AnonymousUser(), django_user_model.objects.all())) == []
