"""Every change a user makes in MLflow, seen by the sync, is an audit event with its before and after;
runs are re-read, so a corrected metric or a deleted run reaches the mirror, the pages and the gates.
Changes are made the way an MLflow user makes them (MlflowClient against the real server)."""

import pytest
from django.urls import reverse

from governance.audit.models import AuditEvent
from registry_ui.mirror.models import ModelVersion, RegisteredModel, RunSnapshot
from tests.fixtures_sync import writes_to

pytestmark = [pytest.mark.mlflow, pytest.mark.django_db]

OBSERVED = ("registry.model_created", "registry.model_deleted", "registry.model_renamed", "registry.version_created",
            "registry.version_deleted", "registry.tag_set", "registry.tag_changed", "registry.tag_removed",
            "registry.description_changed", "registry.run_deleted", "registry.run_restored",
            "registry.metrics_changed")


def events(name: str, since: int = 0) -> list[tuple]:
    """(action, version, before, after) of the observed-change events of model `name` after seq `since`."""
    return [(e.action, e.version, e.before, e.after)
            for e in AuditEvent.objects.filter(model_name=name, action__in=OBSERVED, seq__gt=since).order_by("seq")]


def last_seq() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def test_tags_set_changed_and_removed_on_a_model_and_a_version_are_events(mlflow_factory, synced):
    client = mlflow_factory.client
    name = mlflow_factory.model(tags={"team": "risk", "tier": "2"})
    v1 = mlflow_factory.version(name, with_run=False, tags={"validation_status": "pending", "old": "x"})
    synced(name)
    seq = last_seq()

    client.set_registered_model_tag(name, "owner", "ana")
    client.set_registered_model_tag(name, "tier", "1")
    client.delete_registered_model_tag(name, "team")
    client.set_model_version_tag(name, str(v1), "validation_status", "passed")
    client.delete_model_version_tag(name, str(v1), "old")
    synced(name)

    assert sorted(events(name, seq), key=str) == sorted([
        ("registry.tag_set", None, {"tag": "owner", "value": None}, {"tag": "owner", "value": "ana"}),
        ("registry.tag_changed", None, {"tag": "tier", "value": "2"}, {"tag": "tier", "value": "1"}),
        ("registry.tag_removed", None, {"tag": "team", "value": "risk"}, {"tag": "team", "value": None}),
        ("registry.tag_changed", v1, {"tag": "validation_status", "value": "pending"},
         {"tag": "validation_status", "value": "passed"}),
        ("registry.tag_removed", v1, {"tag": "old", "value": "x"}, {"tag": "old", "value": None}),
    ], key=str)
    event = AuditEvent.objects.get(model_name=name, action="registry.tag_set")
    assert event.actor_username == "system:sync" and "owner" in event.comment


def test_description_edits_of_a_model_and_a_version_are_events(mlflow_factory, synced):
    client = mlflow_factory.client
    name = mlflow_factory.model(description="first")
    v1 = mlflow_factory.version(name, with_run=False)
    synced(name)
    seq = last_seq()

    client.update_registered_model(name, description="second")
    client.update_model_version(name, str(v1), description="v1 notes")
    synced(name)

    assert events(name, seq) == [
        ("registry.description_changed", None, {"description": "first"}, {"description": "second"}),
        ("registry.description_changed", v1, {"description": ""}, {"description": "v1 notes"}),
    ]


