"""/healthz and /readyz: anonymous JSON probes; /readyz is 503 with the failing check named, never its
secret-bearing detail."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.urls import reverse
from django.utils import timezone

from registry_ui.scheduler import leadership
from registry_ui.scheduler.models import Heartbeat, NodeKind

pytestmark = pytest.mark.django_db


def _ready(client):
    response = client.get(reverse("readyz"))
    assert response["Content-Type"] == "application/json"
    return response.status_code, response.json()


def test_healthz_answers_anonymous_callers_without_touching_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get(reverse("healthz"))
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.mlflow
def test_readyz_is_ready_with_the_database_migrated_and_mlflow_answering(client, use_mlflow_server):
    status, body = _ready(client)
    assert status == 200 and body["status"] == "ready"
    assert body["checks"]["database"]["ok"] and body["checks"]["mlflow"]["ok"]
    assert "redis" not in body["checks"]  # not configured: not checked
    assert body["checks"]["workers"] == {"ok": True, "required": False, "age_seconds": None}


def test_readyz_is_503_while_a_migration_is_unapplied(client, settings):
    settings.READY_REQUIRE_MLFLOW = False
    applied = MigrationRecorder(connection).migration_qs.filter(app="registry_ui")
    applied.filter(pk=applied.order_by("-name").values("pk")[:1]).delete()  # as if the newest were not run
    status, body = _ready(client)
    assert status == 503 and body["checks"]["database"] == {"ok": False, "required": True,
                                                            "error": "1 unapplied migration(s)"}


def test_readyz_names_a_dead_mlflow_without_revealing_its_address(client, settings):
    settings.MLFLOW_TRACKING_URI = "http://operator:s3cret-token@127.0.0.1:9"
    settings.READY_MLFLOW_TIMEOUT = 0.5
    status, body = _ready(client)
    assert status == 503 and body["checks"]["mlflow"] == {"ok": False, "required": True, "error": "unavailable"}
    text = str(body)
    assert "s3cret" not in text and "127.0.0.1" not in text and "operator" not in text

    settings.READY_REQUIRE_MLFLOW = False  # pages are served from the mirror: optional
    status, body = _ready(client)
    assert status == 200 and body["checks"]["mlflow"]["ok"] is False


def test_readyz_checks_redis_when_a_redis_cache_is_configured(client, settings):
    settings.READY_REQUIRE_MLFLOW = False
    settings.READY_REDIS_TIMEOUT = 0.5
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://:hunter2@127.0.0.1:9/0"}}
    status, body = _ready(client)
    assert status == 503 and body["checks"]["redis"] == {"ok": False, "required": True, "error": "unavailable"}
    assert "hunter2" not in str(body)


def test_readyz_requires_fresh_worker_and_scheduler_heartbeats_when_configured(client, settings):
    settings.READY_REQUIRE_MLFLOW = False
    settings.READY_MAX_WORKER_AGE = 60
    settings.READY_MAX_SCHEDULER_AGE = 60
    status, body = _ready(client)
    assert status == 503
    assert body["checks"]["workers"]["error"] == "no worker heartbeat"
    assert body["checks"]["scheduler"]["error"] == "no scheduler leader heartbeat"

    leadership.beat(node_id="worker:w1", kind=NodeKind.WORKER)
    leadership.beat(node_id="scheduler:a", kind=NodeKind.SCHEDULER)
    assert leadership.hold(leadership.SCHEDULER_LEASE, holder="scheduler:a", seconds=30)
    status, body = _ready(client)
    assert status == 200 and body["checks"]["scheduler"]["leader"] is True

    Heartbeat.objects.filter(node_id="worker:w1").update(last_beat_at=timezone.now() - timedelta(minutes=5))
    status, body = _ready(client)
    assert status == 503 and body["checks"]["workers"]["error"] == "worker heartbeat is 300 s old"


def test_probes_refuse_writes(client):
    assert client.post(reverse("healthz")).status_code == 405
    assert client.post(reverse("readyz")).status_code == 405
