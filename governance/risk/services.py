"""Writes of model risk. Each: permission check, a conditional update claiming the row, the change and
its audit event in one transaction. A tier is only ever set by approving a TierChange; nothing sets it
directly (the admin shows tiers read-only)."""

from __future__ import annotations

import datetime

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from governance import audit
from governance.access import can, require_perm, visible_models
from governance.errors import InvalidInput, NotFound, PolicyViolation, TransitionNotAllowed
from governance.notify.outbox import emit
from governance.risk import selectors
from governance.risk.models import (
    OPEN_FINDING_STATES,
    Finding,
    FindingState,
    ModelRiskTier,
    Severity,
    TierChange,
    TierChangeState,
)
from registry_ui.mirror.models import ModelVersion, RegisteredModel


def _model_for(actor, model_name: str) -> RegisteredModel:
    model = visible_models(actor, RegisteredModel.objects.all()).filter(name=model_name).first()
    if model is None:
        raise NotFound(f"No registered model {model_name!r}.")
    return model


def _text(value: str, what: str) -> str:
    value = (value or "").strip()
    if not value:
        raise InvalidInput(f"{what} is required.")
    return value


# --------------------------------------------------------------------------------------------------
# Tier changes
# --------------------------------------------------------------------------------------------------


def tier_change_request(*, actor, model_name: str, tier: str, reason: str,
                        source_ip: str | None = None) -> TierChange:
    """Ask for `model_name` to be in `tier` (anyone who may request or approve on the model); a second
    person approves it (tier_change_approve). One tier.change_requested event."""
    model = _model_for(actor, model_name)
    if not (can(actor, "request", model) or can(actor, "approve", model)):
        raise PermissionDenied(f"You may not change the risk tier of {model.name}.")
    if tier not in selectors.tiers():
        raise InvalidInput(f"{tier!r} is not a risk tier; choose one of {', '.join(selectors.tiers())}.")
    reason = _text(reason, "A reason for the tier change")
    current = selectors.tier_of(model)
    if tier == current:
        raise InvalidInput(f"{model.name} is already {selectors.tier_label(tier)}.")
    try:
        with transaction.atomic():
            change = TierChange.objects.create(model=model, from_tier=current, to_tier=tier, reason=reason,
                                               requester=actor, requester_username=actor.get_username())
            audit.record(actor=actor, action="tier.change_requested", model=model.name,
                         before={"tier": current}, after={"tier": tier, "change": change.pk}, comment=reason,
                         source_ip=source_ip)
    except IntegrityError:
        raise TransitionNotAllowed(f"A tier change of {model.name} is already pending; decide it first.") from None
    return change


def _decidable(actor, change_id: int) -> TierChange:
    change = TierChange.objects.select_related("model").filter(pk=change_id).first()
    if change is None or not can(actor, "view", change.model):
        raise NotFound(f"No tier change #{change_id}.")
    require_perm(actor, "approve", change.model)
    if change.state != TierChangeState.PENDING:
        raise TransitionNotAllowed(f"Tier change #{change.pk} is already {change.state}.")
    if change.requester_id == actor.pk:
        raise PolicyViolation("Separation of duties: a tier change is approved or rejected by someone other "
                              "than its requester.")
    return change


def tier_change_approve(*, actor, change_id: int, comment: str = "", source_ip: str | None = None) -> TierChange:
    """A second person approves: the tier takes effect; one tier.changed event."""
    change = _decidable(actor, change_id)
    with transaction.atomic():
        claimed = TierChange.objects.filter(pk=change.pk, state=TierChangeState.PENDING).update(
            state=TierChangeState.APPROVED, decided_by=actor.get_username(), decision_comment=(comment or "").strip(),
            decided_at=timezone.now())
        if claimed != 1:
            raise TransitionNotAllowed("Someone else decided this tier change first.")
        ModelRiskTier.objects.update_or_create(model=change.model, defaults={"tier": change.to_tier, "change": change})
        audit.record(actor=actor, action="tier.changed", model=change.model.name, before={"tier": change.from_tier},
                     after={"tier": change.to_tier, "change": change.pk, "requested_by": change.requester_username},
                     comment=(comment or "").strip(), source_ip=source_ip)
    change.refresh_from_db()
    return change