def test_created_versions_and_models_are_events_after_the_first_import(mlflow_factory, synced):
    name = mlflow_factory.model()
    mlflow_factory.version(name, with_run=False)
    first = synced.full()
    # The first sync of an empty mirror is an import: one summary per written page, no event per object.
    assert first.first_import and first.observed == []
    assert not AuditEvent.objects.filter(action__in=OBSERVED).exists()
    summary = AuditEvent.objects.filter(action="registry.synced").last()
    assert summary.after["first_import"] is True and summary.comment.startswith("first import")

    v2 = mlflow_factory.version(name, with_run=False, tags={"k": "v"})
    other = mlflow_factory.model(description="new one", tags={"team": "fraud"})
    o1 = mlflow_factory.version(other, with_run=False)
    mlflow_factory.alias(other, "challenger", o1)
    seq = last_seq()
    synced.full()

    [(action, version, before, after)] = events(name, seq)
    assert (action, version, before) == ("registry.version_created", v2, None)
    assert after["version"] == v2 and after["stage"] == "None" and after["tags"] == {"k": "v"}
    created = events(other, seq)
    assert [(a, v) for a, v, _, _ in created] == [("registry.model_created", None), ("registry.version_created", o1)]
    assert created[0][3] == {"name": other, "description": "new one", "tags": {"team": "fraud"},
                             "aliases": {"challenger": o1}, "versions": [o1]}


def test_deleted_version_and_deleted_model_are_events_with_what_was_lost(mlflow_factory, synced):
    client = mlflow_factory.client
    doomed = mlflow_factory.model(tags={"team": "risk"})
    d1 = mlflow_factory.version(doomed, with_run=False)
    mlflow_factory.alias(doomed, "champion", d1)
    kept = mlflow_factory.model()
    mlflow_factory.version(kept, with_run=False)
    k2 = mlflow_factory.version(kept, with_run=False, tags={"validation_status": "passed"})
    synced.full()
    seq = last_seq()

    client.delete_registered_model(doomed)
    client.delete_model_version(kept, str(k2))
    synced.full()

    [(action, version, before, after)] = events(doomed, seq)
    assert (action, version, after) == ("registry.model_deleted", None, None)
    assert before["name"] == doomed and before["tags"] == {"team": "risk"} and before["aliases"] == {"champion": d1}
    assert [v["version"] for v in before["versions"]] == [d1]
    [(action, version, before, after)] = events(kept, seq)
    assert (action, version, after) == ("registry.version_deleted", k2, None)
    assert before["version"] == k2 and before["tags"] == {"validation_status": "passed"}


def test_a_rename_in_mlflow_renames_the_mirror_row_and_keeps_policy_requests_and_versions(
        mlflow_factory, synced, scientist, role_perms):
    from governance.workflow.models import ModelPolicy
    from governance.workflow.services import promotion_request_create

    client = mlflow_factory.client
    name = mlflow_factory.model(tags={"team": "risk"})
    v1 = mlflow_factory.version(name, metrics={"auc": 0.9})
    mlflow_factory.alias(name, "champion", v1)
    v2 = mlflow_factory.version(name, metrics={"auc": 0.95})
    synced.full()
    row = RegisteredModel.objects.get(name=name)
    policy = ModelPolicy.objects.create(model=row, metric_thresholds={"auc": {"min": 0.8}})
    req = promotion_request_create(actor=scientist, model_name=name, version=v2, target_stage="Staging",
                                   justification="better auc")
    seq = last_seq()

    new_name = f"{name}-renamed"
    client.rename_registered_model(name, new_name)
    report = synced.full()

    renamed = RegisteredModel.objects.get(name=new_name)
    assert renamed.pk == row.pk and not RegisteredModel.objects.filter(name=name).exists()
    assert ModelPolicy.objects.get(pk=policy.pk).model_id == row.pk
    req.refresh_from_db()
    assert req.model_id == row.pk and req.model_name == new_name and req.is_open
    assert sorted(renamed.versions.values_list("version", flat=True)) == [v1, v2]
    assert list(renamed.aliases.values_list("alias", "version")) == [("champion", v1)]
    [(action, version, before, after)] = events(new_name, seq)
    assert (action, version, before) == ("registry.model_renamed", None, {"name": name})
    assert after == {"name": new_name, "open_requests_renamed": [req.pk]}
    assert events(name, seq) == []  # no delete, no create
    assert report.deleted == 0 and report.created == 0
    assert not AuditEvent.objects.filter(action="registry.drift", seq__gt=seq).exists()


