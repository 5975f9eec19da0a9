"""Workflow work run by the task worker: settling deploys whose MLflow outcome is unknown."""

from django_tasks import task

from governance.workflow.services import resolve_outbox
from registry_ui.scheduler.jobs import PeriodicJob


class OutboxUnresolved(Exception):
    """MLflow could not be read for some pending deploys; the next run tries again."""


@task()
def resolve_outbox_task() -> dict:
    errors: list[str] = []
    counts = resolve_outbox(errors=errors)  # a deploying request counts as interrupted once its lease expired
    detail = ", ".join(f"{k}={v}" for k, v in counts.items())
    if counts["unreachable"]:
        raise OutboxUnresolved(f"{detail}: {errors[-1] if errors else 'MLflow unreachable'}")
    return {"outcome": "done", "detail": detail, **counts}


OUTBOX_JOB = PeriodicJob(name="workflow.resolve_outbox", task=resolve_outbox_task,
                         interval_setting="WORKFLOW_OUTBOX_RESOLVE_INTERVAL", default=60,
                         description="settle deploys whose MLflow outcome is unknown (crash or timeout mid-write)")
