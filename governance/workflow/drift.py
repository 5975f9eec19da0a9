"""Drift and the other changes the sync saw in MLflow, on the record.

registry_ui.mirror.sync calls handle_sync_report() (settings.REGISTRY_SYNC_REPORT_HANDLERS) with what each of
its transactions wrote (a page of models, a deletion batch, one targeted model), inside that
transaction. Each stage or alias change no deployment explains becomes a `registry.drift` audit event;
a change that is a deploy's own write which landed after the console stopped waiting for it is
recorded as that deploy's success instead (services.credit_late_landing); every other observed change
(created, deleted, renamed, tags, descriptions, runs deleted or restored, evidence metrics) becomes a
`registry.<kind>` event with its before and after; a part that changed the mirror also leaves one
`registry.synced` event (a no-op sync writes nothing). The first sync of an empty mirror is an import:
it reports no per-object creations, its `registry.synced` summary says so.
"""

import re

from django.utils import timezone

from governance import audit
from governance.cards.selectors import written_by_card
from governance.notify.outbox import emit
from governance.validation.selectors import written_by_validation
from governance.workflow.explain import explaining_deployment
from governance.workflow.models import (
    MARKER_PREFIX,
    OPEN_STATES,
    Deployment,
    DeploymentState,
    PromotionRequest,
    parse_marker,
)
from governance.workflow.services import (
    EMERGENCY_TAG,
    WRITE_BACK_KEYS,
    WRITE_BACK_PREFIXES,
    credit_late_landing,
    pointers_from_mirror,
)
from registry_ui.mirror.models import ModelVersion

ACTOR = "system:sync"


def _state(change) -> dict:
    def side(value):
        if change.kind == "stage":
            return {"stage": value}
        return {"alias": change.name, "version": value}

    return side(change.before), side(change.after)


def _v(version) -> str:
    return "(none)" if version is None else f"v{version}"


def _credit(dep, change) -> None:
    if dep.state == DeploymentState.SUCCEEDED:
        return
    req = PromotionRequest.objects.filter(pk=dep.request_id).first()
    if req is not None and req.deploy_attempt == dep.attempt and req.lease_live(timezone.now()):
        return  # its deployer is still at work and records the outcome itself
    credit_late_landing(dep, pointers=pointers_from_mirror(change.model), seen_at=change.detected_at)


def _explanations(changes) -> list:
    """The deployment explaining each change, all decided before any is credited: a late landing of a
    deploy with archive_existing shows as two changes (its version in, the old holder archived), and
    crediting the first must not make the second look like somebody else's."""
    return [explaining_deployment(model_name=c.model, version=c.version, kind=c.kind, name=c.name,
                                  before=c.before, after=c.after) for c in changes]


def handle_sync_report(report) -> None:
    for change, dep in zip(report.changes, _explanations(report.changes), strict=True):
        if dep is not None:
            _credit(dep, change)
            continue
        before, after = _state(change)
        if change.kind == "stage":
            what = f"stage {change.before} -> {change.after}"
        else:
            what = f"@{change.name}: {_v(change.before)} -> {_v(change.after)}"
        event = audit.record(
            actor_name=ACTOR, action="registry.drift", model=change.model, version=change.version, before=before,
            after=after,
            comment=f"Changed in MLflow outside governance ({what}), seen at {change.detected_at.isoformat()}")
        emit(event)
    for change in report.observed:
        _record_observed(change)
    if report.changed:
        model = report.scope.removeprefix("model:") if report.scope.startswith("model:") else ""
        what = "first import" if report.first_import else f"{report.scope} sync"
        audit.record(actor_name=ACTOR, action="registry.synced", model=model,
                     after={k: v for k, v in report.to_dict().items() if k not in ("changes", "observed")}
                     | {"changes": len(report.changes), "observed": len(report.observed)},
                     comment=f"{what}: {report.summary()}")


