"""Writes of a registered model's policy (its gates and the scoping switch): each one checks the
actor's permission, writes, and records the policy before and after in the same transaction. The
admin's policy inline calls these, and so must a command, a script or an API: there is no other
writer of ModelPolicy in the application.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from governance import audit
from governance.audit.models import AuditEvent
from governance.errors import InvalidInput
from governance.workflow.models import ModelPolicy

# Everything that decides what a request must pass or who may act: the whole of it is recorded on every
# change, so one event tells an auditor the policy in force from then on.
POLICY_FIELDS = ("scoped", "required_tags", "metric_thresholds", "compare_metric", "higher_is_better",
                 "require_lineage", "production_quorum", "rollback_alias", "retention_keep", "delete_after_days",
                 "approval_validity_days", "validation")
POLICY_ACTIONS = ("policy.created", "policy.changed", "policy.deleted")


def policy_state(policy: ModelPolicy | None) -> dict | None:
    """The policy as recorded in the trail (None: the model has none, the global defaults apply)."""
    if policy is None:
        return None
    return {name: getattr(policy, name) for name in POLICY_FIELDS}


def _require(actor, codename: str) -> None:
    if not (getattr(actor, "is_authenticated", False) and actor.is_active
            and (actor.is_superuser or actor.has_perm(f"governance.{codename}"))):
        raise PermissionDenied("You may not change policies.")


def require_policy_writer(actor) -> None:
    """Refuse (PermissionDenied) someone who may neither add nor change policies, before their input is
    even read (the services check the precise permission again)."""
    if not any(_may(actor, c) for c in ("add_modelpolicy", "change_modelpolicy", "delete_modelpolicy")):
        raise PermissionDenied("You may not change policies.")


def _may(actor, codename: str) -> bool:
    try:
        _require(actor, codename)
    except PermissionDenied:
        return False
    return True


def _changed(before: dict | None, after: dict) -> list[str]:
    return [name for name in POLICY_FIELDS if (before or {}).get(name) != after[name]] if before else []


def model_policy_set(*, actor, model, changes: dict, source_ip: str | None = None) -> ModelPolicy:
    """Create the model's policy or change fields of it (`changes`: field -> value, POLICY_FIELDS
    only). Records policy.created or policy.changed; an unchanged policy records nothing."""
    unknown = sorted(set(changes) - set(POLICY_FIELDS))
    if unknown:
        raise InvalidInput(f"Not a policy field: {', '.join(unknown)}.")
    with transaction.atomic():
        # Read inside the transaction (locked on PostgreSQL; SQLite's IMMEDIATE transaction already holds
        # the write lock): the recorded "before" is what this write replaced, even with two admins at once.
        existing = ModelPolicy.objects.select_for_update().filter(model=model).first()
        _require(actor, "change_modelpolicy" if existing else "add_modelpolicy")
        before = policy_state(existing)
        policy = existing or ModelPolicy(model=model)
        for name, value in changes.items():
            setattr(policy, name, value)
        try:
            policy.full_clean(exclude=["model"], validate_unique=False)
        except ValidationError as exc:
            raise InvalidInput("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
        after = policy_state(policy)
        if after == before:
            return policy
        policy.save()
        changed = _changed(before, after)
        audit.record(actor=actor, action="policy.changed" if existing else "policy.created", model=model,
                     before=before, after=after, source_ip=source_ip,
                     comment=(f"policy of {model.name} changed: {', '.join(changed)}" if existing
                              else f"policy of {model.name} created"))
    return policy


def model_policy_delete(*, actor, model, source_ip: str | None = None) -> None:
    """Remove the model's policy (the global defaults apply again, and the model is no longer scoped).
    Records policy.deleted with the policy that was in force."""
    _require(actor, "delete_modelpolicy")
    with transaction.atomic():
        existing = ModelPolicy.objects.select_for_update().filter(model=model).first()
        if existing is None:
            return
        before = policy_state(existing)
        existing.delete()
        audit.record(actor=actor, action="policy.deleted", model=model, before=before, after=None,
                     source_ip=source_ip, comment=f"policy of {model.name} deleted: global defaults apply")


def policy_in_force(*, model_name: str, before_seq: int) -> dict:
    """The model's own policy as the trail last recorded it before event `before_seq` (e.g. the
    request.approved event): {"known", "seq", "policy"}. "policy" None with known=True means the model
    had no policy of its own (the global defaults applied); known=False means no policy event precedes
    it (the policy, if any, predates the recording of policy changes)."""
    event = (AuditEvent.objects.filter(model_name=model_name, action__in=POLICY_ACTIONS, seq__lt=before_seq)
             .order_by("-seq").values("seq", "after").first())
    if event is None:
        return {"known": False, "seq": None, "policy": None}
    return {"known": True, "seq": event["seq"], "policy": event["after"]}
