"""The one way to change a promotion request's state.

Each service: find the request among those the actor may see (else 404) -> the same refusal rules the
buttons use (permission, state, separation of duties) -> lock/claim the row with a conditional UPDATE
and check the count (select_for_update is a no-op on SQLite, whose IMMEDIATE transactions serialise
writers instead) -> change -> audit.record() in the same transaction. MLflow writes go through the
outbox: the intent (a pending Deployment) is committed with the claim, then MLflow is written and
re-read, then the outcome is committed. A write whose outcome is unknown is resolved by reading
MLflow (resolve_outbox), never by guessing.
"""

from __future__ import annotations

import re
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from governance import audit
from governance.access import can, require_perm, visible_models
from governance.errors import Conflict, DeployFailed, InvalidInput, NotFound, PolicyViolation, TransitionNotAllowed
from governance.workflow.models import (
    OPEN_STATES,
    Approval,
    Deployment,
    DeploymentState,
    PromotionRequest,
    RequestState,
)
from governance.workflow.policies import (
    STAGE_TARGETS,
    collect_evidence,
    evaluate_gates,
    failing,
    incumbent_version,
    request_is_production_like,
    required_quorum,
    transition_refusal,
)
from registry_ui.mirror import client as gateway
from registry_ui.mirror.models import ModelAlias, ModelVersion, RegisteredModel

ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,254}$")
RESERVED_ALIASES = {"latest"}


# --------------------------------------------------------------------------------------------------
# Selectors
# --------------------------------------------------------------------------------------------------


def requests_visible_to(user):
    """Requests on models the user may see (requests whose model left the registry: staff only)."""
    qs = PromotionRequest.objects.select_related("model")
    if getattr(user, "is_superuser", False):
        return qs
    return qs.filter(model__in=visible_models(user, RegisteredModel.objects.all()))


def get_request_for(user, request_id) -> PromotionRequest:
    try:
        return requests_visible_to(user).get(pk=int(request_id))
    except (PromotionRequest.DoesNotExist, TypeError, ValueError):
        raise NotFound(f"No promotion request {request_id}.") from None


def request_history(req: PromotionRequest) -> list[dict]:
    from governance.audit.models import AuditEvent

    return [
        {"seq": e.seq, "at": e.timestamp.isoformat(), "actor": e.actor_username, "action": e.action,
         "comment": e.comment, "before": e.before, "after": e.after}
        for e in AuditEvent.objects.filter(request_id=req.pk).order_by("seq")
    ]


def previous_holder(model: RegisteredModel, *, target_stage: str = "", target_alias: str = "") -> int | None:
    """Who held the target before the last deploy to it: what a rollback puts back."""
    kind, target = ("stage", target_stage) if target_stage else ("alias", target_alias)
    last = (Deployment.objects.filter(model_name=model.name, kind=kind, target=target,
                                      state=DeploymentState.SUCCEEDED).order_by("-completed_at", "-id").first())
    if last is None or not last.before:
        return None
    if kind == "alias":
        return last.before.get("version")
    holders = [v for v in last.before.get("holders", []) if v != last.version]
    return max(holders) if holders else None


# --------------------------------------------------------------------------------------------------
# Request, approve, reject, cancel
# --------------------------------------------------------------------------------------------------


def _state_dict(req: PromotionRequest) -> dict:
    return {"state": req.state, "target": req.target_label, "version": req.version}


def _raise_if_refused(actor, req: PromotionRequest, action: str) -> None:
    error = transition_refusal(actor, req, action)
    if error is not None:
        raise error


def _locked(request_id: int) -> PromotionRequest:
    # No select_related: PostgreSQL refuses FOR UPDATE on the nullable side of an outer join.
    return PromotionRequest.objects.select_for_update().get(pk=request_id)


