"""Drift: a stage or alias change in MLflow that no governance deployment explains.

registry_ui.mirror.sync calls handle_sync_report() (settings.REGISTRY_SYNC_REPORT_HANDLERS) with what each of
its transactions wrote (a page of models, a deletion batch, one targeted model), inside that
transaction. Each unexplained change becomes a `registry.drift` audit event; a change that is a deploy's
own write which landed after the console stopped waiting for it is recorded as that deploy's
success instead (services.credit_late_landing); a part that changed the mirror also leaves one
`registry.synced` event (a no-op sync writes nothing).
"""

from django.utils import timezone

from governance import audit
from governance.workflow.explain import deployment_explains, explaining_deployment
from governance.workflow.models import DeploymentState, PromotionRequest
from governance.workflow.services import credit_late_landing, pointers_from_mirror

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


def handle_sync_report(report) -> None:
    for change in report.changes:
        what = {"model_name": change.model, "version": change.version, "kind": change.kind, "name": change.name,
                "before": change.before, "after": change.after}
        if deployment_explains(**what):
            dep = explaining_deployment(**what)
            if dep is not None:
                _credit(dep, change)
            continue
        before, after = _state(change)
        if change.kind == "stage":
            what = f"stage {change.before} -> {change.after}"
        else:
            what = f"@{change.name}: {_v(change.before)} -> {_v(change.after)}"
        audit.record(actor_name=ACTOR, action="registry.drift", model=change.model, version=change.version,
                     before=before, after=after,
                     comment=f"Changed in MLflow outside governance ({what}), seen at {change.detected_at.isoformat()}")
    if report.changed:
        model = report.scope.removeprefix("model:") if report.scope.startswith("model:") else ""
        audit.record(actor_name=ACTOR, action="registry.synced", model=model,
                     after={k: v for k, v in report.to_dict().items() if k != "changes"}
                     | {"changes": len(report.changes)},
                     comment=f"{report.scope} sync: {report.summary()}")
