"""Workflow work run by the task worker: settling deploys whose MLflow outcome is unknown."""

from django.conf import settings
from django_tasks import task

from governance.errors import KNOWN_ERRORS, Conflict, EvidenceUnavailable, detail
from governance.workflow.models import OPEN_STATES, Operation, PromotionRequest
from governance.workflow.services import resolve_outbox, retention_request_propose
from registry_ui.mirror.models import RegisteredModel
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


@task()
def retention_propose_task() -> dict:
    """The console proposes each model's retention batch (one request listing every version it would
    touch); an approver approves it and ops apply it. Models with an open batch are left alone."""
    if settings.WORKFLOW_RETENTION_KEEP > 0:
        models = RegisteredModel.objects.exclude(policy__retention_keep=0)
    else:
        models = RegisteredModel.objects.filter(policy__retention_keep__gt=0)
    open_batches = PromotionRequest.objects.filter(operation=Operation.RETENTION, state__in=OPEN_STATES)
    models = models.exclude(pk__in=open_batches.values("model_id")).order_by("name")
    proposed, refused = [], []
    for name in models.values_list("name", flat=True):
        try:
            if retention_request_propose(model_name=name) is not None:
                proposed.append(name)
        except Conflict:
            continue  # proposed by someone else meanwhile
        except KNOWN_ERRORS as exc:  # one model MLflow cannot answer for does not stop the others
            refused.append(f"{name}: {detail(exc)}")
    if refused:
        raise EvidenceUnavailable(f"{len(proposed)} batch(es) proposed; {len(refused)} model(s) could not be "
                                  f"judged: {'; '.join(refused[:3])}")
    return {"outcome": "done", "detail": f"{len(proposed)} batch(es) proposed", "proposed": proposed}


RETENTION_JOB = PeriodicJob(name="workflow.retention_propose", task=retention_propose_task,
                            interval_setting="WORKFLOW_RETENTION_PROPOSE_INTERVAL", default=86400,
                            description="propose each model's retention batch (archive/delete) as a request")
