"""The Procfile and the systemd units name commands that exist, with the same arguments."""

import re
import shlex

from django.core.management import get_commands
from django.utils.module_loading import import_string

from tests.fixtures_tasks import ROOT


def _procfile() -> dict[str, list[str]]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = shlex.split(command)
    return entries


def test_the_procfile_runs_web_worker_and_scheduler_with_existing_commands():
    entries = _procfile()
    assert set(entries) == {"web", "worker", "scheduler"}
    assert entries["web"][0] == "gunicorn"
    import_string(entries["web"][1].replace(".wsgi", ".wsgi.application"))
    for name in ("worker", "scheduler"):
        assert entries[name][:2] == ["python", "manage.py"] and entries[name][2] in get_commands()


def test_every_systemd_unit_starts_a_procfile_command():
    units = sorted((ROOT / "deploy" / "systemd").glob("*.service"))
    assert [u.name for u in units] == ["governance-scheduler.service", "governance-web.service",
                                       "governance-worker@.service"]
    commands = {e[2] if e[0] == "python" else e[0] for e in _procfile().values()}
    for unit in units:
        exec_start = re.search(r"^ExecStart=(.+)$", unit.read_text(), re.M).group(1).split()
        program = exec_start[0].rsplit("/", 1)[1]
        assert (exec_start[2] if program == "python" else program) in commands, unit.name
        assert "KillSignal=SIGTERM" in unit.read_text() and "TimeoutStopSec=" in unit.read_text()
