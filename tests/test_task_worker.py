"""The task worker fixture runs enqueued tasks in a real `db_worker` process on the test database."""

from django_tasks import TaskResultStatus

from tests.fixtures_tasks import wait_until
from tests.tasks_for_tests import add, fail


def _finished(result):
    result.refresh()
    return result.is_finished


def test_a_real_worker_runs_an_enqueued_task_and_records_its_result(task_worker):
    result = add.enqueue(2, 3)

    wait_until(lambda: _finished(result), what="the worker to run the task")

    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 5


def test_a_task_that_raises_is_recorded_as_failed_with_its_error(task_worker):
    result = fail.enqueue("the model did not load")

    wait_until(lambda: _finished(result), what="the worker to run the task")

    assert result.status == TaskResultStatus.FAILED
    assert "the model did not load" in result.errors[-1].traceback
