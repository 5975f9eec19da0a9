"""Re-certification: an approval of a version holding Production or a protected alias is valid for the
policy's approval_validity_days; after that the holder enters the re-review queue until an approver
confirms it again (or it is replaced through the workflow). A holder no approval put there (drift, or
from before the console) is due at once."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tasks import task

from governance import audit
from governance.access import require_perm, visible_models
from governance.errors import InvalidInput, NotFound
from governance.notify.outbox import emit
from governance.workflow.models import Deployment, DeploymentState, Recertification
from governance.workflow.policies import canonical_name, effective_policy
from registry_ui.mirror.models import ModelAlias, ModelVersion, RegisteredModel
from registry_ui.scheduler.jobs import PeriodicJob


def _protected_holders(model) -> list[tuple[int, str, str, str]]:
    """(version, kind, target, label) of every holder of Production or a protected alias (the mirror)."""
    protected = {canonical_name(a) for a in settings.PROTECTED_ALIASES}
    rows = [(v, "stage", "Production", "Production")
            for v in ModelVersion.objects.filter(model=model, stage="Production").values_list("version", flat=True)]
    rows += [(v, "alias", a, f"@{a}") for a, v in ModelAlias.objects.filter(model=model).values_list("alias", "version")
             if canonical_name(a) in protected]
    return rows


def _last_approved(model_name: str, version: int, kind: str, target: str, label: str) -> tuple:
    """(when, how, request id): the latest approval of this holder, by the deploy that put it there or a
    later re-certification; (None, None, None) when nothing approved it."""
    dep = (Deployment.objects.filter(model_name=model_name, version=version, kind=kind, target=target,
                                     state=DeploymentState.SUCCEEDED).select_related("request")
           .order_by("-completed_at", "-id").first())
    when, how, rid = None, None, None
    if dep is not None:
        req = dep.request
        approval = req.approvals.filter(superseded_at__isnull=True).order_by("-created_at").first()
        if approval is not None:
            when, how, rid = approval.created_at, "approval", req.pk
        elif req.emergency:
            when, how, rid = None, "break-glass (never approved)", req.pk
    recert = Recertification.objects.filter(model_name=model_name, version=version, target=label).first()
    if recert is not None and (when is None or recert.created_at > when):
        when, how = recert.created_at, f"re-certified by {recert.approver_username}"
    return when, how, rid


def recertification_queue(user=None, *, now=None) -> list[dict]:
    """Protected holders whose approval is older than their policy's validity (or missing), on the
    models `user` may see (None: every model, for the reminder). Oldest first."""
    now = now or timezone.now()
    models = RegisteredModel.objects.all() if user is None else visible_models(user, RegisteredModel.objects.all())
    due = []
    for model in models.order_by("name"):
        days = int(effective_policy(model).get("approval_validity_days") or 0)
        if days <= 0:
            continue
        for version, kind, target, label in _protected_holders(model):
            when, how, rid = _last_approved(model.name, version, kind, target, label)
            if when is not None and when >= now - timedelta(days=days):
                continue
            due.append({"model": model.name, "version": version, "target": label, "approved_at": when,
                        "how": how or "no approval on record", "request": rid, "validity_days": days,
                        "due_since": (when + timedelta(days=days)) if when else None})
    due.sort(key=lambda d: (d["approved_at"] is not None, d["approved_at"] or now, d["model"]))
    return due


def recertification_confirm(*, actor, model_name: str, version: int, target: str, comment: str,
                            source_ip: str | None = None) -> Recertification:
    """An approver confirms that `version` may keep holding `target` ("Production" or "@alias"): its
    approval's validity restarts; one recertification.confirmed event."""
    model = visible_models(actor, RegisteredModel.objects.all()).filter(name=model_name).first()
    if model is None:
        raise NotFound(f"No registered model {model_name!r}.")
    require_perm(actor, "approve", model)
    comment = (comment or "").strip()
    if not comment:
        raise InvalidInput("Re-certifying needs a comment: what was checked.")
    holders = {(v, label) for v, _k, _t, label in _protected_holders(model)}
    if (int(version), target) not in holders:
        raise InvalidInput(f"v{version} does not hold {target} of {model.name}.")
    with transaction.atomic():
        row = Recertification.objects.create(model_name=model.name, version=int(version), target=target,
                                             approver_username=actor.get_username(), comment=comment)
        audit.record(actor=actor, action="recertification.confirmed", model=model.name, version=int(version),
                     after={"target": target, "valid_days": effective_policy(model).get("approval_validity_days")},
                     comment=comment, source_ip=source_ip)
    return row


def recertification_remind(*, now=None) -> dict[str, list[dict]]:
    """The reminder (a scheduled job): what is due, by model, with one recertification.reminded event
    per model that has anything due; the approvers of that model are mailed from the event (written in
    the same transaction). Returns {model: [due items]}."""
    due = recertification_queue(None, now=now)
    by_model: dict[str, list[dict]] = {}
    for item in due:
        by_model.setdefault(item["model"], []).append(item)
    with transaction.atomic():
        for model_name, items in by_model.items():
            event = audit.record(actor_name="system:recertification", action="recertification.reminded",
                                 model=model_name,
                                 after={"due": [{"version": d["version"], "target": d["target"]} for d in items]},
                                 comment=f"{len(items)} protected holder(s) of {model_name} need re-certification")
            emit(event)
    return by_model


@task()
def recertification_remind_task() -> dict:
    by_model = recertification_remind()
    due = sum(len(items) for items in by_model.values())
    return {"outcome": "done", "detail": f"{due} due on {len(by_model)} model(s)", "due": due}


RECERTIFICATION_JOB = PeriodicJob(
    name="workflow.recertification_remind", task=recertification_remind_task,
    interval_setting="WORKFLOW_RECERTIFICATION_REMIND_INTERVAL", default=86400,
    description="remind approvers of protected holders whose approval has outlived the policy's validity")


