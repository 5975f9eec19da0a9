"""The README's larger installation: TASKS_BACKEND=rq puts the queue in Redis (django-tasks-rq) and
`manage.py rqworker --job-class django_tasks_rq.Job` runs the project's tasks. Needs the Redis at
REDIS_TEST_URL (default redis://127.0.0.1:6379/11); the test fails, it does not skip, when Redis is down."""

import os
import re
import subprocess
import sys

import pytest
from django.urls import reverse
from django_tasks import TaskResultStatus, task_backends

from registry_ui.mirror.models import RegisteredModel
from registry_ui.mirror.tasks import sync_model_task
from tests.fixtures_tasks import ROOT, child_env
from tests.tasks_for_tests import fail

REDIS_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/11")


@pytest.fixture
def rq_backend(settings):
    """This process enqueues into Redis, exactly as the project's settings do with TASKS_BACKEND=rq."""
    import django_rq

    settings.RQ_QUEUES = {"default": {"URL": REDIS_URL}}
    settings.TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
    queue = django_rq.get_queue("default")
    queue.empty()  # what an earlier, interrupted run may have left
    yield task_backends["default"]
    queue.empty()


@pytest.mark.mlflow
@pytest.mark.django_db(transaction=True)
def test_a_real_rq_worker_runs_the_targeted_sync(rq_backend, mlflow_server, mlflow_factory, client, ops_user):
    name = mlflow_factory.model()
    result = sync_model_task.enqueue(name)
    failing = fail.enqueue("the model did not load")
    assert type(rq_backend).__name__ == "RQBackend" and result.status == TaskResultStatus.READY
    client.force_login(ops_user)
    sync_now = client.post(reverse("operations:sync_now"), headers={"HX-Request": "true"})
    status_url = re.search(r'hx-get="([^"]+)"', sync_now.content.decode()).group(1)  # an RQ id, not a UUID
    page = client.get(reverse("operations:dashboard")).content.decode()
    assert '<dd data-queue="ready">3</dd>' in page  # the Operations page reads the queue from Redis

    # --burst: run what is queued, then exit
    worker = subprocess.run(
        [sys.executable, "manage.py", "rqworker", "--burst", "--job-class", "django_tasks_rq.Job", "default"],
        cwd=ROOT, env=child_env(TASKS_BACKEND="rq", REDIS_URL=REDIS_URL, MLFLOW_TRACKING_URI=mlflow_server.url),
        capture_output=True, text=True, timeout=180)

    assert worker.returncode == 0, worker.stdout + worker.stderr
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL, result.errors
    assert result.return_value["outcome"] == "synced"
    assert RegisteredModel.objects.filter(name=name).exists()
    failing.refresh()
    assert failing.status == TaskResultStatus.FAILED
    page = client.get(reverse("operations:dashboard")).content.decode()
    assert '<dd data-queue="ready">0</dd>' in page and "RuntimeError: the model did not load" in page
    assert 'data-status="SUCCESSFUL"' in client.get(status_url, headers={"HX-Request": "true"}).content.decode()
