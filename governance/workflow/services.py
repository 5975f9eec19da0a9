"""The one way to change a promotion request's state.

Each service: find the request among those the actor may see (else 404) -> the same refusal rules the
buttons use (permission, state, separation of duties) -> lock/claim the row with a conditional UPDATE
and check the count (select_for_update is a no-op on SQLite, whose IMMEDIATE transactions serialise
writers instead) -> change -> audit.record() in the same transaction.

Request, approve and deploy judge evidence read from MLflow at that moment (policies.fresh_evidence),
never the mirror; when MLflow cannot answer the step is refused, nothing changes and the refusal is an
event. A deploy compares that evidence with what was frozen at approval before it claims anything: a
gate that passed then and fails now sends the request back to pending for re-approval.

A deploy writes MLflow exactly once. Each attempt first claims a lease on the request (a
compare-and-set on state and attempt number, in a durable transaction of its own), so only one
attempt talks to MLflow at a time; then it settles earlier attempts from MLflow's state, commits its
intent (a pending Deployment) and writes: a tag marking the version with the attempt, then the
stage/alias move, neither re-sent by the HTTP layer. A write without a usable answer is read back:
there -> success; not there -> not applied; MLflow unreadable -> unknown, left to resolve_outbox,
whose every decision is an audit event naming what it read. A write that lands after the console
gave up on it carries the attempt's mark, so whoever reads MLflow next (the sync, the resolver, the
next attempt) records it as that deploy's success, never as drift.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django_tasks import task

from governance import audit
from governance.access import can, require_perm, visible_models
from governance.errors import (
    Conflict,
    DeployFailed,
    EvidenceUnavailable,
    InvalidInput,
    NotFound,
    PolicyViolation,
    TransitionNotAllowed,
)
from governance.notify.outbox import emit
from governance.validation.models import ValidationStatus
from governance.validation.services import validation_run_request
from governance.workflow.models import (
    OPEN_STATES,
    OPERATION_NOT_REQUESTABLE,
    REQUESTED_OPERATIONS,
    Approval,
    Deployment,
    DeploymentState,
    ModelPolicy,
    Operation,
    PromotionRequest,
    RequestState,
    marker_key,
    parse_marker,
)
from governance.workflow.policies import (
    STAGE_TARGETS,
    canonical_name,
    deploy_in_progress,
    effective_policy,
    evaluate_gates,
    evidence_changes,
    failing,
    fresh_evidence,
    is_demotion,
    is_production_like,
    newly_failing,
    request_actions,
    request_is_production_like,
    required_quorum,
    target_alias_problem,
    transition_refusal,
    validation_refusal,
    validation_spec,
)
from registry_ui.mirror import client as gateway
from registry_ui.mirror.models import ModelAlias, ModelVersion, RegisteredModel

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
    """What a rollback puts back: the version the policy's rollback alias points at (deploys keep it on
    the previous holder of a protected target), unless it holds the target already; otherwise who
    held the target before the last deploy to it."""
    kind, target = ("stage", target_stage) if target_stage else ("alias", target_alias)
    rollback_alias = effective_policy(model).get("rollback_alias") or ""
    marked = ModelAlias.objects.filter(model=model, alias=rollback_alias).values_list("version", flat=True).first()
    if marked is not None and rollback_alias != target_alias:
        holds = (ModelAlias.objects.filter(model=model, alias=target_alias, version=marked).exists() if target_alias
                 else ModelVersion.objects.filter(model=model, version=marked, stage=target_stage).exists())
        if not holds:
            return marked
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


def _turn(req: PromotionRequest):
    """For notify.emit: whether it is `user`'s turn to `action` this request (the inbox's own rule)."""
    return lambda user, action: action in request_actions(user, req)


def _raise_if_refused(actor, req: PromotionRequest, action: str) -> None:
    error = transition_refusal(actor, req, action)
    if error is not None:
        raise error


def _evidence_or_refuse(*, actor, action: str, model, model_name: str, version: int, target_stage: str,
                        target_alias: str, rollback: bool, req: PromotionRequest | None = None,
                        source_ip: str | None = None, operation: str | None = None) -> dict:
    """The evidence for a decision, read from MLflow now. When MLflow cannot answer, the step is
    refused and nothing changes, but the refusal is recorded: an auditor sees that the decision was
    attempted and why it was not taken (only callers that passed the permission check get here)."""
    try:
        operation = operation or (req.operation if req is not None else Operation.MOVE)
        return fresh_evidence(model=model, model_name=model_name, version=version, target_stage=target_stage,
                              target_alias=target_alias, rollback=rollback, operation=operation,
                              plan=req.plan if req is not None and operation == Operation.RETENTION else None)
    except EvidenceUnavailable as exc:
        state = {"state": req.state} if req is not None else None
        audit.record(actor=actor, action="request.evidence_unavailable", model=model_name, version=version,
                     request=req, before=state,
                     after={**(state or {}), "refused": action, "target": target_stage or f"@{target_alias}",
                            "error": exc.detail},
                     source_ip=source_ip)
        raise


def _locked(request_id: int) -> PromotionRequest:
    # No select_related: PostgreSQL refuses FOR UPDATE on the nullable side of an outer join.
    return PromotionRequest.objects.select_for_update().get(pk=request_id)


def promotion_request_create(*, actor, model_name: str, version, target_stage: str = "", target_alias: str = "",
                             archive_existing: bool = False, justification: str, urgent: bool = False,
                             rollback: bool = False, operation: str = Operation.MOVE, emergency: bool = False,
                             source_ip: str | None = None) -> PromotionRequest:
    """A request for one registry move (`operation`): move `version` to a stage or point an alias at
    it (Operation.MOVE), remove alias `target_alias` from `version` (REMOVE_ALIAS), or delete the
    archived `version` (DELETE, no target)."""
    model = visible_models(actor, RegisteredModel.objects.all()).filter(name=model_name).first()
    if model is None:
        raise NotFound(f"No registered model {model_name!r}.")
    if emergency:
        require_perm(actor, "deploy", model)
        require_perm(actor, "break_glass", model)
    elif rollback:
        if not (can(actor, "request", model) or can(actor, "deploy", model)):
            require_perm(actor, "request", model)
    else:
        require_perm(actor, "request", model)
    target_stage, target_alias = target_stage or "", target_alias or ""
    if operation not in REQUESTED_OPERATIONS:
        raise InvalidInput(OPERATION_NOT_REQUESTABLE.format(operation=operation))
    if operation == Operation.DELETE:
        if target_stage or target_alias:
            raise InvalidInput("A deletion names no target: only the version.")
    elif operation == Operation.REMOVE_ALIAS:
        if target_stage or not target_alias:
            raise InvalidInput("Name the alias to remove.")
    elif bool(target_stage) == bool(target_alias):
        raise InvalidInput("Name exactly one target: a stage or an alias.")
    if target_stage and target_stage not in STAGE_TARGETS:
        raise InvalidInput(f"Unknown stage {target_stage!r}; choose one of {', '.join(STAGE_TARGETS)}.")
    if target_alias and (problem := target_alias_problem(target_alias)):
        raise InvalidInput(problem)
    try:
        version = int(version)
    except (TypeError, ValueError):
        raise InvalidInput("version must be a number.") from None
    justification = (justification or "").strip()
    if not justification:
        raise InvalidInput("A justification is required.")
    # Aliases are ASCII (target_alias_problem), so a case-insensitive match is the canonical one.
    label = f"deletion of v{version}" if operation == Operation.DELETE else (target_stage or "@" + target_alias)
    open_ = PromotionRequest.objects.filter(model_name=model.name, state__in=OPEN_STATES)
    if operation == Operation.DELETE:
        open_ = open_.filter(operation=Operation.DELETE, version=version)
    else:
        open_ = open_.filter(target_stage=target_stage, target_alias__iexact=target_alias).exclude(
            operation=Operation.DELETE)
    if open_.exists():
        raise Conflict(f"An open request for {model.name} -> {label} already exists.")
    # Whether the version exists and what holds the target are MLflow's answer now, not the mirror's.
    evidence = _evidence_or_refuse(actor=actor, action="request", model=model, model_name=model.name,
                                   version=version, target_stage=target_stage, target_alias=target_alias,
                                   rollback=rollback, source_ip=source_ip, operation=operation)
    candidate = evidence["candidate"]
    if candidate is None:
        raise InvalidInput(f"{model_name} has no version {version}.")
    holder = (evidence["incumbent"] or {}).get("version")
    if operation == Operation.REMOVE_ALIAS:
        if holder != version:
            where = f"it points at v{holder}" if holder else "no version holds it"
            raise InvalidInput(f"@{target_alias} does not point at v{version} ({where}).")
    elif operation == Operation.MOVE and (
            target_alias and holder == version or (target_stage and candidate["stage"] == target_stage)):
        raise InvalidInput(f"v{version} already holds {target_stage or '@' + target_alias}.")
    try:
        with transaction.atomic():
            req = PromotionRequest.objects.create(
                model=model, model_name=model.name, version=version, target_stage=target_stage,
                target_alias=target_alias, operation=operation,
                archive_existing=bool(archive_existing) and bool(target_stage) and operation == Operation.MOVE,
                justification=justification, requester=actor, requester_username=actor.get_username(),
                rollback=rollback, urgent=bool(urgent) and rollback, evidence=evidence,
                gate_results=evidence["gates"], emergency=emergency,
            )
            event = audit.record(actor=actor, action="request.created", model=model, version=version, request=req,
                                 before=None, after={**_state_dict(req), "operation": req.operation,
                                                     "rollback": req.rollback, "urgent": req.urgent,
                                                     "gates": evidence["gates"],
                                                     **({"emergency": True} if emergency else {})},
                                 comment=justification, source_ip=source_ip)
            emit(event, subject=req, turn=_turn(req))
            if (evidence.get("validation") or {}).get("status") == "missing":
                _queue_validation(model, version, evidence, trigger=f"request #{req.pk} created", request_id=req.pk,
                                  actor=actor, source_ip=source_ip)
    except IntegrityError:
        raise Conflict(f"An open request for {model.name} -> {label} already exists.") from None
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
    evidence = _evidence_or_refuse(actor=actor, action="approve", model=req.model, model_name=req.model_name,
                                   version=req.version, target_stage=req.target_stage,
                                   target_alias=req.target_alias, rollback=req.rollback, req=req,
                                   source_ip=source_ip)
    validation = evidence.get("validation")
    if validation is not None and validation_refusal(validation):
        # No override: approving rests on a validation the policy requires (missing, running or failed).
        PromotionRequest.objects.filter(pk=req.pk).update(gate_results=evidence["gates"])
        raise PolicyViolation(f"{req.target_label} cannot be approved: {validation_refusal(validation)}.")
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
        # Only approvals given since the last re-approval reset count: earlier ones saw other evidence.
        approvals = req.approvals.filter(superseded_at__isnull=True).count()
        quorum = required_quorum(req)
        after = {"approvals": approvals, "quorum": quorum, "gates": evidence["gates"], "override": bool(failed),
                 "evidence_read_at": evidence["read_at"]}
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
        event = audit.record(actor=actor, action="request.approved", model=req.model_name, version=req.version,
                             request=req, before={"state": RequestState.PENDING, "approvals": approvals - 1},
                             after=after, comment=comment, source_ip=source_ip)
        req.refresh_from_db()
        emit(event, subject=req, turn=_turn(req))
    return req


def _queue_validation(model, version: int, evidence: dict, *, trigger: str, request_id: int | None, actor=None,
                      actor_name: str | None = None, source_ip: str | None = None):
    spec = validation_spec(evidence["policy"]["rules"])
    return validation_run_request(model=model, version=version, spec=spec,
                                  incumbent=evidence["validation"]["incumbent"], trigger=trigger, actor=actor,
                                  actor_name=actor_name, request_id=request_id, source_ip=source_ip)


def promotion_request_validate(*, request_id: int, actor, source_ip: str | None = None):
    """Re-run the validation the policy requires for an open request, now, against the current
    incumbent (audited as validation.requested by the actor). Refused while one is queued or running."""
    req = get_request_for(actor, request_id)
    if not (can(actor, "request", req.model) or can(actor, "approve", req.model)):
        require_perm(actor, "request", req.model)
    if not req.is_open or req.state == RequestState.DEPLOYING:
        raise TransitionNotAllowed(f"A {req.state} request is not validated again.")
    evidence = _evidence_or_refuse(actor=actor, action="validate", model=req.model, model_name=req.model_name,
                                   version=req.version, target_stage=req.target_stage, target_alias=req.target_alias,
                                   rollback=req.rollback, req=req, source_ip=source_ip)
    validation = evidence.get("validation")
    if validation is None:
        raise InvalidInput(f"The policy of {req.model_name} asks for no validation of {req.target_label}.")
    if validation["status"] in (ValidationStatus.QUEUED, ValidationStatus.RUNNING):
        raise Conflict(f"Validation #{validation['run']} is already {validation['status']}.")
    return _queue_validation(req.model, req.version, evidence, trigger=f"re-run on request #{req.pk}",
                             request_id=req.pk, actor=actor, source_ip=source_ip)


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
        event = audit.record(actor=actor, action="request.rejected", model=req.model_name, version=req.version,
                             request=req, before={"state": req.state}, after={"state": RequestState.REJECTED},
                             comment=comment, source_ip=source_ip)
        req.refresh_from_db()
        emit(event, subject=req)
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
        event = audit.record(actor=actor, action="request.cancelled", model=req.model_name, version=req.version,
                             request=req, before={"state": req.state}, after={"state": RequestState.CANCELLED},
                             comment=comment or "", source_ip=source_ip)
        req.refresh_from_db()
        emit(event, subject=req)
    return req


# --------------------------------------------------------------------------------------------------
# Deploy and the outbox
# --------------------------------------------------------------------------------------------------


def _target_view(dep: Deployment, pointers: gateway.ModelPointers) -> dict:
    if dep.kind in ("alias", "unalias"):
        view = {"alias": dep.target, "version": pointers.aliases.get(dep.target)}
    elif dep.kind == "delete":
        view = {"version": dep.version, "exists": dep.version in pointers.stages,
                "stage": pointers.stages.get(dep.version),
                "aliases": sorted(a for a, v in pointers.aliases.items() if v == dep.version)}
    else:
        view = {"stage": dep.target, "holders": pointers.stage_holders(dep.target),
                "candidate_stage": pointers.stages.get(dep.version)}
    return view


def _rollback_of(dep: Deployment) -> dict | None:
    """The rollback alias move this deploy planned with its main move ({"alias", "version", "was"})."""
    return dep.rollback_move or None


def _applied(dep: Deployment, pointers: gateway.ModelPointers) -> bool:
    plan = _rollback_of(dep)
    if plan and pointers.aliases.get(plan["alias"]) != plan["version"]:
        return False
    if dep.kind == "alias":
        return pointers.aliases.get(dep.target) == dep.version
    if dep.kind == "unalias":
        return pointers.aliases.get(dep.target) != dep.version
    if dep.kind == "delete":
        return dep.version not in pointers.stages
    if pointers.stages.get(dep.version) != dep.target:
        return False
    return not dep.archive_existing or pointers.stage_holders(dep.target) == [dep.version]


def _mark_seen(dep: Deployment, pointers: gateway.ModelPointers) -> str:
    return pointers.tags.get(dep.version, {}).get(dep.marker_key, "")


def _landed(dep: Deployment, pointers: gateway.ModelPointers) -> bool:
    """MLflow shows this attempt's write: the target as intended AND the attempt's mark on the
    version (set before the move, so a move without our mark is somebody else's). Rows from before
    attempts were marked are judged by the target alone."""
    if not _applied(dep, pointers):
        return False
    if dep.kind == "delete":
        return True  # the version took its tags with it: its absence is all there is to see
    return not dep.marker or _mark_seen(dep, pointers) == dep.marker


def _evidence(dep: Deployment, pointers: gateway.ModelPointers, *, source: str) -> dict:
    """What was read from MLflow to decide, as it goes into the audit event."""
    return {"read": source, "read_at": timezone.now().isoformat(), "target": _target_view(dep, pointers),
            "mark_expected": dep.marker, "mark_seen": _mark_seen(dep, pointers),
            "mlflow_updated_at": _ms_iso(pointers.updated_ms.get(dep.version))}


def _ms_iso(ms) -> str | None:
    return _ms_time(ms).isoformat() if ms else None


def _ms_time(ms):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC) if ms else None


def _landed_at(dep: Deployment, pointers: gateway.ModelPointers):
    """When the write landed, as MLflow reports it: a stage move sets the version's
    last_updated_timestamp; an alias move leaves no time in MLflow (None: first seen is all we know)."""
    if dep.kind == "stage":
        return _ms_time(pointers.updated_ms.get(dep.version))
    return None


def _mirror_apply(dep: Deployment, pointers: gateway.ModelPointers) -> None:
    """Update the mirror rows this deploy changed, from what MLflow reported. The model's synced_at
    moves to now (after the read), so a sync page read from MLflow before this deploy does not write
    its older state over it (registry_ui.mirror.sync._Writer); the row lock orders the two writers."""
    model = RegisteredModel.objects.select_for_update().filter(name=dep.model_name).first()
    if model is None:
        return
    RegisteredModel.objects.filter(pk=model.pk).update(synced_at=timezone.now())
    plan = _rollback_of(dep)
    touched = [dep.version] + ([plan["version"]] if plan else [])
    for marked in ModelVersion.objects.filter(model=model, version__in=touched):
        if marked.version in pointers.tags and marked.tags != pointers.tags[marked.version]:
            ModelVersion.objects.filter(pk=marked.pk).update(tags=pointers.tags[marked.version])
    if plan:
        ModelAlias.objects.update_or_create(model=model, alias=plan["alias"], defaults={"version": plan["version"]})
    if dep.kind == "alias":
        ModelAlias.objects.update_or_create(model=model, alias=dep.target, defaults={"version": dep.version})
        return
    if dep.kind == "unalias":
        ModelAlias.objects.filter(model=model, alias=dep.target, version=dep.version).delete()
        return
    if dep.kind == "delete":
        ModelAlias.objects.filter(model=model, version=dep.version).delete()
        ModelVersion.objects.filter(model=model, version=dep.version).delete()
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
    if req.operation != Operation.MOVE:
        return ""  # removals and deletions have no tag gates; a deletion's own checks run in the client
    candidate = {**frozen, "tags": current.tags}
    gates = evaluate_gates(model=req.model, candidate=candidate, incumbent=None, target_stage=req.target_stage,
                           target_alias=req.target_alias, rollback=True)
    # A gate that already failed when the request was approved (a break-glass deploy, recorded but not
    # blocking) does not stop it now; one that passed then and fails now does.
    frozen_gates = (req.approval_evidence or req.evidence or {}).get("gates", req.gate_results) or []
    failed_then = {g["gate"] for g in frozen_gates if not g["passed"]} if req.emergency else set()
    tag_failures = [g["detail"] for g in failing(gates) if g["gate"].startswith("tag:")
                    and g["gate"] not in failed_then]
    if tag_failures:
        return "The candidate's tags changed in MLflow after approval: " + "; ".join(tag_failures)
    return ""


# Who may settle an attempt's outcome. The attempt holding the lease settles its own (holder=the
# attempt number it claimed); anyone else (the resolver, the sync) only an attempt nobody holds: the
# request failed, or its deployer's lease ran out.
def _unheld(dep: Deployment, *, stale_before=None) -> Q:
    now = timezone.now()
    expired = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now)
    if stale_before is not None:
        expired |= Q(lease_started_at__lte=stale_before)
    return Q(state=RequestState.FAILED) | (Q(state=RequestState.DEPLOYING, deploy_attempt=dep.attempt) & expired)


def _held(attempt: int) -> Q:
    return Q(state=RequestState.DEPLOYING, deploy_attempt=attempt)


def _record_success(dep: Deployment, pointers: gateway.ModelPointers, *, guard: Q, actor=None,
                    actor_name: str | None = None, comment: str = "", before: dict | None = None,
                    evidence: dict | None = None, mirror: bool = True, extra: dict | None = None) -> bool:
    """The attempt's write is in MLflow: the outbox entry succeeds (also one decided 'not applied'
    earlier whose write landed late), the request is deployed when `guard` still holds for it, and
    one deploy.succeeded event says when it landed and what was read. False: already recorded."""
    now = timezone.now()
    landed = _landed_at(dep, pointers)
    late = dep.state == DeploymentState.FAILED
    with transaction.atomic():
        updated = Deployment.objects.filter(pk=dep.pk, state__in=[DeploymentState.PENDING, DeploymentState.FAILED]
                                            ).update(state=DeploymentState.SUCCEEDED, after=_target_view(dep, pointers),
                                                     landed_at=landed or now, completed_at=now, error="",
                                                     **({"before": before} if before is not None else {}))
        if updated != 1:
            return False
        # One step of a retention batch: the batch's deployer finishes the request after its last step.
        batch = PromotionRequest.objects.filter(pk=dep.request_id, operation=Operation.RETENTION).exists()
        moved = 0 if batch else PromotionRequest.objects.filter(guard, pk=dep.request_id).update(
            state=RequestState.DEPLOYED, deployed_by=dep.actor_username, deployed_at=landed or now, error="",
            updated_at=now)
        if mirror:
            _mirror_apply(dep, pointers)
        request_state = PromotionRequest.objects.filter(pk=dep.request_id).values_list("state", flat=True).first()
        after = {"state": request_state, **_target_view(dep, pointers), "deployment": dep.pk,
                 "attempt": dep.attempt, "landed_at": (landed or now).isoformat(),
                 "landed_at_source": "MLflow's version timestamp" if landed else "first seen (MLflow keeps no "
                                                                                  "time for an alias move)"}
        if late:
            after["landed_late"] = True
        if dep.rollback_move:
            after["rollback"] = {**dep.rollback_move, "now": pointers.aliases.get(dep.rollback_move["alias"])}
        if evidence is not None:
            after["evidence"] = evidence
        after.update(extra or {})
        if not moved and not batch and request_state != RequestState.DEPLOYED:
            comment = (comment + " " if comment else "") + f"(the request is {request_state}; left as it is)"
        event = audit.record(actor=actor, actor_name=actor_name, action="deploy.succeeded", model=dep.model_name,
                             version=dep.version, request=dep.request_id,
                             before=before if before is not None else dep.before, after=after, comment=comment)
        emit(event, subject=PromotionRequest.objects.filter(pk=dep.request_id).select_related("requester").first())
    return True


def _record_not_applied(dep: Deployment, error: str, *, guard: Q, evidence: dict, actor=None,
                        actor_name: str | None = None) -> bool:
    """Decided from MLflow's state: this attempt's write is not there. The outbox entry fails, a request
    left 'deploying' by a dead deployer becomes 'failed' (retryable); one deploy.not_applied event.
    Should the write still land later, its mark makes it recognised as this deploy (_record_success)."""
    now = timezone.now()
    with transaction.atomic():
        before_state = PromotionRequest.objects.filter(pk=dep.request_id).values_list("state", flat=True).first()
        # Touch the row under the guard: the lock orders this decision with a deployer claiming it.
        if PromotionRequest.objects.filter(guard, pk=dep.request_id).update(updated_at=now) != 1:
            return False
        if Deployment.objects.filter(pk=dep.pk, state=DeploymentState.PENDING).update(
                state=DeploymentState.FAILED, error=error, completed_at=now) != 1:
            return False
        after_state = before_state
        if before_state == RequestState.DEPLOYING and dep.attempt == PromotionRequest.objects.get(
                pk=dep.request_id).deploy_attempt:
            PromotionRequest.objects.filter(pk=dep.request_id, state=RequestState.DEPLOYING).update(
                state=RequestState.FAILED, error=error, updated_at=now)
            after_state = RequestState.FAILED
        audit.record(actor=actor, actor_name=actor_name, action="deploy.not_applied", model=dep.model_name,
                     version=dep.version, request=dep.request_id, before={"state": before_state},
                     after={"state": after_state, "deployment": dep.pk, "attempt": dep.attempt,
                            "decision": "not applied", "error": error, "evidence": evidence})
    return True


def _attempt_failed(req: PromotionRequest, error: str, *, dep: Deployment | None, confirmed_not_applied: bool,
                    actor) -> None:
    """The attempt holding the lease ends in failure: the request is 'failed' (retryable), the lease is
    released. An outbox entry whose write may have landed stays pending for the resolver."""
    now = timezone.now()
    kind, target = req.deploy_kind_target
    with transaction.atomic():
        claimed = PromotionRequest.objects.filter(_held(req.deploy_attempt), pk=req.pk).update(
            state=RequestState.FAILED, error=error, lease_expires_at=now, updated_at=now)
        if dep is None and kind == "batch":  # a retention batch stopped between its steps
            if claimed != 1:
                return
        elif dep is None:  # refused before the write: the attempt is still on record, as sending nothing
            if claimed != 1:
                return
            dep = Deployment.objects.create(request=req, model_name=req.model_name, version=req.version, kind=kind,
                                            target=target, archive_existing=req.archive_existing,
                                            actor_username=req.lease_holder, attempt=req.deploy_attempt,
                                            state=DeploymentState.FAILED, error=error, completed_at=now)
        elif confirmed_not_applied:
            Deployment.objects.filter(pk=dep.pk, state=DeploymentState.PENDING).update(
                state=DeploymentState.FAILED, error=error, completed_at=now)
        else:
            Deployment.objects.filter(pk=dep.pk).update(error=error)
        if claimed == 1:
            event = audit.record(
                actor=actor, action="deploy.failed", model=req.model_name, version=req.version, request=req,
                before={"state": RequestState.DEPLOYING},
                after={"state": RequestState.FAILED, "error": error, "attempt": req.deploy_attempt,
                       "deployment": dep.pk if dep is not None else None,
                       "write_outcome": "not applied" if confirmed_not_applied else "unknown"})
            emit(event, subject=req)


def _claim_attempt(req: PromotionRequest, actor, *, comment: str, source_ip: str | None) -> PromotionRequest:
    """Claim the next deploy attempt: a compare-and-set on (state, attempt) in a transaction of its
    own, committed before MLflow is called, so of any number of concurrent clicks exactly one holds
    the lease and the others are told who does."""
    now = timezone.now()
    attempt = req.deploy_attempt + 1
    lease = timedelta(seconds=settings.WORKFLOW_OUTBOX_STALE_SECONDS)
    claimable = Q(state__in=[RequestState.APPROVED, RequestState.FAILED]) | (
        Q(state=RequestState.DEPLOYING) & (Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now)))
    with transaction.atomic(durable=True):
        claimed = PromotionRequest.objects.filter(claimable, pk=req.pk, state=req.state,
                                                  deploy_attempt=req.deploy_attempt).update(
            state=RequestState.DEPLOYING, deploy_attempt=attempt, lease_holder=actor.get_username(),
            lease_started_at=now, lease_expires_at=now + lease, error="", updated_at=now)
        if claimed != 1:
            current = PromotionRequest.objects.get(pk=req.pk)
            if current.lease_live(timezone.now()):
                raise Conflict(deploy_in_progress(current))
            raise TransitionNotAllowed(f"Someone else changed this request first (it is now {current.state}).")
        kind, target = req.deploy_kind_target
        audit.record(actor=actor, action="deploy.started", model=req.model_name, version=req.version, request=req,
                     before={"state": req.state, "attempt": req.deploy_attempt},
                     after={"state": RequestState.DEPLOYING, "kind": kind, "target": target, "attempt": attempt,
                            "lease_expires_at": (now + lease).isoformat()},
                     comment=comment, source_ip=source_ip)
    req.refresh_from_db()
    return req


def _settle_earlier_attempts(req: PromotionRequest, pointers: gateway.ModelPointers, actor) -> bool:
    """Before this attempt writes, account for the earlier ones from what MLflow shows: an earlier
    attempt whose write is there (its mark on the version, the target as intended) is the success,
    and nothing is sent again; one still unresolved and not there is recorded as not applied.
    True when an earlier attempt turned out to have landed."""
    kind, target = req.deploy_kind_target
    marked = parse_marker(pointers.tags.get(req.version, {}).get(marker_key(kind, target)))
    earlier = req.deployments.exclude(state=DeploymentState.SUCCEEDED).filter(attempt__lt=req.deploy_attempt)
    for dep in earlier.order_by("-attempt", "-id"):
        if (dep.pk == marked or dep.attempt == 0 or dep.kind == "delete") and _landed(dep, pointers):
            return _record_success(dep, pointers, guard=_held(req.deploy_attempt), actor=actor,
                                   evidence=_evidence(dep, pointers, source=f"MLflow read before attempt "
                                                                            f"{req.deploy_attempt}"),
                                   comment="An earlier attempt's write is in MLflow; nothing was sent again.")
    for dep in earlier.filter(state=DeploymentState.PENDING):
        _record_not_applied(dep, dep.error or "Not in MLflow when the next attempt read it.", guard=_held(
            req.deploy_attempt), evidence=_evidence(dep, pointers, source=f"MLflow read before attempt "
                                                                          f"{req.deploy_attempt}"), actor=actor)
    return False


def _evidence_at_deploy(req: PromotionRequest, actor, *, comment: str, source_ip: str | None) -> dict | None:
    """Read the evidence from MLflow again before anything is claimed or written, and compare it with
    what was frozen at approval. A gate that passed then and fails now sends the request back for
    re-approval (Conflict). Otherwise returns the comparison, which goes into the deploy's success
    event. None: settling an earlier attempt showed that its write is in MLflow (the request is deployed)."""
    fresh = _evidence_or_refuse(actor=actor, action="deploy", model=req.model, model_name=req.model_name,
                                version=req.version, target_stage=req.target_stage, target_alias=req.target_alias,
                                rollback=req.rollback, req=req, source_ip=source_ip)
    frozen = req.approval_evidence or req.evidence or {}
    changes = evidence_changes(frozen, fresh)
    now_failing = newly_failing(frozen.get("gates", req.gate_results), fresh["gates"])
    comparison = {"read_at": fresh["read_at"], "approved_on": frozen.get("read_at") or frozen.get("captured_at"),
                  "changes": changes, "gates": fresh["gates"]}
    if not now_failing:
        return comparison
    if (fresh.get("validation") or {}).get("status") == "missing":
        # The evidence changed (another incumbent, another policy): validate again for the re-approval.
        _queue_validation(req.model, req.version, fresh, trigger=f"deploy of request #{req.pk}: evidence changed",
                          request_id=req.pk, actor_name="system:validation")
    if req.state != RequestState.APPROVED:
        # An earlier attempt may have written MLflow: settle it from MLflow's state before the approval
        # is undone, so a write that landed is recorded as the deploy it was.
        resolve_outbox(request_id=req.pk)
        req.refresh_from_db()
        if req.state == RequestState.DEPLOYED:
            return None
        if req.deployments.filter(state=DeploymentState.PENDING).exists():
            raise Conflict("A gate now fails on MLflow's evidence, but whether the last deploy attempt landed "
                           "is unknown (MLflow could not be read back); deploy again once MLflow answers.")
    _require_reapproval(req, actor, fresh=fresh, frozen=frozen, changes=changes, now_failing=now_failing,
                        comment=comment, source_ip=source_ip)
    return None  # not reached: _require_reapproval raises


def _require_reapproval(req: PromotionRequest, actor, *, fresh: dict, frozen: dict, changes: list[dict],
                        now_failing: list[dict], comment: str, source_ip: str | None) -> None:
    """Back to pending with the approvals superseded (kept on record, no longer counted), one
    request.reapproval_required event whose before/after hold what changed and which gates now fail.
    Nothing was claimed and nothing was sent to MLflow. Always raises Conflict."""
    now = timezone.now()
    frozen_gates = {g["gate"]: g for g in frozen.get("gates") or req.gate_results or []}
    failing_gates = [{"gate": g["gate"], "detail": g["detail"]} for g in now_failing]
    with transaction.atomic():
        live = list(req.approvals.filter(superseded_at__isnull=True).values_list("approver_username", flat=True))
        record = {"required_at": now.isoformat(), "by": actor.get_username(), "changes": changes,
                  "failing_gates": failing_gates, "evidence_read_at": fresh["read_at"],
                  "superseded_approvals": live, "superseded_evidence": frozen}
        moved = PromotionRequest.objects.filter(pk=req.pk, state=req.state, deploy_attempt=req.deploy_attempt).exclude(
            deployments__state=DeploymentState.PENDING).update(
            state=RequestState.PENDING, gate_results=fresh["gates"], reapproval=record, override=False,
            decided_by="", decision_comment="", error="", updated_at=now)
        if moved != 1:
            current = PromotionRequest.objects.get(pk=req.pk)
            if current.lease_live(timezone.now()):
                raise Conflict(deploy_in_progress(current))
            raise TransitionNotAllowed(f"Someone else changed this request first (it is now {current.state}).")
        Approval.objects.filter(request_id=req.pk, superseded_at__isnull=True).update(superseded_at=now)
        event = audit.record(actor=actor, action="request.reapproval_required", model=req.model_name,
                     version=req.version, request=req,
                     before={"state": req.state, "approvals": live,
                             "evidence": {c["what"]: c["old"] for c in changes},
                             "gates": {g["gate"]: frozen_gates.get(g["gate"]) for g in failing_gates},
                             "evidence_read_at": frozen.get("read_at") or frozen.get("captured_at")},
                     after={"state": RequestState.PENDING, "approvals": [],
                            "evidence": {c["what"]: c["new"] for c in changes},
                            "gates": {g["gate"]: {"passed": False, "detail": g["detail"]} for g in failing_gates},
                            "evidence_read_at": fresh["read_at"], "changes": changes},
                     comment=comment, source_ip=source_ip)
        req.refresh_from_db()
        emit(event, subject=req, turn=_turn(req))  # the approvers' turn again
    why = "; ".join(g["detail"] for g in failing_gates)
    changed = "; ".join(f"{c['what']} {c['old']!r} -> {c['new']!r}" for c in changes) or "the policy's rules"
    raise Conflict(f"Not deployed: a policy gate now fails on MLflow's current evidence ({why}). The request is "
                   f"back to pending and needs re-approval. Changed since approval: {changed}.")


def promotion_request_deploy(*, request_id: int, actor, comment: str = "",
                             source_ip: str | None = None) -> PromotionRequest:
    req = get_request_for(actor, request_id)
    _raise_if_refused(actor, req, "deploy")
    if req.operation == Operation.RETENTION:
        return _deploy_batch(req, actor, comment=comment, source_ip=source_ip)
    comparison = _evidence_at_deploy(req, actor, comment=comment, source_ip=source_ip)
    if comparison is None:
        req.refresh_from_db()
        return req
    req = _claim_attempt(req, actor, comment=comment, source_ip=source_ip)
    # This attempt holds the lease: it alone writes MLflow for this request until it ends or expires.
    kind, target = req.deploy_kind_target
    try:
        current = gateway.read_version(req.model_name, req.version)
        pointers = gateway.read_model_pointers(req.model_name)
    except gateway.MlflowUnavailable as exc:
        _attempt_failed(req, f"Nothing sent: MLflow could not be read ({exc})", dep=None,
                        confirmed_not_applied=True, actor=actor)
        raise DeployFailed(f"Deploy failed, the request is now 'failed' and can be retried: {exc}") from exc
    if _settle_earlier_attempts(req, pointers, actor):
        req.refresh_from_db()
        return req
    problem = _candidate_problem(req, current)
    if problem:
        _attempt_failed(req, problem, dep=None, confirmed_not_applied=True, actor=actor)
        raise Conflict(problem)
    with transaction.atomic():
        # The intent, in the outbox before the write, under this attempt's lease.
        if not PromotionRequest.objects.filter(_held(req.deploy_attempt), pk=req.pk,
                                               lease_expires_at__gt=timezone.now()).update(updated_at=timezone.now()):
            raise TransitionNotAllowed("This deploy attempt's lease ran out before MLflow was written; "
                                       "nothing was sent. Deploy again.")
        dep = Deployment.objects.create(request=req, model_name=req.model_name, version=req.version, kind=kind,
                                        target=target, archive_existing=req.archive_existing,
                                        actor_username=actor.get_username(), attempt=req.deploy_attempt)
        before = _target_view(dep, pointers)
        dep.rollback_move = _rollback_plan(req, kind, target, pointers)
        Deployment.objects.filter(pk=dep.pk).update(before=before, rollback_move=dep.rollback_move,
                                                    sent_at=timezone.now())
    try:
        _write(dep, pointers)
    except gateway.WriteRefused as exc:
        _attempt_failed(req, str(exc), dep=dep, confirmed_not_applied=True, actor=actor)
        raise Conflict(f"Not deployed: {exc}. The request is now 'failed'.") from exc
    except gateway.WriteOutcomeUnknown as exc:
        _attempt_failed(req, str(exc), dep=dep, confirmed_not_applied=False, actor=actor)
        raise DeployFailed(f"Deploy failed, the request is now 'failed' and can be retried: {exc}") from exc
    except gateway.MlflowUnavailable as exc:
        _attempt_failed(req, str(exc), dep=dep, confirmed_not_applied=True, actor=actor)
        raise DeployFailed(f"Deploy failed, the request is now 'failed' and can be retried: {exc}") from exc
    try:
        after_pointers = gateway.read_model_pointers(req.model_name)
        if not _landed(dep, after_pointers):
            raise gateway.MlflowUnavailable("MLflow does not show the change after the write.")
    except gateway.MlflowUnavailable as exc:
        _attempt_failed(req, f"Written, not confirmed: {exc}", dep=dep, confirmed_not_applied=False, actor=actor)
        raise DeployFailed(f"Deploy failed, the request is now 'failed' and can be retried: {exc}") from exc
    written = _write_back_tags(req, dep, after_pointers)
    extra = {"evidence_since_approval": comparison, "tags_written": written}
    if req.emergency:
        extra["emergency"] = True
    _record_success(dep, after_pointers, guard=_held(req.deploy_attempt), actor=actor, comment=comment,
                    before=before, extra=extra)
    req.refresh_from_db()
    return req


def _rollback_plan(req: PromotionRequest, kind: str, target: str, pointers: gateway.ModelPointers) -> dict | None:
    """When this deploy replaces the holder of Production or a protected alias, the previous holder
    takes the policy's rollback alias in the same step: {"alias", "version", "was"}. Not for a
    rollback itself (the version it replaces is the one rolled back from, not a known-good one)."""
    if req.rollback or kind not in ("stage", "alias"):
        return None
    if kind == "stage" and target != "Production":
        return None
    if kind == "alias" and not is_production_like(target_alias=target):
        return None
    alias = effective_policy(req.model).get("rollback_alias") or ""
    if not alias or canonical_name(alias) == canonical_name(target):
        return None
    if kind == "alias":
        previous = pointers.aliases.get(target)
    else:
        previous = max((v for v in pointers.stage_holders(target) if v != req.version), default=None)
    if previous is None or previous == req.version:
        return None
    return {"alias": alias, "version": previous, "was": pointers.aliases.get(alias)}


def _write(dep: Deployment, pointers: gateway.ModelPointers) -> None:
    """The attempt's MLflow writes, each marked with the attempt: first the rollback alias (it names
    the version that holds the target until the main move lands, so it is true whatever happens
    next), then the move itself. Every write is idempotent on a retry."""
    marker = (dep.marker_key, dep.marker)
    plan = _rollback_of(dep)
    if plan:
        gateway.deploy_rollback_alias(dep.model_name, plan["alias"], plan["version"], current=pointers,
                                      marker=(marker_key("alias", plan["alias"]), dep.marker))
    if dep.kind == "alias":
        gateway.deploy_alias(dep.model_name, dep.target, dep.version, current=pointers, marker=marker)
    elif dep.kind == "unalias":
        gateway.deploy_unalias(dep.model_name, dep.target, dep.version, current=pointers, marker=marker)
    elif dep.kind == "delete":
        gateway.deploy_delete(dep.model_name, dep.version)
    else:
        gateway.deploy_stage(dep.model_name, dep.version, dep.target, archive_existing=dep.archive_existing,
                             current=pointers, marker=marker)


# Version tags the console writes back to MLflow, so MLflow's own users see what governance decided.
WRITE_BACK_PREFIXES = ("promoted_to_", "demoted_to_", "removed_from_")
# `governance.emergency` marks a break-glass deploy; the sync accepts it only from an emergency request.
EMERGENCY_TAG = "governance.emergency"
WRITE_BACK_KEYS = ("approved_by", "governance.request", "retention.archived_at", EMERGENCY_TAG)


def write_back_tags(req: PromotionRequest, *, now=None) -> dict[str, str]:
    """The tags a deploy of `req` writes on its version: `promoted_to_<target>` (or demoted_to_ /
    removed_from_) with the time, `approved_by` (the approvers), `governance.request` (a link), and
    `governance.emergency` (who broke the glass, why) for a break-glass deploy."""
    now = now or timezone.now()
    if req.operation == Operation.REMOVE_ALIAS:
        key = f"removed_from_{req.target_alias}"
    elif req.target_stage and is_demotion(target_stage=req.target_stage,
                                          candidate=(req.approval_evidence or req.evidence or {}).get("candidate")):
        key = f"demoted_to_{req.target_stage.lower()}"
    else:
        key = f"promoted_to_{(req.target_stage or req.target_alias).lower()}"
    approvers = sorted(set(req.approvals.filter(superseded_at__isnull=True).values_list("approver_username",
                                                                                        flat=True)))
    tags = {key: now.isoformat(timespec="seconds"), "approved_by": ",".join(approvers) or "(none)",
            "governance.request": _request_link(req)}
    if req.emergency:
        tags[EMERGENCY_TAG] = f"break-glass by {req.requester_username}: {req.justification}"[:500]
    return tags


def _write_back_late(dep: Deployment, pointers: gateway.ModelPointers) -> dict:
    """The write-back tags of a deploy whose success is recorded by the resolver (not for the steps of
    a retention batch, whose deployer writes them as it goes)."""
    req = PromotionRequest.objects.filter(pk=dep.request_id).first()
    if req is None or req.operation == Operation.RETENTION:
        return {}
    return _write_back_tags(req, dep, pointers)


def _request_link(req: PromotionRequest) -> str:
    from django.urls import reverse

    return settings.CONSOLE_BASE_URL + reverse("governance:request_detail", kwargs={"pk": req.pk})


def _write_back_tags(req: PromotionRequest, dep: Deployment, pointers: gateway.ModelPointers, *,
                     version: int | None = None, tags: dict | None = None) -> dict:
    """Write the tags after the move landed (a failed attempt never leaves a "promoted" tag behind);
    the mirror takes them with the success, so the next sync sees nothing new. A failure here does
    not undo the deploy: the success event says which tags could not be written."""
    if dep.kind == "delete":
        return {}
    version = req.version if version is None else version
    tags = tags or write_back_tags(req)
    try:
        gateway.set_version_tags(req.model_name, version, tags)
    except gateway.MlflowUnavailable as exc:
        return {"error": str(exc), "tags": tags}
    pointers.tags.setdefault(version, {}).update(tags)
    return tags


def resolve_deployment(dep: Deployment, *, actor_name: str = "system:outbox", stale_before=None,
                       errors: list[str] | None = None) -> str:
    """Settle one unresolved outbox entry by reading MLflow: 'succeeded', 'failed' or 'unreachable'.
    Every decision, "still unknown" included, is an audit event naming what was read."""
    where = gateway.tracking_uri()
    guard = _unheld(dep, stale_before=stale_before)
    try:
        pointers = gateway.read_model_pointers(dep.model_name)
    except gateway.MlflowUnavailable as exc:
        if errors is not None:
            errors.append(str(exc))
        with transaction.atomic():
            if not PromotionRequest.objects.filter(guard, pk=dep.request_id).update(updated_at=timezone.now()):
                return "skipped"
            audit.record(actor_name=actor_name, action="deploy.outcome_unknown", model=dep.model_name,
                         version=dep.version, request=dep.request_id,
                         after={"deployment": dep.pk, "attempt": dep.attempt, "decision": "still unknown",
                                "evidence": {"read": f"versions and aliases of {dep.model_name} at {where}",
                                             "error": str(exc)}})
        return "unreachable"
    evidence = _evidence(dep, pointers, source=f"versions and aliases of {dep.model_name} at {where}")
    if _landed(dep, pointers):
        # The deployer never got to write the tags back: the resolver does (it may call MLflow; the
        # sync, which credits late landings inside its transaction, does not).
        written = _write_back_late(dep, pointers) if dep.state != DeploymentState.SUCCEEDED else {}
        done = _record_success(dep, pointers, guard=guard, actor_name=actor_name, evidence=evidence,
                               comment="Resolved from MLflow's state: the write is there.",
                               extra={"tags_written": written} if written else None)
        return "succeeded" if done else "skipped"
    if _applied(dep, pointers):
        why = (f"MLflow shows the target as intended but without this attempt's mark "
               f"({evidence['mark_seen'] or 'no mark'}): not this deploy's write.")
    else:
        why = dep.error or "Interrupted; MLflow shows no change."
    done = _record_not_applied(dep, why, guard=guard, evidence=evidence, actor_name=actor_name)
    return "failed" if done else "skipped"


def resolve_outbox(*, request_id: int | None = None, stale_seconds: int | None = None,
                   errors: list[str] | None = None) -> dict[str, int]:
    """Resolve outbox entries whose outcome is unknown: those of failed requests, and those of
    requests left 'deploying' by a deployer whose lease expired (or that started more than
    stale_seconds ago, when given). `errors` collects why MLflow could not be read."""
    stale_before = timezone.now() - timedelta(seconds=stale_seconds) if stale_seconds is not None else None
    now = timezone.now()
    pending = Deployment.objects.filter(state=DeploymentState.PENDING)
    if request_id is not None:
        pending = pending.filter(request_id=request_id)
    expired = Q(request__lease_expires_at__isnull=True) | Q(request__lease_expires_at__lte=now)
    if stale_before is not None:
        expired |= Q(request__lease_started_at__lte=stale_before)
    pending = pending.filter(Q(request__state=RequestState.FAILED) | (Q(request__state=RequestState.DEPLOYING)
                                                                      & expired))
    counts = {"succeeded": 0, "failed": 0, "unreachable": 0}
    for dep in pending.order_by("id"):
        outcome = resolve_deployment(dep, stale_before=stale_before, errors=errors)
        if outcome in counts:
            counts[outcome] += 1
    stalled = PromotionRequest.objects.filter(
        Q(state=RequestState.DEPLOYING) & (Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now) | (
            Q(lease_started_at__lte=stale_before) if stale_before is not None else Q(pk__in=[]))))
    if request_id is not None:
        stalled = stalled.filter(pk=request_id)
    for req in stalled.order_by("id"):
        if _release_unsent(req):
            counts["failed"] += 1
    return counts


def _release_unsent(req: PromotionRequest) -> bool:
    """An attempt that died before it recorded its intent sent nothing (the intent is committed
    before the write): the request becomes 'failed' (retryable), one deploy.not_applied event."""
    now = timezone.now()
    started = req.lease_started_at.isoformat() if req.lease_started_at else "?"
    with transaction.atomic():
        if req.deployments.filter(attempt=req.deploy_attempt).exists():
            return False  # it has an outbox entry: resolved from MLflow's state above
        moved = PromotionRequest.objects.filter(pk=req.pk, state=RequestState.DEPLOYING,
                                                deploy_attempt=req.deploy_attempt,
                                                lease_started_at=req.lease_started_at).update(
            state=RequestState.FAILED, error="The deploy was interrupted before it wrote to MLflow.", updated_at=now)
        if moved != 1:
            return False
        audit.record(actor_name="system:outbox", action="deploy.not_applied", model=req.model_name,
                     version=req.version, request=req, before={"state": RequestState.DEPLOYING},
                     after={"state": RequestState.FAILED, "attempt": req.deploy_attempt, "deployment": None,
                            "decision": "not applied",
                            "evidence": {"read": "the deploy outbox", "read_at": now.isoformat(),
                                         "finding": f"attempt {req.deploy_attempt} (lease of {req.lease_holder}, "
                                                    f"started {started}) recorded no write intent, so sent nothing"}})
    return True


def credit_late_landing(dep: Deployment, *, pointers: gateway.ModelPointers, seen_at,
                        actor_name: str = "system:sync") -> bool:
    """A change the sync saw is this attempt's write, landed after the console stopped waiting for it
    (its mark is on the version): record it as the deploy's success. The sync has written the mirror
    already (mirror=False). Not while a deployer holds the lease: it records its own outcome."""
    seen = _evidence(dep, pointers, source=f"registry sync, seen at {seen_at.isoformat()}")
    credited = _record_success(dep, pointers, guard=_unheld(dep), actor_name=actor_name, mirror=False, evidence=seen,
                               comment="The console's own write, seen in MLflow by the sync.")
    if credited:
        # The deployer never wrote the tags back, and the sync does not call MLflow inside its
        # transaction: a task writes them once the credit is committed.
        transaction.on_commit(partial(_enqueue_late_write_back, dep.pk))
    return credited


def _enqueue_late_write_back(deployment_id: int) -> None:
    write_back_late_landing_task.enqueue(deployment_id)


def write_back_late_landing(*, deployment_id: int, actor_name: str = "system:sync") -> dict:
    """The write-back tags of a deploy the sync credited: MLflow's tags of the version are read first
    and only the keys it lacks are written (none when they are there, so a re-run never writes them
    twice); what was written is one deploy.tags_written event. MLflow down: MlflowUnavailable."""
    dep = Deployment.objects.filter(pk=deployment_id, state=DeploymentState.SUCCEEDED).first()
    req = dep and PromotionRequest.objects.filter(pk=dep.request_id).first()
    if req is None or req.operation == Operation.RETENTION or dep.kind == "delete":
        return {}
    tags = write_back_tags(req)
    current = gateway.read_version(req.model_name, req.version)
    if current is None:
        return {}
    missing = {key: value for key, value in tags.items() if key not in current.tags}
    if not missing:
        return {}
    gateway.set_version_tags(req.model_name, req.version, missing)
    with transaction.atomic():
        ModelVersion.objects.filter(model__name=req.model_name, version=req.version).update(
            tags={**current.tags, **missing})
        audit.record(actor_name=actor_name, action="deploy.tags_written", model=req.model_name, version=req.version,
                     request=req.pk, after={"deployment": dep.pk, "tags_written": missing},
                     comment="Tags of a deploy whose write landed late, written once the sync credited it.")
    return missing


@task()
def write_back_late_landing_task(deployment_id: int) -> dict:
    """The tags of a deploy the sync credited late (enqueued when the credit commits). MLflow down: the
    task fails (Operations page) and writes nothing; enqueued again, it writes only what is missing."""
    return {"outcome": "done", "tags_written": write_back_late_landing(deployment_id=deployment_id)}


def pointers_from_mirror(model_name: str) -> gateway.ModelPointers:
    """The model's stages, aliases and version tags as the sync just wrote them from MLflow."""
    versions = ModelVersion.objects.filter(model__name=model_name)
    return gateway.ModelPointers(
        aliases=dict(ModelAlias.objects.filter(model__name=model_name).values_list("alias", "version")),
        stages={v.version: v.stage for v in versions},
        tags={v.version: dict(v.tags or {}) for v in versions},
        updated_ms={v.version: int(v.updated_at.timestamp() * 1000) if v.updated_at else None for v in versions})