def promotion_request_create(*, actor, model_name: str, version, target_stage: str = "", target_alias: str = "",
                             archive_existing: bool = False, justification: str, urgent: bool = False,
                             rollback: bool = False, source_ip: str | None = None) -> PromotionRequest:
    model = visible_models(actor, RegisteredModel.objects.all()).filter(name=model_name).first()
    if model is None:
        raise NotFound(f"No registered model {model_name!r}.")
    if rollback:
        if not (can(actor, "request", model) or can(actor, "deploy", model)):
            require_perm(actor, "request", model)
    else:
        require_perm(actor, "request", model)
    target_stage, target_alias = (target_stage or "").strip(), (target_alias or "").strip()
    if bool(target_stage) == bool(target_alias):
        raise InvalidInput("Name exactly one target: a stage or an alias.")
    if target_stage and target_stage not in STAGE_TARGETS:
        raise InvalidInput(f"Unknown stage {target_stage!r}; choose one of {', '.join(STAGE_TARGETS)}.")
    if target_alias and (not ALIAS_RE.match(target_alias) or target_alias.lower() in RESERVED_ALIASES
                         or re.fullmatch(r"v\d+", target_alias)):
        raise InvalidInput(f"{target_alias!r} is not a valid alias (letters, digits, _ and -; not 'latest' or v<n>).")
    try:
        version = int(version)
    except (TypeError, ValueError):
        raise InvalidInput("version must be a number.") from None
    if not ModelVersion.objects.filter(model=model, version=version).exists():
        raise InvalidInput(f"{model_name} has no version {version}.")
    justification = (justification or "").strip()
    if not justification:
        raise InvalidInput("A justification is required.")
    holder = incumbent_version(model, target_stage=target_stage, target_alias=target_alias)
    if target_alias and holder == version or (target_stage and ModelVersion.objects.filter(
            model=model, version=version, stage=target_stage).exists()):
        raise InvalidInput(f"v{version} already holds {target_stage or '@' + target_alias}.")
    if PromotionRequest.objects.filter(model_name=model.name, target_stage=target_stage, target_alias=target_alias,
                                       state__in=OPEN_STATES).exists():
        raise Conflict(f"An open request for {model.name} -> {target_stage or '@' + target_alias} already exists.")
    evidence = collect_evidence(model=model, version=version, target_stage=target_stage, target_alias=target_alias,
                                rollback=rollback)
    try:
        with transaction.atomic():
            req = PromotionRequest.objects.create(
                model=model, model_name=model.name, version=version, target_stage=target_stage,
                target_alias=target_alias, archive_existing=bool(archive_existing) and bool(target_stage),
                justification=justification, requester=actor, requester_username=actor.get_username(),
                rollback=rollback, urgent=bool(urgent) and rollback, evidence=evidence,
                gate_results=evidence["gates"],
            )
            audit.record(actor=actor, action="request.created", model=model, version=version, request=req,
                         before=None, after={**_state_dict(req), "rollback": req.rollback, "urgent": req.urgent,
                                             "gates": evidence["gates"]},
                         comment=justification, source_ip=source_ip)
    except IntegrityError:
        raise Conflict(f"An open request for {model.name} -> {target_stage or '@' + target_alias} "
                       "already exists.") from None
    return req


def promotion_request_rollback(*, actor, model_name: str, target_stage: str = "", target_alias: str = "",
                               justification: str, urgent: bool = False,
                               source_ip: str | None = None) -> PromotionRequest:
    """Ask to put back the previous holder of a target: a normal request through the same gates
    and approvals (urgent drops the quorum to 1, never the separation of duties)."""
    model = visible_models(actor, RegisteredModel.objects.all()).filter(name=model_name).first()
    if model is None:
        raise NotFound(f"No registered model {model_name!r}.")
    if not (can(actor, "request", model) or can(actor, "deploy", model)):  # permission before anything else
        require_perm(actor, "request", model)
    previous = previous_holder(model, target_stage=target_stage, target_alias=target_alias)
    if previous is None:
        raise InvalidInput("No recorded deploy to this target: nothing to roll back to.")
    return promotion_request_create(actor=actor, model_name=model_name, version=previous, target_stage=target_stage,
                                    target_alias=target_alias, archive_existing=bool(target_stage),
                                    justification=justification, urgent=urgent, rollback=True, source_ip=source_ip)


