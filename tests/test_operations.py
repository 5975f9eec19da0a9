"""The Operations page: periodic jobs, queue depth, task failures, the mirror's age; "Sync now" and
"Sync this model" enqueue audited syncs that a real worker runs, and the page learns when they are done."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from governance.audit.models import AuditEvent
from registry_ui.mirror.models import ModelAlias, RegisteredModel
from registry_ui.mirror.sync import sync_model
from registry_ui.mirror.tasks import sync_model_task, sync_registry_task
from registry_ui.scheduler.models import JobOutcome, ScheduledJob
from tests.fixtures_tasks import wait_until

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


def _login(client, user):
    client.force_login(user)
    return client


def test_the_page_shows_jobs_queue_failures_and_the_mirror_age_oldest_first(client, ops_user):
    now = timezone.now()
    ScheduledJob.objects.create(name="mirror.sync", task_path=sync_registry_task.module_path, interval_seconds=2,
                                next_run_at=now + timedelta(seconds=2), last_started_at=now,
                                last_duration_seconds=1.25, last_outcome=JobOutcome.SKIPPED,
                                last_detail="another sync is running (lock held)")
    *_, running = [sync_registry_task.enqueue() for _ in range(3)]
    DBTaskResult.objects.filter(pk=running.id).update(status=TaskResultStatus.RUNNING)
    DBTaskResult.objects.create(task_path=sync_model_task.module_path, args_kwargs={"args": ["m"], "kwargs": {}},
                                status=TaskResultStatus.FAILED, run_after=now, finished_at=now, backend_name="default",
                                exception_class_path="registry_ui.mirror.sync.SyncError",
                                traceback="Traceback...\nregistry_ui.mirror.sync.SyncError: MLflow unavailable: boom\n")
    RegisteredModel.objects.create(name="fresh", synced_at=now)
    RegisteredModel.objects.create(name="stale", synced_at=now - timedelta(hours=3))

    response = _login(client, ops_user).get(reverse("operations:dashboard"))

    body = response.content.decode()
    assert response.status_code == 200
    assert 'data-job="mirror.sync"' in body and "1.25 s" in body and "skipped" in body and "lock held" in body
    assert '<dd data-queue="ready">2</dd>' in body and '<dd data-queue="running">1</dd>' in body
    assert "SyncError: MLflow unavailable: boom" in body
    assert body.index(">stale</a>") < body.index(">fresh</a>")
    # htmx asks for the live part only
    fragment = client.get(reverse("operations:dashboard"), headers=HX)
    assert "<h1>" not in fragment.content.decode() and "Periodic jobs" in fragment.content.decode()
    assert "HX-Request" in fragment["Vary"]


def test_sync_now_enqueues_a_full_sync_and_audits_who_asked(client, ops_user):
    response = _login(client, ops_user).post(reverse("operations:sync_now"), headers=HX)

    assert response.status_code == 200
    task = DBTaskResult.objects.get(task_path=sync_registry_task.module_path)
    event = AuditEvent.objects.get(action="sync.requested")
    assert event.actor_username == ops_user.username
    assert event.after == {"scope": "full", "task_id": str(task.id)}
    # the fragment polls the task's status until it is finished
    assert reverse("operations:task_status", args=[task.id]) in response.content.decode()


def test_sync_this_model_needs_a_known_model_and_valid_input(client, ops_user, outsider):
    RegisteredModel.objects.create(name="known")
    _login(client, ops_user)
    assert client.post(reverse("operations:sync_model"), {"model": "known"}).status_code == 302
    assert DBTaskResult.objects.get(task_path=sync_model_task.module_path).args_kwargs["args"] == ["known"]
    assert client.post(reverse("operations:sync_model"), {"model": "unknown"}).status_code == 404
    assert client.post(reverse("operations:sync_model"), {"model": "a\nb"}).status_code == 400
    assert client.post(reverse("operations:sync_model"), {}).status_code == 400
    assert AuditEvent.objects.filter(action="sync.requested").count() == 1
    _login(client, outsider)
    assert client.post(reverse("operations:sync_model"), {"model": "known"}).status_code == 403
    assert DBTaskResult.objects.count() == 1


@pytest.mark.mlflow
def test_the_model_page_offers_sync_this_model_to_ops_only(client, ops_user, scientist, use_mlflow_server,
                                                          mlflow_factory):
    name = mlflow_factory.model()
    sync_model(name)
    url = reverse("registry:model_detail", kwargs={"name": name})
    assert "Sync this model" in _login(client, ops_user).get(url).content.decode()
    assert "Sync this model" not in _login(client, scientist).get(url).content.decode()


@pytest.mark.mlflow
@pytest.mark.django_db(transaction=True)
def test_sync_this_model_is_run_by_the_worker_and_the_page_learns_it_is_done(client, ops_user, mlflow_server,
                                                                            mlflow_factory, start_worker, settings):
    settings.MLFLOW_TRACKING_URI = mlflow_server.url
    name = mlflow_factory.model()
    version = mlflow_factory.version(name, with_run=False)
    sync_model(name)
    mlflow_factory.alias(name, "champion", version)  # MLflow sends no webhook here: the mirror is behind
    start_worker(MLFLOW_TRACKING_URI=mlflow_server.url)
    _login(client, ops_user)

    response = client.post(reverse("operations:sync_model"), {"model": name}, headers=HX)
    task_id = DBTaskResult.objects.get(task_path=sync_model_task.module_path).id
    status_url = reverse("operations:task_status", args=[task_id])
    assert status_url in response.content.decode()

    done = wait_until(lambda: (r := client.get(status_url, headers=HX)).has_header("HX-Refresh") and r,
                      timeout=60, what="the status fragment to say the sync is done")
    assert 'data-status="SUCCESSFUL"' in done.content.decode()
    assert ModelAlias.objects.get(model__name=name, alias="champion").version == version
    page = client.get(reverse("registry:model_detail", kwargs={"name": name})).content.decode()
    assert "Sync done" in page  # the refreshed page carries the outcome


def test_a_completed_full_sync_confirms_the_models_it_did_not_have_to_write():
    from governance.operations.selectors import mirror_ages
    from registry_ui.mirror.models import SyncState

    now = timezone.now()
    RegisteredModel.objects.create(name="unchanged", synced_at=now - timedelta(days=2))
    RegisteredModel.objects.create(name="just-written", synced_at=now)
    SyncState.objects.update_or_create(pk=1, defaults={"last_report": {
        "scope": "full", "started_at": (now - timedelta(hours=1)).isoformat()}})

    ages = {row["name"]: row["age"] for row in mirror_ages()}

    assert 3500 < ages["unchanged"] < 3700  # read by the full sync an hour ago, not two days
    assert ages["just-written"] < 60
