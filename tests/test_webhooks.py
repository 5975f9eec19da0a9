"""POST /hooks/mlflow/: signature, staleness, replay, 202 and an enqueued targeted sync; and a real MLflow
delivering to the live server, whose syncs a real task worker runs."""

import io
import json
import time
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from registry_ui.mirror.models import ModelAlias, ModelVersion, RegisteredModel, WebhookDelivery
from registry_ui.mirror.tasks import sync_model_task
from registry_ui.mirror.webhooks import signature
from tests.fixtures_tasks import wait_until

SECRET = "whsec-test-0123456789"


def post(client, payload, *, secret=SECRET, delivery_id=None, timestamp=None, sig=None):
    body = json.dumps(payload).encode()
    delivery_id = delivery_id or str(uuid.uuid4())
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    headers = {
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": timestamp,
        "X-MLflow-Signature": sig or signature(secret, delivery_id, timestamp, body),
    }
    return client.post(reverse("hooks:mlflow"), data=body, content_type="application/json",
                       headers=headers)


def payload(name, entity="model_version_alias", action="created", **data):
    return {"entity": entity, "action": action, "timestamp": "2026-01-01T00:00:00+00:00",
            "data": {"name": name, **data}}


@pytest.fixture
def hook_settings(settings, use_mlflow_server):
    settings.MLFLOW_WEBHOOK_SECRET = SECRET
    return settings


def _sync_tasks():
    return DBTaskResult.objects.filter(task_path=sync_model_task.module_path)


@pytest.mark.mlflow
@pytest.mark.django_db
def test_good_signature_answers_202_and_enqueues_a_targeted_sync(client, hook_settings, mlflow_factory):
    name = mlflow_factory.model()
    v1 = mlflow_factory.version(name, with_run=False)
    mlflow_factory.alias(name, "champion", v1)

    response = post(client, payload(name, alias="champion", version=str(v1)))

    assert response.status_code == 202, response.content
    assert response.json()["detail"] == "sync enqueued"
    task = _sync_tasks().get()
    assert str(task.id) == response.json()["task_id"]
    assert task.status == TaskResultStatus.READY and task.args_kwargs == {"args": [name], "kwargs": {}}
    assert not RegisteredModel.objects.filter(name=name).exists()  # MLflow's delivery did not wait on a sync
    assert WebhookDelivery.objects.filter(model_name=name, event="model_version_alias.created").count() == 1

    sync_model_task.call(name)  # what the worker runs
    assert ModelAlias.objects.get(model__name=name, alias="champion").version == v1


@pytest.mark.django_db
def test_bad_signature_is_401_and_syncs_nothing(client, hook_settings):
    response = post(client, payload("anything"), secret="not-the-secret")
    assert response.status_code == 401 and response.json() == {"detail": "bad signature"}
    response = post(client, payload("anything"), sig="v1,AAAA")
    assert response.status_code == 401
    missing = client.post(reverse("hooks:mlflow"), data="{}", content_type="application/json")
    assert missing.status_code == 401
    assert not WebhookDelivery.objects.exists() and not RegisteredModel.objects.exists()


@pytest.mark.django_db
def test_a_tampered_body_fails_the_signature(client, hook_settings):
    delivery_id, ts = "d-1", str(int(time.time()))
    good = signature(SECRET, delivery_id, ts, json.dumps(payload("a")).encode())
    response = post(client, payload("b"), delivery_id=delivery_id, timestamp=ts, sig=good)
    assert response.status_code == 401


@pytest.mark.django_db
def test_stale_timestamp_is_rejected_even_when_signed(client, hook_settings):
    response = post(client, payload("anything"), timestamp=int(time.time()) - 3600)
    assert response.status_code == 400 and response.json() == {"detail": "stale timestamp"}
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_a_replayed_delivery_is_ignored(client, hook_settings, django_assert_max_num_queries):
    first = post(client, payload("replayed", "registered_model"), delivery_id="same-id")
    assert first.status_code == 202

    with django_assert_max_num_queries(4):
        again = post(client, payload("replayed", "registered_model"), delivery_id="same-id")

    assert again.status_code == 200 and again.json()["detail"] == "duplicate delivery ignored"
    assert _sync_tasks().count() == 1
    assert WebhookDelivery.objects.filter(delivery_id="same-id").count() == 1