def promotion_request_approve(*, request_id: int, actor, comment: str = "", override: bool = False,
                              source_ip: str | None = None) -> PromotionRequest:
    req = get_request_for(actor, request_id)
    _raise_if_refused(actor, req, "approve")
    comment = (comment or "").strip()
    evidence = collect_evidence(model=req.model, version=req.version, target_stage=req.target_stage,
                                target_alias=req.target_alias, rollback=req.rollback)
    failed = failing(evidence["gates"])
    if failed:
        why = "; ".join(g["detail"] for g in failed)
        if request_is_production_like(req):
            # Not a state change: only the latest gate results, so the page shows why approval is blocked.
            PromotionRequest.objects.filter(pk=req.pk).update(gate_results=evidence["gates"])
            raise PolicyViolation(f"Policy gates fail, so {req.target_label} cannot be approved: {why}")
        if not (override and comment):
            raise PolicyViolation(f"Policy gates fail ({why}); approving anyway needs an override with a comment.")
    with transaction.atomic():
        req = _locked(req.pk)
        _raise_if_refused(actor, req, "approve")
        try:
            with transaction.atomic():
                Approval.objects.create(request=req, approver=actor, approver_username=actor.get_username(),
                                        comment=comment)
        except IntegrityError:
            raise TransitionNotAllowed("You have already approved this request.") from None
        approvals = req.approvals.count()
        quorum = required_quorum(req)
        after = {"approvals": approvals, "quorum": quorum, "gates": evidence["gates"], "override": bool(failed)}
        if approvals >= quorum:
            claimed = PromotionRequest.objects.filter(pk=req.pk, state=RequestState.PENDING).update(
                state=RequestState.APPROVED, approval_evidence=evidence, gate_results=evidence["gates"],
                override=bool(failed), decided_by=actor.get_username(), decision_comment=comment,
                updated_at=timezone.now())
            if claimed != 1:
                raise TransitionNotAllowed("Someone else changed this request first.")
            after["state"] = RequestState.APPROVED
        else:
            after["state"] = RequestState.PENDING
        audit.record(actor=actor, action="request.approved", model=req.model_name, version=req.version, request=req,
                     before={"state": RequestState.PENDING, "approvals": approvals - 1}, after=after,
                     comment=comment, source_ip=source_ip)
    req.refresh_from_db()
    return req


def promotion_request_reject(*, request_id: int, actor, comment: str, source_ip: str | None = None) -> PromotionRequest:
    req = get_request_for(actor, request_id)
    _raise_if_refused(actor, req, "reject")
    comment = (comment or "").strip()
    if not comment:
        raise InvalidInput("Rejecting needs a comment that says why.")
    with transaction.atomic():
        claimed = PromotionRequest.objects.filter(pk=req.pk, state=RequestState.PENDING).update(
            state=RequestState.REJECTED, decided_by=actor.get_username(), decision_comment=comment,
            updated_at=timezone.now())
        if claimed != 1:
            raise TransitionNotAllowed("This request is no longer pending.")
        audit.record(actor=actor, action="request.rejected", model=req.model_name, version=req.version, request=req,
                     before={"state": req.state}, after={"state": RequestState.REJECTED}, comment=comment,
                     source_ip=source_ip)
    req.refresh_from_db()
    return req


def promotion_request_cancel(*, request_id: int, actor, comment: str = "",
                             source_ip: str | None = None) -> PromotionRequest:
    req = get_request_for(actor, request_id)
    _raise_if_refused(actor, req, "cancel")
    if req.state == RequestState.FAILED:
        resolve_outbox(request_id=req.pk)  # a write of unknown outcome must be settled first
        req.refresh_from_db()
        _raise_if_refused(actor, req, "cancel")
        if req.deployments.filter(state=DeploymentState.PENDING).exists():
            raise Conflict("MLflow is unreachable, so whether the last deploy landed is unknown; "
                           "cancel again once MLflow answers.")
    with transaction.atomic():
        claimed = PromotionRequest.objects.filter(pk=req.pk, state=req.state).update(
            state=RequestState.CANCELLED, decision_comment=(comment or "").strip() or req.decision_comment,
            updated_at=timezone.now())
        if claimed != 1:
            raise TransitionNotAllowed("Someone else changed this request first.")
        audit.record(actor=actor, action="request.cancelled", model=req.model_name, version=req.version,
                     request=req, before={"state": req.state}, after={"state": RequestState.CANCELLED},
                     comment=comment or "", source_ip=source_ip)
    req.refresh_from_db()
    return req


# --------------------------------------------------------------------------------------------------
# Deploy and the outbox
# --------------------------------------------------------------------------------------------------


def _target_view(dep: Deployment, pointers: gateway.ModelPointers) -> dict:
    if dep.kind == "alias":
        return {"alias": dep.target, "version": pointers.aliases.get(dep.target)}
    return {"stage": dep.target, "holders": pointers.stage_holders(dep.target),
            "candidate_stage": pointers.stages.get(dep.version)}


def _applied(dep: Deployment, pointers: gateway.ModelPointers) -> bool:
    if dep.kind == "alias":
        return pointers.aliases.get(dep.target) == dep.version
    if pointers.stages.get(dep.version) != dep.target:
        return False
    return not dep.archive_existing or pointers.stage_holders(dep.target) == [dep.version]