# --------------------------------------------------------------------------------------------------
# Retention: one request per batch, one Deployment and one audit event per version it touches
# --------------------------------------------------------------------------------------------------


def retention_dry_run(*, user, model_name: str) -> dict:
    """What a retention batch would touch now, from the mirror (no MLflow call: anyone who may see the
    model may look). The proposal itself re-reads MLflow."""
    from governance.workflow.policies import retention_plan

    model = visible_models(user, RegisteredModel.objects.all()).filter(name=model_name).first()
    if model is None:
        raise NotFound(f"No registered model {model_name!r}.")
    policy = effective_policy(model)
    aliases: dict[int, list[str]] = {}
    for alias, version in ModelAlias.objects.filter(model=model).values_list("alias", "version"):
        aliases.setdefault(version, []).append(alias)
    versions = [{"version": v.version, "stage": v.stage, "aliases": sorted(aliases.get(v.version, [])),
                 "updated_ms": int(v.updated_at.timestamp() * 1000) if v.updated_at else None}
                for v in ModelVersion.objects.filter(model=model)]
    keep, days = int(policy.get("retention_keep") or 0), int(policy.get("delete_after_days") or 0)
    return {"model": model, "keep": keep, "delete_after_days": days,
            "plan": retention_plan(versions, keep=keep, delete_after_days=days),
            "open_batch": PromotionRequest.objects.filter(model=model, operation=Operation.RETENTION,
                                                          state__in=OPEN_STATES).first()}