@pytest.mark.django_db
def test_unconfigured_secret_refuses_everything(client, settings):
    settings.MLFLOW_WEBHOOK_SECRET = ""
    assert post(client, payload("x")).status_code == 503
    assert client.get(reverse("hooks:mlflow")).status_code == 405


@pytest.mark.django_db
def test_a_queue_that_is_down_answers_503_and_forgets_the_delivery_so_a_retry_counts(client, settings):
    settings.MLFLOW_WEBHOOK_SECRET = SECRET
    # The RQ backend on a Redis address where nothing listens: the enqueue fails.
    settings.RQ_QUEUES = {"default": {"URL": "redis://127.0.0.1:9/0"}}
    settings.TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
    response = post(client, payload("x"), delivery_id="retry-me")
    assert response.status_code == 503 and response.json() == {"detail": "task queue unavailable, retry later"}
    assert not WebhookDelivery.objects.filter(delivery_id="retry-me").exists()


@pytest.mark.django_db(transaction=True)
def test_a_sync_that_fails_in_the_worker_is_a_failed_task_not_a_failed_delivery(client, settings, start_worker):
    settings.MLFLOW_WEBHOOK_SECRET = SECRET
    start_worker(MLFLOW_TRACKING_URI="http://127.0.0.1:9", MLFLOW_SYNC_RETRIES="0", MLFLOW_SYNC_TIMEOUT="2")

    response = post(client, payload("unreachable"))

    assert response.status_code == 202
    task = wait_until(lambda: _sync_tasks().filter(status=TaskResultStatus.FAILED).first(),
                      what="the worker to fail the sync")
    assert "MLflow unavailable" in task.traceback


def test_register_command_needs_a_secret(settings):
    settings.MLFLOW_WEBHOOK_SECRET = ""
    with pytest.raises(CommandError, match="MLFLOW_WEBHOOK_SECRET"):
        call_command("register_mlflow_webhook", "http://127.0.0.1:1/hooks/mlflow/")


@pytest.fixture
def webhook_cleanup(mlflow_server):
    """The session's MLflow server keeps no webhook once the test is over: later tests' model events
    must not be delivered to a live server that is gone."""
    from tests.conftest import MlflowFactory

    client = MlflowFactory(mlflow_server.url).client
    before = {w.webhook_id for w in client.list_webhooks()}
    yield
    for hook in client.list_webhooks():
        if hook.webhook_id not in before:
            client.delete_webhook(hook.webhook_id)


@pytest.mark.mlflow
@pytest.mark.django_db(transaction=True)
def test_real_mlflow_delivers_signed_events_to_the_live_server(mlflow_server, webhook_cleanup, live_server, settings,
                                                              start_worker):
    from tests.conftest import MlflowFactory

    start_worker(MLFLOW_TRACKING_URI=mlflow_server.url)
    settings.MLFLOW_TRACKING_URI = mlflow_server.url
    settings.MLFLOW_WEBHOOK_SECRET = SECRET
    hooks_before = len(MlflowFactory(mlflow_server.url).client.list_webhooks())
    out = io.StringIO()
    call_command("register_mlflow_webhook", f"{live_server.url}/hooks/mlflow/", stdout=out)
    assert out.getvalue().startswith("Registered webhook")
    call_command("register_mlflow_webhook", f"{live_server.url}/hooks/mlflow/", stdout=out)  # idempotent
    assert "Updated webhook" in out.getvalue()
    assert len(MlflowFactory(mlflow_server.url).client.list_webhooks()) == hooks_before + 1

    factory = MlflowFactory(mlflow_server.url)
    name = factory.model(factory.unique("hooked model ü"))
    version = factory.version(name, with_run=False)
    factory.alias(name, "champion", version)

    # The receiver answered 202 and enqueued; the worker process re-read the model from MLflow.
    wait_until(lambda: ModelAlias.objects.filter(model__name=name, alias="champion", version=version).exists(),
               timeout=60, what="the worker to sync the alias MLflow announced")
    assert ModelVersion.objects.filter(model__name=name, version=version).exists()
    events = set(WebhookDelivery.objects.filter(model_name=name).values_list("event", flat=True))
    assert {"registered_model.created", "model_version.created", "model_version_alias.created"} <= events
