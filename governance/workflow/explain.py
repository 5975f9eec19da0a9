"""Does a governance deployment account for a change the sync saw in MLflow?

The drift classifier (governance.workflow.drift) asks explaining_deployment() about each stage or alias
change in a sync report; a change that no deployment explains is drift. Two kinds of evidence:
- the mark: every deploy tags its version (governance.workflow.models.marker_key) before it moves
  the target, so a change to a version carrying a deploy's mark for that target is that deploy's
  write, even one that landed after the console had recorded it as not applied;
- the outbox: only the LATEST non-failed deployment to a target explains a value (rows from before
  deploys were marked), so a manual change made after it to another value is still drift.
The sync has written the page's mirror rows (tags included) in the same transaction before asking.
"""

from governance.workflow.models import Deployment, DeploymentState, marker_key, parse_marker
from registry_ui.mirror.models import ModelVersion


def _as_int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _marked(model_name: str, version: int, kind: str, target: str) -> Deployment | None:
    """The deployment whose mark for this target is on the version, if it deployed exactly that."""
    tags = ModelVersion.objects.filter(model__name=model_name, version=version).values_list("tags", flat=True).first()
    dep_id = parse_marker((tags or {}).get(marker_key(kind, target)))
    if dep_id is None:
        return None
    dep = Deployment.objects.filter(pk=dep_id, model_name=model_name, kind=kind, target=target,
                                    version=version).first()
    if dep is None:
        return None
    # A later deploy to the same target that succeeded with another version: this old write undid it.
    newer = Deployment.objects.filter(model_name=model_name, kind=kind, target=target, id__gt=dep.pk,
                                      state=DeploymentState.SUCCEEDED).exclude(version=version)
    return None if newer.exists() else dep


def explaining_deployment(*, model_name: str, version: int | None, kind: str, name: str,
                          before, after) -> Deployment | None:
    """kind: "stage" (name: "stage") or "alias" (name: the alias); before/after: old/new value."""
    live = Deployment.objects.filter(model_name=model_name).exclude(state=DeploymentState.FAILED)
    if kind == "alias":
        target_version = _as_int(after)
        if target_version is None:
            return None
        marked = _marked(model_name, target_version, "alias", name)
        if marked is not None:
            return marked
        last = live.filter(kind="alias", target=name).order_by("-created_at", "-id").first()
        return last if last is not None and last.version == target_version else None
    if kind != "stage" or version is None:
        return None
    version = int(version)
    # The deployed version moved into the target stage...
    if after:
        marked = _marked(model_name, version, "stage", str(after))
        if marked is not None:
            return marked
    last = live.filter(kind="stage", version=version).order_by("-created_at", "-id").first()
    if last is not None and last.target == after:
        return last
    # ...or was archived because a deploy with archive_existing took its stage.
    if after == "Archived" and before:
        for holder in ModelVersion.objects.filter(model__name=model_name, stage=before).exclude(version=version):
            marked = _marked(model_name, holder.version, "stage", before)
            if marked is not None and marked.archive_existing:
                return marked
        return live.filter(kind="stage", target=before, archive_existing=True).exclude(version=version).first()
    return None


def deployment_explains(*, model_name: str, version: int | None, kind: str, name: str, before, after) -> bool:
    return explaining_deployment(model_name=model_name, version=version, kind=kind, name=name, before=before,
                                 after=after) is not None
