"""Demo promotion requests, so a newcomer sees the workflow in every state on the first visit.

Made through the same services a user's clicks go through (permission checks, gates, audit events,
the deploy writes to the demo MLflow store). Runs once: it does nothing when any request exists.
"""

from collections.abc import Callable

from django.contrib.auth import get_user_model

from governance.errors import DomainError
from governance.workflow import services as workflow
from governance.workflow.models import PromotionRequest


def seed_demo_requests(*, log: Callable[[str], None] = print) -> int:
    if PromotionRequest.objects.exists():
        log("  demo requests already there, left as they are")
        return 0
    users = {u.username: u for u in get_user_model().objects.filter(
        username__in=["scientist", "engineer", "operator"])}
    scientist, engineer, operator = users["scientist"], users["engineer"], users["operator"]
    made = 0

    def step(label: str, fn, **kwargs):
        nonlocal made
        try:
            result = fn(**kwargs)
        except DomainError as exc:  # a gate or rule refusing is part of the story; say so and go on
            log(f"  {label}: refused ({exc})")
            return None
        made += 1
        log(f"  {label}")
        return result

    # Deployed: the churn challenger becomes @champion (requested, approved, deployed to MLflow).
    req = step("churn-classifier v3 -> @champion: requested", workflow.promotion_request_create,
               actor=scientist, model_name="churn-classifier", version=3, target_alias="champion",
               justification="v3 beats v2 on validation accuracy with a smaller learning rate.")
    if req:
        step("  approved by engineer", workflow.promotion_request_approve, request_id=req.pk, actor=engineer,
             comment="Evidence checked: gates pass, better than the incumbent.")
        step("  deployed by operator", workflow.promotion_request_deploy, request_id=req.pk, actor=operator,
             comment="Rolled out in the demo window.")
    # Approved, waiting for ops.
    req = step("fraud-detector v2 -> Production: requested", workflow.promotion_request_create,
               actor=scientist, model_name="fraud-detector", version=2, target_stage="Production",
               archive_existing=True, justification="Deeper trees catch more fraud at the same precision.")
    if req:
        step("  approved by engineer", workflow.promotion_request_approve, request_id=req.pk, actor=engineer,
             comment="Approved; deploy after the weekend freeze.")
    # Pending, with a failing gate (validation_status is still "pending" on v4).
    step("churn-classifier v4 -> Production: requested (gate fails: not validated)",
         workflow.promotion_request_create, actor=scientist, model_name="churn-classifier", version=4,
         target_stage="Production", justification="Wider trees; validation still running.")
    # Pending, harmless.
    step("fraud-detector v3 -> Staging: requested", workflow.promotion_request_create, actor=scientist,
         model_name="fraud-detector", version=3, target_stage="Staging",
         justification="Candidate for the next shadow test.")
    return made
