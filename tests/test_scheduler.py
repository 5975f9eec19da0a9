"""Periodic jobs: rows in the database, "due" claimed by a conditional update, runs recorded by the
worker; and the demo's promise: a scheduler and a worker keep the mirror following MLflow with no
command run by anyone."""

import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from registry_ui.mirror.models import ModelAlias, RegisteredModel, SyncState
from registry_ui.scheduler import loop
from registry_ui.scheduler.jobs import load_jobs, registered_jobs
from registry_ui.scheduler.models import JobOutcome, ScheduledJob
from registry_ui.scheduler.runner import run_periodic_job
from tests.fixtures_tasks import ROOT, child_env, wait_until

pytestmark = pytest.mark.django_db


def _runs(name=None):
    runs = DBTaskResult.objects.filter(task_path=run_periodic_job.module_path)
    return [r for r in runs if name is None or r.args_kwargs["args"] == [name]]


def test_every_configured_job_gets_a_row_and_is_enqueued_once_when_due():
    loop.ensure_rows()
    assert set(ScheduledJob.objects.values_list("name", flat=True)) == {
        "mirror.sync", "audit.checkpoint", "workflow.resolve_outbox", "notify.sweep_outbox",
        "workflow.recertification_remind", "workflow.retention_propose", "workers.heartbeat",
        "risk.findings_remind"}

    first = loop.tick()
    again = loop.tick()  # not due yet, and the previous runs are still queued

    assert set(first) == set(registered_jobs()) and again == {}
    assert len(_runs()) == len(registered_jobs())
    row = ScheduledJob.objects.get(name="mirror.sync")
    assert row.last_task_id == first["mirror.sync"]
    assert row.next_run_at > timezone.now()


def test_two_schedulers_that_read_the_same_due_run_enqueue_it_once():
    loop.ensure_rows()
    job = registered_jobs()["mirror.sync"]
    seen_by_a = ScheduledJob.objects.get(name=job.name)
    seen_by_b = ScheduledJob.objects.get(name=job.name)
    now = timezone.now()

    assert loop.claim_and_enqueue(job, seen_by_a, now) is not None
    assert loop.claim_and_enqueue(job, seen_by_b, now) is None
    assert len(_runs("mirror.sync")) == 1


def test_a_run_lost_with_its_worker_does_not_block_the_job_for_ever(settings):
    settings.SCHEDULER_STUCK_SECONDS = 60
    loop.ensure_rows()
    loop.tick()
    long_ago = timezone.now() - timedelta(seconds=120)
    ScheduledJob.objects.update(next_run_at=long_ago, last_enqueued_at=long_ago)  # still "queued", 2 min ago
    assert set(loop.tick()) == set(registered_jobs())


def test_a_shorter_interval_takes_effect_at_the_next_start(settings):
    loop.ensure_rows()
    ScheduledJob.objects.filter(name="mirror.sync").update(next_run_at=timezone.now() + timedelta(hours=1))
    settings.REGISTRY_SYNC_INTERVAL = 2
    loop.ensure_rows(load_jobs())
    row = ScheduledJob.objects.get(name="mirror.sync")
    assert row.interval_seconds == 2 and row.next_run_at <= timezone.now() + timedelta(seconds=2)


@pytest.mark.parametrize(("jobs", "message"), [
    (["registry_ui.mirror.tasks.NOPE"], "does not import"),
    (["registry_ui.mirror.tasks.sync_registry_task"], "is not a PeriodicJob"),
    ("registry_ui.mirror.tasks.SYNC_JOB", "list of dotted paths"),
    (["registry_ui.mirror.tasks.SYNC_JOB", "registry_ui.mirror.tasks.SYNC_JOB"], "two jobs are named"),
])
def test_a_bad_job_list_stops_start_up(settings, jobs, message):
    settings.SCHEDULED_JOBS = jobs
    with pytest.raises(ImproperlyConfigured, match=message):
        load_jobs()


def test_a_bad_interval_stops_start_up(settings):
    settings.REGISTRY_SYNC_INTERVAL = 0
    with pytest.raises(ImproperlyConfigured, match="REGISTRY_SYNC_INTERVAL"):
        load_jobs()


@pytest.mark.mlflow
def test_a_run_records_its_outcome_and_a_held_lock_is_recorded_as_skipped(use_mlflow_server, mlflow_factory):
    loop.ensure_rows()
    mlflow_factory.model()
    run_periodic_job.call("mirror.sync")
    row = ScheduledJob.objects.get(name="mirror.sync")
    assert row.last_outcome == JobOutcome.SUCCEEDED and row.last_duration_seconds > 0
    assert "models" in row.last_detail

    SyncState.objects.filter(pk=1).update(lock_owner="someone else", locked_until=timezone.now() + timedelta(hours=1))
    result = run_periodic_job.call("mirror.sync")  # returns at once: it does not wait for the lock
    row.refresh_from_db()
    assert result["outcome"] == "busy" and row.last_outcome == JobOutcome.SKIPPED and "lock" in row.last_detail


def test_a_failing_run_is_recorded_as_failed_and_raises(settings):
    settings.MLFLOW_TRACKING_URI = "http://127.0.0.1:9"
    settings.MLFLOW_SYNC_RETRIES = 0
    loop.ensure_rows()
    with pytest.raises(Exception, match="MLflow unavailable"):
        run_periodic_job.call("mirror.sync")
    row = ScheduledJob.objects.get(name="mirror.sync")
    assert row.last_outcome == JobOutcome.FAILED and "MLflow unavailable" in row.last_detail


class Scheduler:
    def __init__(self, tmp_path, **env):
        self.log = (tmp_path / "scheduler.log").open("wb")
        self.process = subprocess.Popen([sys.executable, "manage.py", "scheduler", "--tick", "0.2"], cwd=ROOT,
                                        env=child_env(**env), stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=15)
        self.log.close()
        return self.process.returncode


@pytest.mark.mlflow
@pytest.mark.django_db(transaction=True)
def test_the_mirror_follows_mlflow_within_the_interval_with_no_command_run(mlflow_server, mlflow_factory,
                                                                          start_worker, tmp_path):
    env = {"MLFLOW_TRACKING_URI": mlflow_server.url, "REGISTRY_SYNC_INTERVAL": "2"}
    start_worker(**env)
    scheduler = Scheduler(tmp_path, **env)
    try:
        name = mlflow_factory.model()
        wait_until(lambda: RegisteredModel.objects.filter(name=name).exists(), timeout=90,
                   what="the scheduled sync to mirror a model created in MLflow")
        version = mlflow_factory.version(name, with_run=False)
        mlflow_factory.alias(name, "champion", version)  # an alias: no timestamp moves in MLflow
        wait_until(lambda: ModelAlias.objects.filter(model__name=name, alias="champion", version=version).exists(),
                   timeout=90, what="the scheduled sync to mirror an alias set in MLflow")
    finally:
        assert scheduler.stop() == 0  # SIGTERM: a clean exit
    row = ScheduledJob.objects.get(name="mirror.sync")
    assert row.interval_seconds == 2 and row.last_outcome == JobOutcome.SUCCEEDED


def test_the_command_once_enqueues_what_is_due_and_refuses_a_bad_tick():
    from django.core.management import CommandError, call_command

    call_command("scheduler", "--once", verbosity=0)
    assert len(_runs()) == len(registered_jobs())
    with pytest.raises(CommandError, match="positive"):
        call_command("scheduler", "--tick", "0")
