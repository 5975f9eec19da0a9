"""What is waiting for me: the inbox's two lists, and their count in the navigation.

Both come from one function, so the count in the menu is the number of requests the inbox offers, and
the buttons behind them are request_actions (the services' own rule). It reads with a constant number
of queries, whatever the number of requests: requests with their model and policy, their approvals
prefetched, the user's object grants on those models prefetched into one guardian checker.
"""

from __future__ import annotations

from django.db.models import Prefetch

from governance.access import ACTION_PERMS
from governance.cards import selectors as card_selectors
from governance.risk import selectors as risk_selectors
from governance.workflow.models import Approval, RequestState
from governance.workflow.policies import request_actions
from governance.workflow.services import requests_visible_to
from registry_ui.mirror.models import RegisteredModel

LIMIT = 100  # per list, as the inbox has always shown


def _prepared(qs):
    rows = list(qs.select_related("model__policy").prefetch_related(
        Prefetch("approvals", queryset=Approval.objects.only("id", "request_id", "approver_username", "superseded_at"))
    )[:LIMIT])
    for req in rows:
        if req.model is not None:
            try:
                req.model._governance_scoped = bool(req.model.policy.scoped)
            except req.model._meta.get_field("policy").related_model.DoesNotExist:
                req.model._governance_scoped = False
    risk_selectors.annotate_blocking(rows)
    card_selectors.annotate_card_gaps(rows)
    return rows


def _may_ever_approve_or_deploy(user) -> bool:
    """False when no permission of the user's (model-wide, or a grant on some model, their own or a
    group's) lets them approve or deploy anything: then both lists are empty for certain, and every page
    that shows the menu's count (an auditor's, a requester's) is spared the lists' queries."""
    from guardian.shortcuts import get_objects_for_user

    perms = [ACTION_PERMS["approve"], ACTION_PERMS["deploy"]]
    if user.is_superuser or any(user.has_perm(perm) for perm in perms):
        return True
    return get_objects_for_user(user, perms, klass=RegisteredModel, any_perm=True,
                                accept_global_perms=False).exists()


def awaiting_my_action(user) -> tuple[list, list]:
    """(requests I may approve now, requests I may deploy now)."""
    if not getattr(user, "is_authenticated", False) or not _may_ever_approve_or_deploy(user):
        return [], []
    from guardian.core import ObjectPermissionChecker

    visible = requests_visible_to(user)
    pending = _prepared(visible.filter(state=RequestState.PENDING).exclude(requester=user))
    ready = _prepared(visible.filter(state__in=[RequestState.APPROVED, RequestState.FAILED]))
    checker = ObjectPermissionChecker(user)
    models = {r.model.pk: r.model for r in pending + ready if r.model is not None}
    if models and not user.is_superuser:
        checker.prefetch_perms(list(models.values()))
    to_approve = [r for r in pending if "approve" in request_actions(user, r, checker=checker)]
    to_deploy = [r for r in ready if "deploy" in request_actions(user, r, checker=checker)]
    return to_approve, to_deploy


def awaiting_count(user) -> int:
    to_approve, to_deploy = awaiting_my_action(user)
    return len(to_approve) + len(to_deploy)


def awaiting_context(request) -> dict:
    """Template context processor: `awaiting_count`, computed only when a template shows it (and once
    per request)."""
    def count() -> int:
        cached = getattr(request, "_awaiting_count", None)
        if cached is None:
            cached = request._awaiting_count = awaiting_count(getattr(request, "user", None))
        return cached

    return {"awaiting_count": count}
