"""The catalogue annotator (the workflow's open-request counts plus each model's risk tier) and the
portfolio section of the auditor's reports page."""

from governance.risk.models import ModelRiskTier
from governance.risk.selectors import tier_label
from governance.workflow.panels import catalogue_annotations as workflow_annotations


def catalogue_annotations(user, models) -> dict[int, dict]:
    notes = workflow_annotations(user, models)
    ids = list(notes)
    tiers = dict(ModelRiskTier.objects.filter(model_id__in=ids).values_list("model_id", "tier"))
    for pk in ids:
        notes[pk]["risk_tier"] = tier_label(tiers.get(pk, ""))
    return notes


def audit_report_sections(user, *, since=None, until=None) -> list[tuple[str, dict]]:
    """The portfolio for the period the auditor picked (settings.AUDIT_REPORT_SECTIONS): its months, the
    models by tier and state. Only for those who may see the portfolio."""
    from datetime import timedelta

    from django.utils import timezone

    from governance.portfolio import selectors

    if not selectors.may_see(user):
        return []
    # The audit period's until may be the first moment after the day asked for: step back into that day.
    bounds = (("since", since), ("until", until - timedelta(microseconds=1) if until else None))
    params = {key: timezone.localtime(value).date().isoformat() for key, value in bounds if value}
    data = selectors.summary(user, params)
    return [("risk/audit_portfolio.html", {"portfolio": data, "figures": data.figures(),
                                           "months": data.monthly_table(), "query": "&".join(
                                               f"{k}={v}" for k, v in params.items())})]