RETENTION_PROPOSER = "system:retention"


def retention_request_propose(*, model_name: str, actor=None, source_ip: str | None = None) -> PromotionRequest | None:
    """Propose the model's retention batch as one request listing every version it would touch, from
    MLflow's state read now. actor=None: the console proposes it (the scheduler); a person proposing
    needs the request permission. None when nothing is due."""
    qs = RegisteredModel.objects.all() if actor is None else visible_models(actor, RegisteredModel.objects.all())
    model = qs.filter(name=model_name).first()
    if model is None:
        raise NotFound(f"No registered model {model_name!r}.")
    if actor is not None:
        require_perm(actor, "request", model)
    if PromotionRequest.objects.filter(model=model, operation=Operation.RETENTION, state__in=OPEN_STATES).exists():
        raise Conflict(f"A retention batch for {model.name} is open already.")
    try:
        evidence = fresh_evidence(model=model, model_name=model.name, version=0, operation=Operation.RETENTION)
    except EvidenceUnavailable:
        raise
    plan = evidence["plan"]
    if not plan:
        return None
    evidence["gates"] = [{"gate": "retention:still_due", "passed": True, "detail": "every listed version is due"}]
    name = actor.get_username() if actor is not None else RETENTION_PROPOSER
    justification = (f"Retention policy: keep the newest {evidence['policy']['rules'].get('retention_keep')} "
                     f"unprotected versions, delete archived ones after "
                     f"{evidence['policy']['rules'].get('delete_after_days')} days. "
                     + ", ".join(f"v{s['version']} {s['action']}" for s in plan) + ".")
    try:
        with transaction.atomic():
            req = PromotionRequest.objects.create(
                model=model, model_name=model.name, version=0, operation=Operation.RETENTION, plan=plan,
                justification=justification, requester=actor, requester_username=name, evidence=evidence,
                gate_results=evidence["gates"])
            event = audit.record(actor=actor, actor_name=name, action="request.created", model=model, request=req,
                                 after={"state": req.state, "operation": req.operation, "plan": plan},
                                 comment=justification, source_ip=source_ip)
            emit(event, subject=req, turn=_turn(req))
    except IntegrityError:
        raise Conflict(f"A retention batch for {model.name} is open already.") from None
    return req


