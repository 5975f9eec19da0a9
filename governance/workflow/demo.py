"""Demo promotion requests, so a newcomer sees the workflow in every state on the first visit.

Made through the same services a user's clicks go through (permission checks, gates, audit events,
the deploy writes to the demo MLflow store). Runs once: it does nothing when any request exists.
"""

from collections.abc import Callable

from django.contrib.auth import get_user_model

from governance.errors import DomainError
from governance.validation.models import ValidationRun, ValidationStatus
from governance.validation.services import validation_run_execute
from governance.workflow import services as workflow
from governance.workflow.models import PromotionRequest
from governance.workflow.policy_changes import model_policy_set
from registry_ui.mirror.models import RegisteredModel

# Set by registry_ui.demo on churn-classifier: the evaluation dataset its validation policy names.
VALIDATION_DATASET_TAG = "demo.validation_dataset"


def _churn_validation_policy(admin, log) -> bool:
    """churn-classifier validates Production and @champion candidates on the demo's held-out table."""
    model = RegisteredModel.objects.filter(name="churn-classifier").first()
    dataset = (model.tags or {}).get(VALIDATION_DATASET_TAG) if model else None
    if not dataset or admin is None:
        return False
    model_policy_set(actor=admin, model=model, changes={"validation": {
        "dataset": dataset, "target": "churned", "thresholds": {"roc_auc": {"min": 0.85}},
        "relative": {"roc_auc": {"max_drop": 0.01}}, "max_latency_p95_ms": 100, "max_psi": 0.2,
        "class_rate": {"min": 0.4, "max": 0.6}}})
    log(f"  churn-classifier: validation policy on {dataset}")
    return True


def _validate_now(req, log) -> None:
    """The demo has no worker running yet: run the request's queued validation here."""
    for run in ValidationRun.objects.filter(request_id=req.pk, status=ValidationStatus.QUEUED):
        run = validation_run_execute(run_id=run.pk)
        log(f"  validation #{run.pk} of v{run.version}: {run.status} in {run.result.get('wall_s', '?')} s"
            f" (peak RSS {run.result.get('peak_rss_mb', '?')} MB){': ' + run.reason if run.reason else ''}")


def seed_demo_requests(*, log: Callable[[str], None] = print) -> int:
    if PromotionRequest.objects.exists():
        log("  demo requests already there, left as they are")
        return 0
    users = {u.username: u for u in get_user_model().objects.filter(
        username__in=["scientist", "engineer", "operator", "admin"])}
    scientist, engineer, operator = users["scientist"], users["engineer"], users["operator"]
    validating = _churn_validation_policy(users.get("admin"), log)
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
    if req and validating:
        _validate_now(req, log)
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
    req = step("churn-classifier v4 -> Production: requested (its validation fails on the prediction distribution)",
               workflow.promotion_request_create, actor=scientist, model_name="churn-classifier", version=4,
               target_stage="Production", justification="Wider trees, trained on the relabelled churn export.")
    if req and validating:
        _validate_now(req, log)
    # Pending, harmless.
    step("fraud-detector v3 -> Staging: requested", workflow.promotion_request_create, actor=scientist,
         model_name="fraud-detector", version=3, target_stage="Staging",
         justification="Candidate for the next shadow test.")
    return made
