"""Does a governance deployment account for a change the sync saw in MLflow?

The drift classifier (governance.workflow.drift) asks explaining_deployment() about each stage or alias
change in a sync report; a change that no deployment explains is drift. A change is explained only by
the deploy that caused it, matched three ways:
- by its id: every deploy tags its version (governance.workflow.models.marker_key) before it moves the
  target, so the version that moved carries the deploy's mark for exactly that target;
- by its expected before/after: the deploy recorded the target as it found it (Deployment.before), and
  the change must go from that to the deploy's version;
- once: a deploy whose success is already on record (confirmed by its deployer, who also wrote the
  mirror, or credited by an earlier sync) has nothing left to explain. So a move back to a value a
  deploy once set, or a manual archive after a deploy that archived other versions, is drift.
A deploy with archive_existing also explains the archiving of the versions it found in its stage.
The sync has written the page's mirror rows (tags included) in the same transaction before asking,
and asks about every change of a report before it credits any.
"""

from governance.workflow.models import Deployment, DeploymentState, marker_key, parse_marker
from registry_ui.mirror.models import ModelVersion


def _as_int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _open(dep: Deployment | None) -> Deployment | None:
    """The deployment, if its success is not yet on record."""
    return dep if dep is not None and dep.state != DeploymentState.SUCCEEDED else None


def _marked(model_name: str, version: int, kind: str, target: str) -> Deployment | None:
    """The deployment whose mark for this target is on the version, if it deployed exactly that."""
    tags = ModelVersion.objects.filter(model__name=model_name, version=version).values_list("tags", flat=True).first()
    dep_id = parse_marker((tags or {}).get(marker_key(kind, target)))
    if dep_id is None:
        return None
    return Deployment.objects.filter(pk=dep_id, model_name=model_name, kind=kind, target=target,
                                     version=version).first()


def _found(dep: Deployment, key: str, default=None):
    """What the deploy recorded of the target before it wrote (None when it recorded nothing)."""
    return (dep.before or {}).get(key, default) if isinstance(dep.before, dict) else default


def _rollback_move(model_name: str, version: int, alias: str, before) -> Deployment | None:
    """A deploy that gave `version` the rollback alias `alias` beside its main move (the previous
    holder of a protected target), marked with the deploy's id under that alias's key."""
    tags = ModelVersion.objects.filter(model__name=model_name, version=version).values_list("tags", flat=True).first()
    dep_id = parse_marker((tags or {}).get(marker_key("alias", alias)))
    dep = _open(Deployment.objects.filter(pk=dep_id, model_name=model_name).first()) if dep_id else None
    plan = dep.rollback_move if dep is not None else None
    if not plan or plan.get("alias") != alias or _as_int(plan.get("version")) != version:
        return None
    return dep if _as_int(plan.get("was")) == _as_int(before) else None


def explaining_deployment(*, model_name: str, version: int | None, kind: str, name: str, before,
                          after) -> Deployment | None:
    """kind: "stage" (name: "stage") or "alias" (name: the alias); before/after: old/new value."""
    if kind == "alias":
        target_version = _as_int(after)
        if target_version is None:
            # A removal: one of ours only if the version it left carries a removal deploy's mark.
            old = _as_int(before)
            return _open(_marked(model_name, old, "unalias", name)) if old is not None else None
        dep = _open(_marked(model_name, target_version, "alias", name))
        if dep is None:
            return _rollback_move(model_name, target_version, name, before)
        if dep.before is None:
            return dep
        return dep if _as_int(_found(dep, "version")) == _as_int(before) else None
    if kind != "stage" or version is None:
        return None
    version = int(version)
    if after:
        dep = _open(_marked(model_name, version, "stage", str(after)))
        if dep is not None and (dep.before is None or _found(dep, "candidate_stage") in (before, None)):
            return dep
    # Archived because a deploy with archive_existing took the stage this version held.
    if after == "Archived" and before:
        for holder in ModelVersion.objects.filter(model__name=model_name, stage=before).exclude(version=version):
            dep = _open(_marked(model_name, holder.version, "stage", before))
            if dep is not None and dep.archive_existing and version in (_found(dep, "holders") or []):
                return dep
    return None


def deployment_explains(*, model_name: str, version: int | None, kind: str, name: str, before, after) -> bool:
    return explaining_deployment(model_name=model_name, version=version, kind=kind, name=name, before=before,
                                 after=after) is not None