def _mirror_apply(dep: Deployment, pointers: gateway.ModelPointers) -> None:
    """Update the mirror rows this deploy changed, from what MLflow reported. The model's synced_at
    moves to now (after the read), so a sync page read from MLflow before this deploy does not write
    its older state over it (registry_ui.mirror.sync._Writer); the row lock orders the two writers."""
    model = RegisteredModel.objects.select_for_update().filter(name=dep.model_name).first()
    if model is None:
        return
    RegisteredModel.objects.filter(pk=model.pk).update(synced_at=timezone.now())
    if dep.kind == "alias":
        ModelAlias.objects.update_or_create(model=model, alias=dep.target, defaults={"version": dep.version})
        return
    for row in ModelVersion.objects.filter(model=model, version__in=list(pointers.stages)):
        stage = pointers.stages[row.version]
        if row.stage != stage:
            ModelVersion.objects.filter(pk=row.pk).update(stage=stage)


def _candidate_problem(req: PromotionRequest, current: gateway.VersionState | None) -> str:
    """Why MLflow's version no longer matches what was approved ('' when it still does)."""
    if current is None:
        return f"v{req.version} no longer exists in MLflow."
    frozen = (req.approval_evidence or req.evidence or {}).get("candidate") or {}
    for field in ("source", "run_id"):
        if frozen.get(field, "") != getattr(current, field):
            return (f"The candidate changed in MLflow after approval: {field} was {frozen.get(field)!r}, "
                    f"now {getattr(current, field)!r}. Request again.")
    candidate = {**frozen, "tags": current.tags}
    gates = evaluate_gates(model=req.model, candidate=candidate, incumbent=None, target_stage=req.target_stage,
                           target_alias=req.target_alias, rollback=True)
    tag_failures = [g["detail"] for g in failing(gates) if g["gate"].startswith("tag:")]
    if tag_failures:
        return "The candidate's tags changed in MLflow after approval: " + "; ".join(tag_failures)
    return ""


def _finish_success(dep: Deployment, *, before: dict | None, pointers: gateway.ModelPointers, actor=None,
                    actor_name: str | None = None, comment: str = "") -> bool:
    with transaction.atomic():
        updated = Deployment.objects.filter(pk=dep.pk, state=DeploymentState.PENDING).update(
            state=DeploymentState.SUCCEEDED, after=_target_view(dep, pointers), completed_at=timezone.now(),
            **({"before": before} if before is not None else {}))
        if updated != 1:
            return False
        claimed = PromotionRequest.objects.filter(
            pk=dep.request_id, state__in=[RequestState.DEPLOYING, RequestState.FAILED]).update(
            state=RequestState.DEPLOYED, deployed_by=actor.get_username() if actor else (actor_name or ""),
            deployed_at=timezone.now(), error="", updated_at=timezone.now())
        if claimed != 1:
            raise TransitionNotAllowed("The request changed while it was being deployed.")
        _mirror_apply(dep, pointers)
        audit.record(actor=actor, actor_name=actor_name, action="deploy.succeeded", model=dep.model_name,
                     version=dep.version, request=dep.request_id,
                     before=before if before is not None else dep.before,
                     after={"state": RequestState.DEPLOYED, **_target_view(dep, pointers)}, comment=comment)
    return True


def _finish_failure(dep: Deployment, error: str, *, confirmed_not_applied: bool, actor=None,
                    actor_name: str | None = None) -> None:
    with transaction.atomic():
        if confirmed_not_applied:
            Deployment.objects.filter(pk=dep.pk, state=DeploymentState.PENDING).update(
                state=DeploymentState.FAILED, error=error, completed_at=timezone.now())
        else:  # outcome unknown: stays pending in the outbox until MLflow is read
            Deployment.objects.filter(pk=dep.pk).update(error=error)
        claimed = PromotionRequest.objects.filter(pk=dep.request_id, state=RequestState.DEPLOYING).update(
            state=RequestState.FAILED, error=error, updated_at=timezone.now())
        if claimed == 1:
            audit.record(actor=actor, actor_name=actor_name, action="deploy.failed", model=dep.model_name,
                         version=dep.version, request=dep.request_id, before={"state": RequestState.DEPLOYING},
                         after={"state": RequestState.FAILED, "error": error,
                                "write_outcome": "not applied" if confirmed_not_applied else "unknown"})