def tier_change_reject(*, actor, change_id: int, comment: str, source_ip: str | None = None) -> TierChange:
    change = _decidable(actor, change_id)
    comment = _text(comment, "A comment saying why the tier change is rejected")
    with transaction.atomic():
        claimed = TierChange.objects.filter(pk=change.pk, state=TierChangeState.PENDING).update(
            state=TierChangeState.REJECTED, decided_by=actor.get_username(), decision_comment=comment,
            decided_at=timezone.now())
        if claimed != 1:
            raise TransitionNotAllowed("Someone else decided this tier change first.")
        audit.record(actor=actor, action="tier.change_rejected", model=change.model.name,
                     before={"tier": change.from_tier}, after={"tier": change.from_tier, "change": change.pk,
                                                              "requested": change.to_tier},
                     comment=comment, source_ip=source_ip)
    change.refresh_from_db()
    return change


# --------------------------------------------------------------------------------------------------
# Findings
# --------------------------------------------------------------------------------------------------


def _finding_for(actor, finding_id: int) -> Finding:
    finding = Finding.objects.select_related("model").filter(pk=finding_id).first()
    if finding is None or not can(actor, "view", finding.model):
        raise NotFound(f"No finding #{finding_id}.")
    return finding


def _event_data(finding: Finding) -> dict:
    return {"finding": finding.pk, "severity": finding.severity, "state": finding.state,
            "owner": finding.owner_username, "due": finding.due_date.isoformat()}


def finding_raise(*, actor, model_name: str, version: int | None, severity: str, description: str,
                  owner_username: str, due_date: datetime.date | None, source_ip: str | None = None) -> Finding:
    """An approver of the model raises a finding on it or on one of its versions; one finding.raised."""
    model = _model_for(actor, model_name)
    require_perm(actor, "approve", model)
    if severity not in Severity.values:
        raise InvalidInput(f"Severity must be one of {', '.join(Severity.values)}.")
    description = _text(description, "A description of the finding")
    if due_date is None:
        raise InvalidInput("A due date is required.")
    owner = get_user_model().objects.filter(username=(owner_username or "").strip(), is_active=True).first()
    if owner is None:
        raise InvalidInput(f"No active user {owner_username!r} to own the finding." if owner_username
                           else "An owner is required.")
    if version is not None and not ModelVersion.objects.filter(model=model, version=int(version)).exists():
        raise InvalidInput(f"{model.name} has no version {version}.")
    with transaction.atomic():
        finding = Finding.objects.create(model=model, version=version, severity=severity, description=description,
                                         owner=owner, owner_username=owner.get_username(), due_date=due_date,
                                         raised_by=actor.get_username())
        audit.record(actor=actor, action="finding.raised", model=model.name, version=version,
                     after=_event_data(finding), comment=description, source_ip=source_ip)
    return finding


def finding_propose_closure(*, actor, finding_id: int, note: str, source_ip: str | None = None) -> Finding:
    """The owner (or an approver) proposes closing an open finding, with the remediation note; another
    person accepts it. One finding.closure_proposed event."""
    finding = _finding_for(actor, finding_id)
    if not (finding.owner_id == actor.pk or can(actor, "approve", finding.model)):
        raise PermissionDenied("Only the finding's owner or an approver may propose closing it.")
    note = _text(note, "A remediation note (what was done, with evidence or a link)")
    with transaction.atomic():
        claimed = Finding.objects.filter(pk=finding.pk, state=FindingState.OPEN).update(
            state=FindingState.CLOSURE_PROPOSED, remediation_note=note)
        if claimed != 1:
            raise TransitionNotAllowed(f"Finding #{finding.pk} is {finding.state}; only an open finding can be "
                                       "proposed for closure.")
        finding.refresh_from_db()
        audit.record(actor=actor, action="finding.closure_proposed", model=finding.model.name,
                     version=finding.version, before={"state": FindingState.OPEN}, after=_event_data(finding),
                     comment=note, source_ip=source_ip)
    return finding


