"""What governance tells the registry mirror (see registry_ui.extensions): which runs are evidence
of a pending decision, so the sync re-reads them every time."""

from django.db.models import Q

from governance.workflow.models import OPEN_STATES, PromotionRequest
from registry_ui.mirror.models import ModelVersion


def runs_to_refresh(model_names: list[str]) -> set[str]:
    """Run ids behind the versions of these models that are in an open promotion request."""
    pairs = set(PromotionRequest.objects.filter(model__name__in=model_names, state__in=OPEN_STATES)
                .values_list("model_id", "version"))
    if not pairs:
        return set()
    match = Q()
    for model_id, version in pairs:
        match |= Q(model_id=model_id, version=version)
    return set(ModelVersion.objects.filter(match).exclude(run_id="").values_list("run_id", flat=True))