def test_a_model_deleted_and_another_created_with_other_versions_is_not_a_rename(mlflow_factory, synced):
    client = mlflow_factory.client
    old = mlflow_factory.model()
    mlflow_factory.version(old, with_run=False)
    synced.full()
    seq = last_seq()

    client.delete_registered_model(old)
    new = mlflow_factory.model()
    mlflow_factory.version(new, with_run=False)
    synced.full()

    assert [a for a, *_ in events(old, seq)] == ["registry.model_deleted"]
    assert [a for a, *_ in events(new, seq)] == ["registry.model_created", "registry.version_created"]


def test_a_deleted_run_is_an_event_is_shown_and_fails_the_lineage_gate_and_a_restore_is_an_event(
        mlflow_factory, synced, client, auditor):
    from governance.workflow.models import ModelPolicy
    from governance.workflow.policies import fresh_evidence

    name = mlflow_factory.model()
    v1 = mlflow_factory.version(name, metrics={"auc": 0.9}, dataset={"name": "train", "digest": "d1"})
    synced.full()
    model = RegisteredModel.objects.get(name=name)
    ModelPolicy.objects.create(model=model, require_lineage=True)
    run_id = ModelVersion.objects.get(model=model, version=v1).run_id

    def lineage_gate():
        gates = fresh_evidence(model=model, model_name=name, version=v1, target_stage="Staging")["gates"]
        return next(g for g in gates if g["gate"] == "lineage")

    assert lineage_gate()["passed"]
    seq = last_seq()

    mlflow_factory.client.delete_run(run_id)
    synced.full(all_runs=True)  # the version holds nothing: its run is re-read by the periodic all-runs sync

    assert RunSnapshot.objects.get(run_id=run_id).lifecycle_stage == "deleted"
    assert events(name, seq) == [("registry.run_deleted", v1, {"run_id": run_id, "lifecycle_stage": "active"},
                                  {"run_id": run_id, "lifecycle_stage": "deleted"})]
    gate = lineage_gate()
    assert not gate["passed"] and "deleted" in gate["detail"]
    client.force_login(auditor)
    page = client.get(reverse("registry:version_detail", args=[name, v1])).content.decode()
    assert "deleted in MLflow" in page
    lineage = client.get(reverse("registry:lineage", args=[name, v1])).content.decode()
    assert "deleted in MLflow" in lineage and "(deleted)" in lineage.split("gap-summary")[1].split("</p>")[0]

    seq = last_seq()
    mlflow_factory.client.restore_run(run_id)
    synced.full(all_runs=True)
    assert events(name, seq) == [("registry.run_restored", v1, {"run_id": run_id, "lifecycle_stage": "deleted"},
                                  {"run_id": run_id, "lifecycle_stage": "active"})]
    assert lineage_gate()["passed"]


def test_a_corrected_metric_of_an_evidence_run_reaches_the_mirror_and_is_an_event(mlflow_factory, synced):
    name = mlflow_factory.model()
    champion = mlflow_factory.version(name, metrics={"auc": 0.91})
    plain = mlflow_factory.version(name, metrics={"auc": 0.5})
    mlflow_factory.alias(name, "champion", champion)
    synced(name)
    runs = dict(ModelVersion.objects.filter(model__name=name).values_list("version", "run_id"))
    seq = last_seq()

    # Logged later, as someone correcting an evaluation would: the latest value is what MLflow reports.
    mlflow_factory.client.log_metric(runs[champion], "auc", 0.70, step=1)
    mlflow_factory.client.log_metric(runs[plain], "auc", 0.55, step=1)
    report = synced(name)  # a targeted sync re-reads the runs behind a stage or an alias

    assert RunSnapshot.objects.get(run_id=runs[champion]).metrics["auc"] == 0.70
    assert RunSnapshot.objects.get(run_id=runs[plain]).metrics["auc"] == 0.5  # not evidence: left to a full sync
    assert report.runs_fetched == 1
    assert events(name, seq) == [("registry.metrics_changed", champion,
                                  {"run_id": runs[champion], "metrics": {"auc": 0.91}},
                                  {"run_id": runs[champion], "metrics": {"auc": 0.70}})]

    synced.full()  # every run is re-read; a run that is no evidence changes the mirror, not the record
    assert RunSnapshot.objects.get(run_id=runs[plain]).metrics["auc"] == 0.55
    assert len(events(name, seq)) == 1


