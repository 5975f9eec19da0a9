"""SIGTERM while work is in flight: a gunicorn web node answers the request it is serving, then exits
0; a task worker finishes the task it runs, then exits 0 (docs/operations.md, "Stop")."""

import os
import signal
import socket
import threading
import time

import pytest
import requests
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from benchmarks.servers import free_port
from tests.fixtures_tasks import Process, wait_until
from tests.tasks_for_tests import nap

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_web_node_answers_the_request_in_flight_then_exits(tmp_path):
    with socket.socket() as silent:  # an "MLflow" that accepts connections and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = free_port()
        web = Process(tmp_path, "web", ["-m", "gunicorn", "registry_ui.wsgi", "--bind", f"127.0.0.1:{port}",
                                        "--workers", "1", "--graceful-timeout", "30"],
                      MLFLOW_TRACKING_URI=f"http://127.0.0.1:{silent.getsockname()[1]}", READY_MLFLOW_TIMEOUT="4")
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: _answers(url + "/healthz"), timeout=60, what="the web node to start")
            answer = {}
            # /readyz waits READY_MLFLOW_TIMEOUT seconds on the silent MLflow: a request in flight
            reader = threading.Thread(target=lambda: answer.update(r=requests.get(url + "/readyz", timeout=60)))
            reader.start()
            time.sleep(1.5)
            os.kill(web.process.pid, signal.SIGTERM)  # to the master, as systemd's KillMode=mixed does
            reader.join(60)
            assert answer["r"].status_code == 503 and answer["r"].json()["checks"]["mlflow"]  # answered, in full
            assert web.process.wait(30) == 0
        finally:
            web.kill()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_a_worker_finishes_its_task_then_exits(start_worker):
    result = nap.enqueue(3)
    worker = start_worker(worker_id="w-stopping")
    row = DBTaskResult.objects.filter(pk=result.id)
    wait_until(lambda: row.get().status == TaskResultStatus.RUNNING, timeout=60, what="the worker to take the task")
    os.kill(worker.process.pid, signal.SIGTERM)
    assert worker.process.wait(30) == 0
    assert row.get().status == TaskResultStatus.SUCCESSFUL and row.get().return_value == "rested"
