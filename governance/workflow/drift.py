"""Drift: a stage or alias change in MLflow that no governance deployment explains.

registry_ui.mirror.sync calls handle_sync_report() (settings.REGISTRY_SYNC_REPORT_HANDLERS) with what each of
its transactions wrote (a page of models, a deletion batch, one targeted model), inside that
transaction. Each unexplained change becomes a `registry.drift` audit event; a part that changed the
mirror also leaves one `registry.synced` event (a no-op sync writes nothing).
"""

from governance import audit
from governance.workflow.explain import deployment_explains

ACTOR = "system:sync"


def _state(change) -> dict:
    def side(value):
        if change.kind == "stage":
            return {"stage": value}
        return {"alias": change.name, "version": value}

    return side(change.before), side(change.after)


def _v(version) -> str:
    return "(none)" if version is None else f"v{version}"


def handle_sync_report(report) -> None:
    for change in report.changes:
        if deployment_explains(model_name=change.model, version=change.version, kind=change.kind,
                               name=change.name, before=change.before, after=change.after):
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
