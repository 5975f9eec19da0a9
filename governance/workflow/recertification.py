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
from governance.workflow.models import Approval, Deployment, DeploymentState, Recertification
from governance.workflow.policies import canonical_name, effective_policies, effective_policy
from registry_ui.memo import shared
from registry_ui.mirror.models import ModelAlias, ModelVersion, RegisteredModel
from registry_ui.scheduler.jobs import PeriodicJob


def _protected_holders(model_ids) -> dict[int, list[tuple[int, str, str, str]]]:
    """{model id: [(version, kind, target, label)]}: every holder of Production or a protected alias (the
    mirror), in two queries whatever the number of models. `model_ids`: a list or a values("pk") query."""
    protected = {canonical_name(a) for a in settings.PROTECTED_ALIASES}
    holders: dict[int, list[tuple[int, str, str, str]]] = {}
    for pk, version in ModelVersion.objects.filter(model_id__in=model_ids, stage="Production").values_list(
            "model_id", "version"):
        holders.setdefault(pk, []).append((version, "stage", "Production", "Production"))
    for pk, alias, version in ModelAlias.objects.filter(model_id__in=model_ids).values_list(
            "model_id", "alias", "version"):
        if canonical_name(alias) in protected:
            holders.setdefault(pk, []).append((version, "alias", alias, f"@{alias}"))
    return holders


def _approvals(model_names) -> tuple[dict, dict]:
    """The evidence of who last approved each holder, in three queries whatever the number of models:
    ({(model, version, kind, target): (when, how, request id)} from the latest successful deploy of each
    target, {(model, version, label): (when, approver)} from the latest re-certification).
    `model_names`: a list or a values("name") query."""
    deploys = (Deployment.objects.filter(model_name__in=model_names, state=DeploymentState.SUCCEEDED,
                                         kind__in=("stage", "alias"))
               .order_by("-completed_at", "-id").values_list("model_name", "version", "kind", "target",
                                                             "request_id", "request__emergency"))
    latest: dict[tuple, tuple[int, bool]] = {}
    for name, version, kind, target, rid, emergency in deploys:
        latest.setdefault((name, version, kind, target), (rid, emergency))
    approved: dict[int, object] = {}
    for rid, created in (Approval.objects.filter(
            request_id__in=Deployment.objects.filter(model_name__in=model_names, state=DeploymentState.SUCCEEDED)
            .values("request_id"), superseded_at__isnull=True).order_by("-created_at", "-id")
            .values_list("request_id", "created_at")):
        approved.setdefault(rid, created)
    by_deploy = {}
    for key, (rid, emergency) in latest.items():
        if rid in approved:
            by_deploy[key] = (approved[rid], "approval", rid)
        elif emergency:
            by_deploy[key] = (None, "break-glass (never approved)", rid)
        else:
            by_deploy[key] = (None, None, None)
    recerts: dict[tuple, tuple] = {}
    for name, version, target, created, approver in (Recertification.objects.filter(model_name__in=model_names)
                                                     .order_by("-created_at", "-id").values_list(
                                                         "model_name", "version", "target", "created_at",
                                                         "approver_username")):
        recerts.setdefault((name, version, target), (created, approver))
    return by_deploy, recerts


def _last_approved(by_deploy: dict, recerts: dict, model_name: str, version: int, kind: str, target: str,
                   label: str) -> tuple:
    """(when, how, request id): the latest approval of this holder, by the deploy that put it there or a
    later re-certification; (None, None, None) when nothing approved it."""
    when, how, rid = by_deploy.get((model_name, version, kind, target), (None, None, None))
    recert = recerts.get((model_name, version, label))
    if recert is not None and (when is None or recert[0] > when):
        when, how = recert[0], f"re-certified by {recert[1]}"
    return when, how, rid


# The reports page's workflow and portfolio sections both need the queue: within its once_per_page()
# block it is read once per user, as of the first call's `now` (the same request, milliseconds apart).
@shared(key=lambda user=None, *, now=None: getattr(user, "pk", None))
def recertification_queue(user=None, *, now=None) -> list[dict]:
    """Protected holders whose approval is older than their policy's validity (or missing), on the
    models `user` may see (None: every model, for the reminder). Oldest first. A fixed number of
    queries whatever the number of models (policies, holders, deploys, approvals, re-certifications)."""
    now = now or timezone.now()
    models = RegisteredModel.objects.all() if user is None else visible_models(user, RegisteredModel.objects.all())
    policies = effective_policies(models.values("pk"))
    holders = _protected_holders(models.values("pk"))
    names = {pk: name for pk, name in models.values_list("pk", "name") if pk in holders}
    by_deploy, recerts = _approvals(models.values("name")) if names else ({}, {})
    due = []
    for pk, name in sorted(names.items(), key=lambda kv: kv[1]):
        days = int(policies[pk].get("approval_validity_days") or 0)
        if days <= 0:
            continue
        for version, kind, target, label in holders[pk]:
            when, how, rid = _last_approved(by_deploy, recerts, name, version, kind, target, label)
            if when is not None and when >= now - timedelta(days=days):
                continue
            due.append({"model": name, "version": version, "target": label, "approved_at": when,
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
    holders = {(v, label) for v, _k, _t, label in _protected_holders([model.pk]).get(model.pk, [])}
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