def _deploy_batch(req: PromotionRequest, actor, *, comment: str, source_ip: str | None) -> PromotionRequest:
    """Apply a retention batch under one deploy attempt: each listed version's change is its own
    Deployment (intent, marked write, read-back, success) and its own audit event, one after another,
    through the same outbox as every deploy. Before each write MLflow is read again: a version that
    now holds Staging, Production or an alias is skipped (an event says so), never touched. A retry
    settles earlier steps from MLflow and goes on with the rest."""
    from governance.workflow.policies import protected_now

    req = _claim_attempt(req, actor, comment=comment, source_ip=source_ip)
    try:
        pointers = gateway.read_model_pointers(req.model_name)
    except gateway.MlflowUnavailable as exc:
        _attempt_failed(req, f"Nothing sent: MLflow could not be read ({exc})", dep=None,
                        confirmed_not_applied=True, actor=actor)
        raise DeployFailed(f"Deploy failed, the request is now 'failed' and can be retried: {exc}") from exc
    for earlier in req.deployments.filter(state=DeploymentState.PENDING):
        source = f"MLflow read before attempt {req.deploy_attempt}"
        if _landed(earlier, pointers):
            _record_success(earlier, pointers, guard=_held(req.deploy_attempt), actor=actor,
                            evidence=_evidence(earlier, pointers, source=source),
                            comment="An earlier attempt's write is in MLflow; nothing was sent again.")
        else:
            _record_not_applied(earlier, earlier.error or "Not in MLflow when the next attempt read it.",
                                guard=_held(req.deploy_attempt), evidence=_evidence(earlier, pointers, source=source),
                                actor=actor)
    done = set(req.deployments.filter(state=DeploymentState.SUCCEEDED).values_list("version", "kind"))
    skipped = []
    for step in req.plan:
        version = int(step["version"])
        kind, target = ("stage", "Archived") if step["action"] == "archive" else ("delete", "version")
        if (version, kind) in done:
            continue
        try:
            pointers = gateway.read_model_pointers(req.model_name)
        except gateway.MlflowUnavailable as exc:
            _attempt_failed(req, f"Stopped before v{version}: MLflow could not be read ({exc})", dep=None,
                            confirmed_not_applied=True, actor=actor)
            raise DeployFailed(f"Deploy failed, the request is now 'failed' and can be retried: {exc}") from exc
        why = protected_now(version, pointers)
        if why or version not in pointers.stages and kind == "stage":
            why = why or f"v{version} no longer exists"
            skipped.append({"version": version, "action": step["action"], "why": why})
            with transaction.atomic():
                audit.record(actor=actor, action="deploy.skipped", model=req.model_name, version=version,
                             request=req, after={"action": step["action"], "why": why},
                             comment="Not touched: MLflow shows it protected now.")
            continue
        with transaction.atomic():
            if not PromotionRequest.objects.filter(_held(req.deploy_attempt), pk=req.pk,
                                                   lease_expires_at__gt=timezone.now()).update(updated_at=timezone.now()):
                raise TransitionNotAllowed("This deploy attempt's lease ran out; the remaining versions were "
                                           "not touched. Deploy again.")
            dep = Deployment.objects.create(request=req, model_name=req.model_name, version=version, kind=kind,
                                            target=target, actor_username=actor.get_username(),
                                            attempt=req.deploy_attempt)
            before = _target_view(dep, pointers)
            Deployment.objects.filter(pk=dep.pk).update(before=before, sent_at=timezone.now())
        try:
            _write(dep, pointers)
            after_pointers = gateway.read_model_pointers(req.model_name)
            if not _landed(dep, after_pointers):
                raise gateway.WriteOutcomeUnknown("MLflow does not show the change after the write.")
        except gateway.WriteRefused as exc:
            _attempt_failed(req, str(exc), dep=dep, confirmed_not_applied=True, actor=actor)
            raise Conflict(f"Stopped at v{version}: {exc}. The request is now 'failed'.") from exc
        except gateway.WriteOutcomeUnknown as exc:
            _attempt_failed(req, str(exc), dep=dep, confirmed_not_applied=False, actor=actor)
            raise DeployFailed(f"Deploy failed at v{version}; the request is now 'failed' and can be retried: "
                               f"{exc}") from exc
        except gateway.MlflowUnavailable as exc:
            _attempt_failed(req, str(exc), dep=dep, confirmed_not_applied=True, actor=actor)
            raise DeployFailed(f"Deploy failed at v{version}; the request is now 'failed' and can be retried: "
                               f"{exc}") from exc
        if kind == "stage":
            _write_back_tags(req, dep, after_pointers, version=version,
                             tags={"retention.archived_at": timezone.now().isoformat(timespec="seconds"),
                                   "governance.request": _request_link(req)})
        _record_success(dep, after_pointers, guard=_held(req.deploy_attempt), actor=actor, comment=step["why"],
                        before=before)
    now = timezone.now()
    with transaction.atomic():
        finished = PromotionRequest.objects.filter(_held(req.deploy_attempt), pk=req.pk).update(
            state=RequestState.DEPLOYED, deployed_by=actor.get_username(), deployed_at=now, error="",
            lease_expires_at=now, updated_at=now)
        if finished != 1:
            raise TransitionNotAllowed("This deploy attempt's lease ran out after its last step; deploy again to "
                                       "finish (nothing will be sent twice).")
        applied = list(req.deployments.filter(state=DeploymentState.SUCCEEDED).values_list("version", "kind"))
        audit.record(actor=actor, action="retention.applied", model=req.model_name, request=req,
                     before={"state": RequestState.DEPLOYING},
                     after={"state": RequestState.DEPLOYED, "applied": [{"version": v, "kind": k} for v, k in applied],
                            "skipped": skipped},
                     comment=comment, source_ip=source_ip)
    req.refresh_from_db()
    return req