def test_the_run_of_a_version_in_an_open_request_is_re_read_by_a_targeted_sync(
        mlflow_factory, synced, scientist, role_perms):
    from governance.workflow.services import promotion_request_create

    name = mlflow_factory.model()
    v1 = mlflow_factory.version(name, metrics={"auc": 0.9})
    synced(name)
    promotion_request_create(actor=scientist, model_name=name, version=v1, target_stage="Staging",
                             justification="ready")
    run_id = ModelVersion.objects.get(model__name=name, version=v1).run_id
    seq = last_seq()

    mlflow_factory.client.log_metric(run_id, "auc", 0.6, step=1)
    synced(name)

    assert RunSnapshot.objects.get(run_id=run_id).metrics["auc"] == 0.6
    assert events(name, seq) == [("registry.metrics_changed", v1, {"run_id": run_id, "metrics": {"auc": 0.9}},
                                  {"run_id": run_id, "metrics": {"auc": 0.6}})]


def test_an_unchanged_resync_re_reads_the_runs_and_writes_no_row_and_no_event(mlflow_factory, synced,
                                                                              capture_writes):
    name = mlflow_factory.model(description="d", tags={"a": "1"})
    v1 = mlflow_factory.version(name, metrics={"auc": 0.9, "n": float("nan")}, tags={"t": "1"},
                                dataset={"name": "d", "digest": "0f"})
    mlflow_factory.version(name, metrics={"auc": 0.8})
    mlflow_factory.alias(name, "champion", v1)
    mlflow_factory.stage(name, v1, "Production")
    synced.full()
    events_before = AuditEvent.objects.count()

    with capture_writes() as ctx:
        report = synced.full()
        targeted = synced(name)

    assert report.runs_fetched >= 2 and targeted.runs_fetched == 1  # re-read, found unchanged
    assert writes_to(ctx.captured_queries) == []
    assert report.rows_written == targeted.rows_written == 0
    assert AuditEvent.objects.count() == events_before


def test_a_full_sync_rereads_every_run_only_when_the_all_runs_period_has_passed(mlflow_factory, synced, settings):
    """The runs behind decisions are re-read by every sync; the rest every REGISTRY_ALL_RUNS_EVERY."""
    from registry_ui.mirror.models import SyncState

    settings.REGISTRY_ALL_RUNS_EVERY = 3600
    name = mlflow_factory.model()
    champion = mlflow_factory.version(name, metrics={"auc": 0.91})
    plain = mlflow_factory.version(name, metrics={"auc": 0.5})
    mlflow_factory.alias(name, "champion", champion)
    synced.full(all_runs=True)
    runs = dict(ModelVersion.objects.filter(model__name=name).values_list("version", "run_id"))
    for version in (champion, plain):
        mlflow_factory.client.log_metric(runs[version], "auc", 0.7)

    synced.full()  # within the period: the champion's run is evidence, the plain one waits
    assert RunSnapshot.objects.get(run_id=runs[champion]).metrics["auc"] == 0.7
    assert RunSnapshot.objects.get(run_id=runs[plain]).metrics["auc"] == 0.5

    SyncState.objects.filter(pk=1).update(last_all_runs_at=None)  # the period has passed
    synced.full()
    assert RunSnapshot.objects.get(run_id=runs[plain]).metrics["auc"] == 0.7
    assert SyncState.get().last_all_runs_at is not None
