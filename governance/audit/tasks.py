"""Audit work run by the task worker: signed checkpoints, enqueued by the scheduler."""

from django_tasks import task

from governance.audit.services import audit_scheduled_checkpoint
from registry_ui.scheduler.jobs import PeriodicJob


@task()
def audit_checkpoint_task() -> dict:
    return {"outcome": "done", "detail": audit_scheduled_checkpoint()}


CHECKPOINT_JOB = PeriodicJob(name="audit.checkpoint", task=audit_checkpoint_task,
                             interval_setting="AUDIT_CHECKPOINT_INTERVAL", default=3600,
                             description="verify the audit chain and append a signed checkpoint")