# --------------------------------------------------------------------------------------------------
# Break-glass: deploy or roll back without approval in an incident, reviewed after the fact
# --------------------------------------------------------------------------------------------------


def promotion_request_break_glass(*, actor, model_name: str, reason: str, version=None, target_stage: str = "",
                                  target_alias: str = "", rollback: bool = False, archive_existing: bool = False,
                                  source_ip: str | None = None) -> PromotionRequest:
    """An ops user who also holds the break-glass permission deploys (or, rollback=True, puts back the
    previous holder) without approval. The reason is mandatory. The request is created with its
    evidence and gates read from MLflow (recorded, not blocking), approved by its own requester in a
    `request.break_glass` event that names the approvers told and the review's due time, then deployed
    through the ordinary exactly-once deploy; the version carries a governance.emergency tag and the
    deploy event says emergency. An approver must close the review (emergency_review_close)."""
    model = visible_models(actor, RegisteredModel.objects.all()).filter(name=model_name).first()
    if model is None:
        raise NotFound(f"No registered model {model_name!r}.")
    require_perm(actor, "deploy", model)
    require_perm(actor, "break_glass", model)
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Breaking the glass needs a reason.")
    if rollback:
        version = previous_holder(model, target_stage=target_stage, target_alias=target_alias)
        if version is None:
            raise InvalidInput("No recorded deploy to this target: nothing to roll back to.")
    if version is None:
        raise InvalidInput("version is required (except for a rollback).")
    req = promotion_request_create(actor=actor, model_name=model_name, version=version, target_stage=target_stage,
                                   target_alias=target_alias, archive_existing=archive_existing or bool(rollback and
                                                                                                        target_stage),
                                   justification=reason, rollback=rollback, emergency=True, source_ip=source_ip)
    now = timezone.now()
    due = now + timedelta(hours=settings.WORKFLOW_EMERGENCY_REVIEW_HOURS)
    told = break_glass_recipients(req)
    with transaction.atomic():
        claimed = PromotionRequest.objects.filter(pk=req.pk, state=RequestState.PENDING, emergency=True).update(
            state=RequestState.APPROVED, approval_evidence=req.evidence, decided_by=actor.get_username(),
            decision_comment=reason, review_due_at=due, override=bool(failing(req.gate_results)), updated_at=now)
        if claimed != 1:
            raise TransitionNotAllowed("Someone else changed this request first.")
        event = audit.record(actor=actor, action="request.break_glass", model=req.model_name, version=req.version,
                             request=req, before={"state": RequestState.PENDING},
                             after={"state": RequestState.APPROVED, "emergency": True, "rollback": rollback,
                                    "gates": req.gate_results, "review_due_at": due.isoformat(),
                                    "approvers_told": told},
                             comment=reason, source_ip=source_ip)
        # The approvers' mails (and subscribers' webhooks) are written with the event, sent on commit.
        emit(event, subject=req)
    return promotion_request_deploy(request_id=req.pk, actor=actor, comment=f"break-glass: {reason}",
                                    source_ip=source_ip)


