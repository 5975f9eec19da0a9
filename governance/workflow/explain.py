"""Does a governance deployment account for a change the sync saw in MLflow?

The drift classifier (governance.workflow.drift) calls deployment_explains() for each stage or alias change
in a sync report; a change that no deployment explains is drift. Answered from the deploy outbox
(governance.models.Deployment): only the LATEST non-failed deployment to a target explains a value,
so a manual change made after it (and undone again) is still drift.
"""

from governance.workflow.models import Deployment, DeploymentState


def _as_int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def deployment_explains(*, model_name: str, version: int | None, kind: str, name: str,
                        before, after) -> bool:
    """kind: "stage" (name: "stage") or "alias" (name: the alias); before/after: old/new value."""
    live = Deployment.objects.filter(model_name=model_name).exclude(state=DeploymentState.FAILED)
    if kind == "alias":
        last = live.filter(kind="alias", target=name).order_by("-created_at", "-id").first()
        if last is None:
            return False
        return _as_int(after) == last.version
    if kind != "stage" or version is None:
        return False
    version = int(version)
    # The deployed version moved into the target stage...
    last = live.filter(kind="stage", version=version).order_by("-created_at", "-id").first()
    if last is not None and last.target == after:
        return True
    # ...or was archived because a deploy with archive_existing took its stage.
    if after == "Archived" and before:
        return live.filter(kind="stage", target=before, archive_existing=True).exclude(version=version).exists()
    return False