def promotion_request_deploy(*, request_id: int, actor, comment: str = "",
                             source_ip: str | None = None) -> PromotionRequest:
    req = get_request_for(actor, request_id)
    _raise_if_refused(actor, req, "deploy")
    if req.state == RequestState.FAILED:
        resolve_outbox(request_id=req.pk)  # the last attempt may have reached MLflow after all
        req = get_request_for(actor, request_id)
        if req.state == RequestState.DEPLOYED:
            return req
    kind, target = ("stage", req.target_stage) if req.target_stage else ("alias", req.target_alias)
    with transaction.atomic():
        req = _locked(req.pk)
        _raise_if_refused(actor, req, "deploy")
        claimed = PromotionRequest.objects.filter(
            pk=req.pk, state__in=[RequestState.APPROVED, RequestState.FAILED]).update(
            state=RequestState.DEPLOYING, error="", updated_at=timezone.now())
        if claimed != 1:
            raise TransitionNotAllowed("Someone else is deploying this request, or it changed.")
        try:
            with transaction.atomic():
                dep = Deployment.objects.create(request=req, model_name=req.model_name, version=req.version,
                                                kind=kind, target=target, archive_existing=req.archive_existing,
                                                actor_username=actor.get_username())
        except IntegrityError:
            raise TransitionNotAllowed("An earlier deploy of this request is still unresolved.") from None
        audit.record(actor=actor, action="deploy.started", model=req.model_name, version=req.version, request=req,
                     before={"state": req.state}, after={"state": RequestState.DEPLOYING, "kind": kind,
                                                         "target": target, "deployment": dep.pk},
                     comment=comment, source_ip=source_ip)
    # Committed: the intent is in the outbox. Now talk to MLflow, with a short budget.
    try:
        problem = _candidate_problem(req, gateway.read_version(req.model_name, req.version))
        if problem:
            _finish_failure(dep, problem, confirmed_not_applied=True, actor=actor)
            raise Conflict(problem)
        before_pointers = gateway.read_model_pointers(req.model_name)
        before = _target_view(dep, before_pointers)
        Deployment.objects.filter(pk=dep.pk).update(before=before)
        if kind == "alias":
            gateway.deploy_alias(req.model_name, target, req.version, current=before_pointers)
        else:
            gateway.deploy_stage(req.model_name, req.version, target, archive_existing=req.archive_existing,
                                 current=before_pointers)
        after_pointers = gateway.read_model_pointers(req.model_name)
        if not _applied(dep, after_pointers):
            raise gateway.MlflowUnavailable("MLflow does not show the change after the write.")
    except gateway.MlflowUnavailable as exc:
        _finish_failure(dep, str(exc), confirmed_not_applied=False, actor=actor)
        raise DeployFailed(f"Deploy failed, the request is now 'failed' and can be retried: {exc}") from exc
    _finish_success(dep, before=before, pointers=after_pointers, actor=actor, comment=comment)
    req.refresh_from_db()
    return req


def resolve_deployment(dep: Deployment, *, actor_name: str = "system:outbox") -> str:
    """Settle one pending outbox entry by reading MLflow: 'succeeded', 'failed' or 'unreachable'."""
    try:
        pointers = gateway.read_model_pointers(dep.model_name)
    except gateway.MlflowUnavailable:
        return "unreachable"
    if _applied(dep, pointers):
        _finish_success(dep, before=None, pointers=pointers, actor_name=actor_name,
                        comment="resolved from MLflow's state")
        return "succeeded"
    _finish_failure(dep, dep.error or "Interrupted before MLflow was written; MLflow shows no change.",
                    confirmed_not_applied=True, actor_name=actor_name)
    return "failed"


def resolve_outbox(*, request_id: int | None = None, stale_seconds: int | None = None) -> dict[str, int]:
    """Resolve outbox entries whose outcome is unknown: those of failed requests, and those of
    requests stuck 'deploying' longer than stale_seconds (a crashed worker)."""
    stale = settings.WORKFLOW_OUTBOX_STALE_SECONDS if stale_seconds is None else stale_seconds
    pending = Deployment.objects.filter(state=DeploymentState.PENDING)
    if request_id is not None:
        pending = pending.filter(request_id=request_id, request__state=RequestState.FAILED)
    else:
        cutoff = timezone.now() - timedelta(seconds=stale)
        pending = pending.filter(request__state=RequestState.FAILED) | pending.filter(
            request__state=RequestState.DEPLOYING, created_at__lte=cutoff)
    counts = {"succeeded": 0, "failed": 0, "unreachable": 0}
    for dep in pending.order_by("id"):
        counts[resolve_deployment(dep)] += 1
    return counts

