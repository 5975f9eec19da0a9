"""Production settings pass Django's deployment checklist without a single warning."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

# The demo/settings/collectstatic run on a database of their own (or none): the PostgreSQL suite would
# repeat them unchanged, so CI runs them in the SQLite suite only (.ci/run).
pytestmark = pytest.mark.own_database

ROOT = Path(__file__).resolve().parent.parent


def run_manage(*args, env_extra: dict, tmp_path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update({"MGC_VAR_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"})
    env.update(env_extra)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING",
        env_extra={
            "DJANGO_DEBUG": "0",
            "DJANGO_HTTPS": "1",
            "DJANGO_SECRET_KEY": "x9" * 30 + "-not-a-real-key-just-long-and-random-enough",
            "DJANGO_ALLOWED_HOSTS": "governance.example.com",
        },
        tmp_path=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    result = run_manage("check", env_extra={"DJANGO_HTTPS": "1"}, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_several_nodes_refuse_to_start_without_a_shared_secret_key(tmp_path):
    result = run_manage("check", env_extra={"CONSOLE_NODES": "2"}, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set when CONSOLE_NODES is 2" in result.stderr
    assert not (tmp_path / "secret_key").exists()  # no node-local key was generated

    result = run_manage("check", env_extra={"CONSOLE_NODES": "2", "DJANGO_SECRET_KEY": "k" * 60}, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
