"""Demo promotion requests and model risk, so a newcomer sees the workflow in every state, a Tier 1
and a Tier 3 model on the first visit.

Made through the same services a user's clicks go through (permission checks, gates, audit events,
the deploy writes to the demo MLflow store). Each part runs once: the requests when none exists, the
model risk when no tier change exists.
"""

from collections.abc import Callable
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from governance.cards import services as cards
from governance.errors import DomainError
from governance.risk import services as risk
from governance.risk.models import TierChange
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
    made = 0
    if PromotionRequest.objects.exists():
        log("  demo requests already there, left as they are")
    else:
        made = _seed_requests(log)
    return made + seed_demo_risk(log=log)


def _seed_requests(log: Callable[[str], None]) -> int:
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


def seed_demo_risk(*, log: Callable[[str], None] = print) -> int:
    """Model risk, so a first-time user sees both ends (after the requests above, which were filed under
    the global policy): fraud-detector is Tier 1 with an open blocking finding on its approved v2, so
    the deploy waits for the finding's closure (and its holders, never approved, are due for re-review);
    demand-forecaster is Tier 3 and its v3 moves to @champion with one approval; churn-classifier has a
    Tier 2 change waiting for a second person and a finding closed through the four-eyes steps. Runs
    once: nothing when any tier change exists."""
    if TierChange.objects.exists():
        log("  demo model risk already there, left as it is")
        return 0
    users = {u.username: u for u in get_user_model().objects.filter(
        username__in=["scientist", "engineer", "operator"])}
    scientist, engineer, operator = users["scientist"], users["engineer"], users["operator"]
    today = timezone.localdate()
    made = 0

    def step(label: str, fn, **kwargs):
        nonlocal made
        try:
            result = fn(**kwargs)
        except DomainError as exc:
            log(f"  {label}: refused ({exc})")
            return None
        made += 1
        log(f"  {label}")
        return result

    for name, tier, reason in (
            ("fraud-detector", "tier1", "Blocks card payments: customer harm and regulatory exposure."),
            ("demand-forecaster", "tier3", "Advisory: planners review every forecast before ordering.")):
        change = step(f"{name}: {tier} requested by scientist", risk.tier_change_request, actor=scientist,
                      model_name=name, tier=tier, reason=reason)
        if change:
            step(f"  {tier} approved by engineer", risk.tier_change_approve, actor=engineer, change_id=change.pk,
                 comment="Agreed with the model-risk inventory.")
    step("churn-classifier: tier2 requested by scientist (waiting for a second person)", risk.tier_change_request,
         actor=scientist, model_name="churn-classifier", tier="tier2",
         reason="Drives retention offers: business-relevant, limited exposure.")
    step("fraud-detector v2: blocking finding raised by engineer, owned by scientist", risk.finding_raise,
         actor=engineer, model_name="fraud-detector", version=2, severity="blocking",
         description="Recall on card-not-present transactions is not reported separately; show it is not "
                     "worse than v1 before this version goes to Production.",
         owner_username="scientist", due_date=today + timedelta(days=14))
    step("fraud-detector: minor finding on the model", risk.finding_raise, actor=engineer,
         model_name="fraud-detector", version=None, severity="minor",
         description="The model description does not name the feature owner.", owner_username="scientist",
         due_date=today + timedelta(days=30))
    # An incomplete Tier 1 card: three of its required sections written and approved, the rest empty,
    # so the review page of fraud-detector v2 names what the card still lacks.
    draft = step("fraud-detector v2: model card drafted by scientist (purpose, intended use, owner only)",
                 cards.card_edit, actor=scientist, model_name="fraud-detector", version=2, base_revision=None,
                 sections={"purpose": "Scores each card payment for fraud before authorisation.",
                           "intended_use": "Payments risk team; a score above 0.9 holds the payment for review.",
                           "owner": "Payments risk team (scientist)."},
                 comment="First draft: performance, limitations and the rest to follow.")
    if draft:
        step("  card approved by engineer (still incomplete for Tier 1)", cards.card_revision_approve,
             actor=engineer, revision_id=draft.pk, comment="Fine as far as it goes; the other sections are due.")
    closed = step("churn-classifier v3: major finding raised by engineer", risk.finding_raise, actor=engineer,
                  model_name="churn-classifier", version=3, severity="major",
                  description="Validation report lacks the calibration plot.", owner_username="scientist",
                  due_date=today + timedelta(days=7))
    if closed:
        step("  closure proposed by its owner, scientist", risk.finding_propose_closure, actor=scientist,
             finding_id=closed.pk, note="Calibration plot added to the run's artifacts (calibration.png).")
        step("  closure accepted by engineer (another person)", risk.finding_accept_closure, actor=engineer,
             finding_id=closed.pk, comment="Plot checked: well calibrated above 0.2.")
    # Tier 3: one approval moves it.
    req = step("demand-forecaster v3 -> @champion: requested (Tier 3: one approval)",
               workflow.promotion_request_create, actor=scientist, model_name="demand-forecaster", version=3,
               target_alias="champion", justification="Lower validation RMSE than v2 on the same split.")
    if req:
        step("  approved by engineer: the quorum of one is met", workflow.promotion_request_approve,
             request_id=req.pk, actor=engineer, comment="Tier 3, gates pass.")
        step("  deployed by operator", workflow.promotion_request_deploy, request_id=req.pk, actor=operator,
             comment="Planners notified.")
    return made
