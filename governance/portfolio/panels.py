"""The catalogue annotator: the workflow's open-request counts plus each model's risk tier."""

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