def _describe(change) -> str:
    where = change.model if change.version is None else f"{change.model} v{change.version}"
    before, after = change.before or {}, change.after or {}
    match change.kind:
        case "model_renamed":
            return f"model {before.get('name')!r} renamed to {after.get('name')!r}"
        case "tag_set" | "tag_changed" | "tag_removed":
            return (f"tag {change.name!r} on {where}: {before.get('value')!r} -> {after.get('value')!r}")
        case "run_deleted" | "run_restored" | "metrics_changed":
            return f"run {change.name} of {where}: {change.kind.replace('_', ' ')}"
        case _:
            return f"{where}: {change.kind.replace('_', ' ')}"


def _record_observed(change) -> None:
    after = change.after
    if change.kind == "model_renamed":
        # The mirror row kept its id, so its policy, grants and requests followed; open requests act on
        # MLflow by name (deploy writes to it), so they take the new name. Closed requests keep the name
        # they were decided under: that is what their events say.
        moved = PromotionRequest.objects.filter(model_name=change.before["name"], model__name=change.after["name"],
                                                state__in=OPEN_STATES)
        ids = sorted(moved.values_list("pk", flat=True))
        moved.update(model_name=change.after["name"])
        after = {**change.after, "open_requests_renamed": ids}
    who = "Changed in MLflow"
    if change.kind in ("tag_set", "tag_changed"):
        value = (change.after or {}).get("value")
        if console_tag(change.name, value, model=change.model, version=change.version):
            # The console's own write-back (a deploy's mark or promoted_to_/approved_by/governance.request
            # tags) seen by the sync before the deploy recorded it: ours, on the record as such.
            after = {**(after or {}), "written_by": "console"}
            who = "Written by the console"
        elif (run := written_by_validation(model_name=change.model, version=change.version, key=change.name,
                                           value=value)) is not None:
            # The console's own write-back of a validation's headline: explained, never somebody else's change.
            after = {**(after or {}), "explained_by": f"validation run #{run.pk}"}
            who = f"Written by the console's validation run #{run.pk}"
    card = None
    if change.kind == "description_changed":
        card = written_by_card(model_name=change.model, version=change.version,
                               description=(change.after or {}).get("description") or "")
    elif change.kind in ("tag_set", "tag_changed") and who == "Changed in MLflow":
        card = written_by_card(model_name=change.model, version=change.version,
                               tag=(change.name, (change.after or {}).get("value")))
    if card is not None:
        # The console's own write of an approved model card, seen before the mirror took it.
        after = {**(after or {}), "explained_by": f"model card revision {card.number}"}
        who = f"Written by the console (model card revision {card.number})"
    audit.record(actor_name=ACTOR, action=f"registry.{change.kind}", model=change.model, version=change.version,
                 before=change.before, after=after,
                 comment=f"{who} ({_describe(change)}), seen at {change.detected_at.isoformat()}")


_REQUEST_LINK = re.compile(r"/governance/requests/(\d+)/$")


def console_tag(key: str, value, *, model: str, version) -> bool:
    """A version tag the console wrote: a deploy mark naming a deployment of this model, or a write-back
    tag (promoted_to_*, approved_by, ...) on a version whose governance.request link names a deployed
    request of this model. The key alone proves nothing: anyone may write `approved_by` in MLflow."""
    if version is None:
        return False
    if key.startswith(MARKER_PREFIX + "."):
        dep_id = parse_marker(value)
        return dep_id is not None and Deployment.objects.filter(pk=dep_id, model_name=model).exists()
    if key not in WRITE_BACK_KEYS and not key.startswith(WRITE_BACK_PREFIXES):
        return False
    tags = ModelVersion.objects.filter(model__name=model, version=version).values_list("tags", flat=True).first()
    match = _REQUEST_LINK.search((tags or {}).get("governance.request") or "")
    if not match:
        return False
    deployed = Deployment.objects.filter(request_id=int(match.group(1)), model_name=model,
                                         state=DeploymentState.SUCCEEDED)
    if key == EMERGENCY_TAG:
        # Only a break-glass deploy writes the emergency mark; on a normal request's version it is not ours.
        deployed = deployed.filter(request__emergency=True)
    return deployed.exists()