def _decide_closure(actor, finding_id: int) -> Finding:
    finding = _finding_for(actor, finding_id)
    require_perm(actor, "approve", finding.model)
    if finding.owner_id == actor.pk or finding.owner_username == actor.get_username():
        raise PolicyViolation("Separation of duties: the owner of a finding does not accept or decline its "
                              "own closure; another approver does.")
    if finding.state != FindingState.CLOSURE_PROPOSED:
        raise TransitionNotAllowed(f"Finding #{finding.pk} is {finding.state}: there is no proposed closure "
                                   "to decide.")
    return finding


def finding_accept_closure(*, actor, finding_id: int, comment: str = "", source_ip: str | None = None) -> Finding:
    """Another approver accepts the remediation: the finding is closed; one finding.closed event."""
    finding = _decide_closure(actor, finding_id)
    with transaction.atomic():
        claimed = Finding.objects.filter(pk=finding.pk, state=FindingState.CLOSURE_PROPOSED).update(
            state=FindingState.CLOSED, closed_by=actor.get_username(), closed_at=timezone.now())
        if claimed != 1:
            raise TransitionNotAllowed("Someone else decided this closure first.")
        finding.refresh_from_db()
        audit.record(actor=actor, action="finding.closed", model=finding.model.name, version=finding.version,
                     before={"state": FindingState.CLOSURE_PROPOSED}, after=_event_data(finding),
                     comment=(comment or "").strip(), source_ip=source_ip)
    return finding


def finding_decline_closure(*, actor, finding_id: int, comment: str, source_ip: str | None = None) -> Finding:
    """Another approver finds the remediation insufficient: the finding is open again."""
    finding = _decide_closure(actor, finding_id)
    comment = _text(comment, "A comment saying why the remediation is not enough")
    with transaction.atomic():
        claimed = Finding.objects.filter(pk=finding.pk, state=FindingState.CLOSURE_PROPOSED).update(
            state=FindingState.OPEN)
        if claimed != 1:
            raise TransitionNotAllowed("Someone else decided this closure first.")
        finding.refresh_from_db()
        audit.record(actor=actor, action="finding.closure_declined", model=finding.model.name,
                     version=finding.version, before={"state": FindingState.CLOSURE_PROPOSED},
                     after=_event_data(finding), comment=comment, source_ip=source_ip)
    return finding


def findings_remind(*, today=None) -> dict[str, list[int]]:
    """The overdue reminder (a scheduled job): one finding.overdue event per model with open findings past
    their due date; its owners and the model's approvers are mailed from it. {model: [finding ids]}."""
    by_model: dict[str, list[Finding]] = {}
    for finding in selectors.overdue_findings(today=today).order_by("model__name", "due_date", "id"):
        by_model.setdefault(finding.model.name, []).append(finding)
    with transaction.atomic():
        for model_name, items in by_model.items():
            event = audit.record(
                actor_name="system:findings", action="finding.overdue", model=model_name,
                after={"findings": [{"finding": f.pk, "severity": f.severity, "owner": f.owner_username,
                                     "due": f.due_date.isoformat(), "version": f.version} for f in items],
                       "owners": sorted({f.owner_username for f in items})},
                comment=f"{len(items)} finding(s) on {model_name} past their due date")
            emit(event)
    return {name: [f.pk for f in items] for name, items in by_model.items()}


__all__ = ["OPEN_FINDING_STATES", "tier_change_request", "tier_change_approve", "tier_change_reject",
           "finding_raise", "finding_propose_closure", "finding_accept_closure", "finding_decline_closure",
           "findings_remind"]