def break_glass_recipients(req: PromotionRequest) -> list[str]:
    """Who is told at once of a break-glass deploy: everyone who may approve requests for the model
    (users and groups, as governance.access.who_may names them)."""
    from governance.access import who_may

    return who_may(req.model)["approve"] if req.model is not None else []


def emergency_review_close(*, request_id: int, actor, comment: str, source_ip: str | None = None) -> PromotionRequest:
    """An approver (not whoever broke the glass) closes the post-hoc review of a break-glass deploy,
    with a comment; one emergency.review_closed event, saying whether it was closed in time."""
    req = get_request_for(actor, request_id)
    _raise_if_refused(actor, req, "review")
    comment = (comment or "").strip()
    if not comment:
        raise InvalidInput("Closing a review needs a comment: what was found.")
    now = timezone.now()
    with transaction.atomic():
        claimed = PromotionRequest.objects.filter(pk=req.pk, emergency=True, reviewed_at__isnull=True).update(
            reviewed_at=now, reviewed_by=actor.get_username(), review_comment=comment, updated_at=now)
        if claimed != 1:
            raise TransitionNotAllowed("This review was closed already.")
        late = req.review_due_at is not None and now > req.review_due_at
        audit.record(actor=actor, action="emergency.review_closed", model=req.model_name, version=req.version,
                     request=req, before={"review": "open", "due_at": req.review_due_at.isoformat()
                                          if req.review_due_at else None},
                     after={"review": "closed", "late": late}, comment=comment, source_ip=source_ip)
    req.refresh_from_db()
    return req


def open_emergency_reviews(user):
    """Break-glass requests whose review is still open, on models the user may see, oldest due first."""
    return requests_visible_to(user).filter(emergency=True, reviewed_at__isnull=True).order_by("review_due_at", "id")


def approvable_model_names(user, names) -> set[str]:
    """Those of `names` whose model the user may approve for (the re-certify buttons of a page of the
    queue), in a fixed number of queries: the models with their policy, the user's grants on them."""
    from guardian.core import ObjectPermissionChecker

    models = list(visible_models(user, RegisteredModel.objects.filter(name__in=set(names)))
                  .annotate(_scoped=Exists(ModelPolicy.objects.filter(model=OuterRef("pk"), scoped=True))))
    for model in models:
        model._governance_scoped = model._scoped
    checker = ObjectPermissionChecker(user)
    if models and getattr(user, "is_authenticated", False) and not user.is_superuser:
        checker.prefetch_perms(models)
    return {model.name for model in models if can(user, "approve", model, checker=checker)}


def may_approve_model(user, model_name: str) -> bool:
    """Whether the user may approve (and so re-certify or review) for this model (for buttons)."""
    model = visible_models(user, RegisteredModel.objects.all()).filter(name=model_name).first()
    return model is not None and can(user, "approve", model)
