"""Two web nodes (real gunicorn processes) on one database and one Redis cache (CACHE_URL): a session made on
A is a session on B, the API's throttle counts the calls of both, and each node's process beats its own
heartbeat. Needs the Redis at REDIS_TEST_URL (default redis://127.0.0.1:6379/11); the test fails, it does not
skip, when Redis is down. Keys carry a prefix of this test's own, removed afterwards."""

import os
import re
import uuid

import pytest
import redis
import requests

from benchmarks.servers import wsgi_server
from registry_ui.scheduler.models import Heartbeat, NodeKind
from tests.conftest import TEST_PASSWORD
from tests.fixtures_tasks import child_env

REDIS_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/11")
THROTTLE = 6  # API calls a minute


@pytest.fixture
def two_nodes(transactional_db, tmp_path):
    prefix = f"test-nodes-{uuid.uuid4().hex[:8]}"
    nodes = []
    for name in ("a", "b"):
        workdir = tmp_path / name
        workdir.mkdir()
        env = child_env(DJANGO_SECRET_KEY="shared-" + "k" * 50, CONSOLE_NODES="2", CONSOLE_NODE_ID=f"node-{name}",
                        CACHE_URL=REDIS_URL, CACHE_KEY_PREFIX=prefix, API_THROTTLE_RATE=f"{THROTTLE}/min",
                        WEB_HEARTBEAT_INTERVAL="30")
        nodes.append(wsgi_server(env, workdir, threads=2).start())
    yield nodes
    for node in nodes:
        node.stop()
    store = redis.Redis.from_url(REDIS_URL)
    for key in store.scan_iter(f"{prefix}:*"):
        store.delete(key)


def _sign_in(session: requests.Session, base: str) -> None:
    form = session.get(f"{base}/accounts/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    answer = session.post(f"{base}/accounts/login/", timeout=30, allow_redirects=False,
                          data={"csrfmiddlewaretoken": token, "username": "ops", "password": TEST_PASSWORD})
    assert answer.status_code == 302, answer.text[:500]


def test_two_nodes_share_sessions_and_the_api_throttle_and_each_beats(two_nodes, ops_user):
    a, b = (node.url for node in two_nodes)
    browser = requests.Session()  # one cookie jar: the load balancer sends it to either node
    _sign_in(browser, a)
    on_b = browser.get(f"{b}/registry/", timeout=30, allow_redirects=False)
    assert on_b.status_code == 200 and "ops" in on_b.text  # signed in on B with A's session

    answers = [browser.get(f"{(a, b)[i % 2]}/api/v1/models/", timeout=30).status_code for i in range(THROTTLE + 2)]
    # One count for both nodes: the seventh call is refused, whichever node gets it (a cache per node
    # would let each node serve six).
    assert answers == [200] * THROTTLE + [429, 429]

    beats = {h.node_id.rsplit(":", 1)[0]: h for h in Heartbeat.objects.filter(kind=NodeKind.WEB)}
    assert set(beats) == {"web:node-a", "web:node-b"}
    assert beats["web:node-a"].pid != beats["web:node-b"].pid  # each a process of its own node
    ops_page = browser.get(f"{a}/operations/", timeout=30).text
    assert 'data-node="web:node-a:' in ops_page and 'data-node="web:node-b:' in ops_page


def test_check_deploy_warns_when_several_nodes_keep_the_cache_or_checkpoints_to_themselves(settings):
    from registry_ui.checks import shared_state_of_several_nodes

    assert shared_state_of_several_nodes() == []  # one node: nothing to share
    settings.CONSOLE_NODES = 2
    assert [w.id for w in shared_state_of_several_nodes()] == ["registry_ui.W001", "registry_ui.W002"]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    settings.STORAGES = {**settings.STORAGES,
                         "audit_checkpoints": {"BACKEND": "governance.audit.s3.CheckpointS3Storage"}}
    assert shared_state_of_several_nodes() == []
