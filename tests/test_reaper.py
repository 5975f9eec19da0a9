"""A worker killed mid-task (SIGKILL): its heartbeat stops, and the scheduler's reaper puts the task
back in the queue with its id, where another worker finishes it (the database backend; the RQ backend
is exercised by tests/test_multinode.py)."""

import pytest
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from registry_ui.scheduler.reaper import requeue_lost_tasks
from tests.fixtures_tasks import wait_until
from tests.tasks_for_tests import nap


@pytest.mark.django_db(transaction=True)
def test_the_task_of_a_killed_worker_is_requeued_once_and_finished_by_another(start_worker, settings):
    settings.WORKER_LOST_SECONDS = 2
    result = nap.enqueue(4)
    first = start_worker(worker_id="w-killed", WORKER_BEAT_SECONDS="0.5")
    row = DBTaskResult.objects.filter(pk=result.id)
    wait_until(lambda: row.get().status == TaskResultStatus.RUNNING, what="the first worker to take the task")
    assert requeue_lost_tasks() == []  # alive: it beats while the task runs
    first.stop(kill=True)

    requeued = wait_until(requeue_lost_tasks, timeout=20, what="the task to be taken as lost")
    assert requeued == [str(result.id)] and requeue_lost_tasks() == []  # once
    start_worker(worker_id="w-second")
    wait_until(lambda: row.get().status == TaskResultStatus.SUCCESSFUL, timeout=60, what="the second worker")
    assert row.get().worker_ids == ["w-killed", "w-second"] and row.get().return_value == "rested"
