"""The sync engine against a real `mlflow server`: created, updated, deleted; the changes MLflow's
timestamps do not show; run snapshots; idempotency; odd data."""

import time

import pytest

from registry_ui.mirror.models import DatasetInput, ModelAlias, ModelVersion, RegisteredModel, RunSnapshot, SyncState
from tests.fixtures_sync import writes_to

pytestmark = [pytest.mark.mlflow, pytest.mark.django_db]


def test_full_sync_mirrors_models_versions_aliases_and_runs(mlflow_factory, synced):
    name = mlflow_factory.model(description="# Churn\n<b>bold</b>", tags={"team": "risk"})
    v1 = mlflow_factory.version(name, params={"lr": 0.1}, metrics={"val_auc": 0.91, "bad": float("nan"),
                                                                   "big": float("inf")},
                                tags={"validation_status": "passed"},
                                dataset={"name": "train", "digest": "abc123", "context": "training"})
    v2 = mlflow_factory.version(name, with_run=False, description="no run")
    mlflow_factory.stage(name, v1, "Production")
    mlflow_factory.alias(name, "champion", v1)

    report = synced.full()

    model = RegisteredModel.objects.get(name=name)
    assert model.description == "# Churn\n<b>bold</b>"  # stored as-is; escaping is the pages' job
    assert model.tags == {"team": "risk"}
    assert model.created_at and model.updated_at and model.synced_at
    versions = {v.version: v for v in model.versions.all()}
    assert set(versions) == {v1, v2}
    assert versions[v1].stage == "Production" and versions[v1].tags == {"validation_status": "passed"}
    assert versions[v2].run_id == "" and versions[v2].description == "no run"
    assert list(model.aliases.values_list("alias", "version")) == [("champion", v1)]
    run = RunSnapshot.objects.get(run_id=versions[v1].run_id)
    assert run.params == {"lr": "0.1"}
    # NaN survives as a string (JSON has none); MLflow's SQL store itself clamps inf to the largest float.
    assert run.metrics["val_auc"] == 0.91 and run.metrics["bad"] == "NaN"
    assert run.metrics["big"] == "Infinity" or float(run.metrics["big"]) == 1.7976931348623157e308
    assert run.experiment_name.startswith("exp-") and run.status == "FINISHED"
    assert list(DatasetInput.objects.filter(run=run).values_list("name", "digest", "context")) == [
        ("train", "abc123", "training")]
    assert report.created >= 3 and report.runs_fetched >= 1
    # A model first seen is a baseline, not a change.
    assert [c for c in report.changes if c.model == name] == []
    state = SyncState.get()
    assert state.last_success_at == report.finished_at and state.last_report["created"] == report.created


def test_alias_move_and_tag_changes_are_caught_without_a_timestamp_change(mlflow_factory, synced):
    client = mlflow_factory.client
    name = mlflow_factory.model(tags={"team": "risk"})
    v1 = mlflow_factory.version(name, with_run=False)
    v2 = mlflow_factory.version(name, with_run=False)
    mlflow_factory.alias(name, "champion", v1)
    synced(name)
    model_ts = client.get_registered_model(name).last_updated_timestamp
    version_ts = client.get_model_version(name, str(v2)).last_updated_timestamp

    mlflow_factory.alias(name, "champion", v2)
    client.set_model_version_tag(name, str(v2), "validation_status", "passed")
    client.set_registered_model_tag(name, "owner", "ana")
    # The premise: MLflow's timestamps do not move for any of these.
    assert client.get_registered_model(name).last_updated_timestamp == model_ts
    assert client.get_model_version(name, str(v2)).last_updated_timestamp == version_ts

    report = synced.full()

    assert ModelAlias.objects.get(model__name=name, alias="champion").version == v2
    assert ModelVersion.objects.get(model__name=name, version=v2).tags == {"validation_status": "passed"}
    assert RegisteredModel.objects.get(name=name).tags == {"team": "risk", "owner": "ana"}
    [change] = [c for c in report.changes if c.model == name]
    assert (change.kind, change.name, change.version, change.before, change.after) == ("alias", "champion", v2,
                                                                                      v1, v2)


def test_stage_transition_alias_removal_and_new_alias_are_reported(mlflow_factory, synced):
    client = mlflow_factory.client
    name = mlflow_factory.model()
    v1 = mlflow_factory.version(name, with_run=False)
    mlflow_factory.alias(name, "old", v1)
    synced(name)
    mlflow_factory.stage(name, v1, "Staging")
    client.delete_registered_model_alias(name, "old")
    mlflow_factory.alias(name, "challenger", v1)

    report = synced(name)

    got = sorted((c.kind, c.name, c.before, c.after) for c in report.changes)
    assert got == [("alias", "challenger", None, v1), ("alias", "old", v1, None), ("stage", "stage", "None",
                                                                                   "Staging")]
    assert all(c.detected_at == report.changes[0].detected_at for c in report.changes)
    assert report.to_dict()["changes"][0]["detected_at"]


def test_second_sync_of_an_unchanged_registry_writes_nothing(mlflow_factory, synced, capture_writes):
    name = mlflow_factory.model(tags={"a": "1"})
    v1 = mlflow_factory.version(name, metrics={"m": float("-inf"), "n": float("nan"), "big": 1e300, "tiny": 1e-12},
                                dataset={"name": "d", "digest": "0f"})
    mlflow_factory.alias(name, "champion", v1)
    synced.full()

    with capture_writes() as ctx:
        report = synced.full()

    assert writes_to(ctx.captured_queries) == []
    assert report.rows_written == 0 and report.created == report.updated == report.deleted == 0
    # A full sync re-reads every run (a finished run can still change) and writes none that did not.
    assert report.unchanged >= 2 and report.runs_fetched >= 1 and report.changes == [] and report.observed == []


def test_deleted_model_and_deleted_version_leave_the_mirror(mlflow_factory, synced):
    client = mlflow_factory.client
    doomed = mlflow_factory.model()
    mlflow_factory.version(doomed, with_run=False)
    kept = mlflow_factory.model()
    v1 = mlflow_factory.version(kept, with_run=False)
    v2 = mlflow_factory.version(kept, with_run=False)
    mlflow_factory.alias(kept, "champion", v2)
    synced.full()
    assert RegisteredModel.objects.filter(name__in=[doomed, kept]).count() == 2

    client.delete_registered_model(doomed)
    client.delete_model_version(kept, str(v2))
    report = synced.full()

    assert not RegisteredModel.objects.filter(name=doomed).exists()
    assert not ModelVersion.objects.filter(model__name=doomed).exists()
    assert list(ModelVersion.objects.filter(model__name=kept).values_list("version", flat=True)) == [v1]
    assert not ModelAlias.objects.filter(model__name=kept).exists()  # MLflow drops the alias with the version
    assert report.deleted >= 3


def test_description_and_run_changes_are_updated(mlflow_factory, synced):
    client = mlflow_factory.client
    name = mlflow_factory.model(description="first")
    v1 = mlflow_factory.version(name, params={"depth": 3})
    synced(name)
    old_run = ModelVersion.objects.get(model__name=name, version=v1).run_id
    client.update_registered_model(name, description="second")
    client.update_model_version(name, str(v1), description="v1 notes")
    client.delete_run(old_run)  # a run deleted in MLflow stays readable as deleted

    RunSnapshot.objects.filter(run_id=old_run).delete()  # forces a re-fetch of the run
    report = synced(name)

    assert RegisteredModel.objects.get(name=name).description == "second"
    assert ModelVersion.objects.get(model__name=name, version=v1).description == "v1 notes"
    assert RunSnapshot.objects.get(run_id=old_run).lifecycle_stage == "deleted"
    assert report.updated == 2 and report.runs_fetched == 1


def test_odd_names_and_data_do_not_break_a_sync(mlflow_factory, synced):
    names = [
        mlflow_factory.unique("Modèle de crédit ünïcødé 模型 v1.2"),
        mlflow_factory.unique("it's \"quoted\" \\ twice %_"),
        mlflow_factory.unique("x" * 150),
    ]
    long_description = "<script>alert(1)</script>\n" + "lorem ipsum " * 5000
    for n in names:
        mlflow_factory.model(n, description=long_description)
    v = mlflow_factory.version(names[0], with_run=False, tags={f"k{i}": f"v{i}" for i in range(1000)})
    mlflow_factory.version(names[1], with_run=False)
    mlflow_factory.version(names[2], metrics={"nan": float("nan")})

    report = synced.full()

    for n in names:
        model = RegisteredModel.objects.get(name=n)
        assert model.description == long_description
        assert model.versions.count() == 1
    assert len(ModelVersion.objects.get(model__name=names[0], version=v).tags) == 1000
    assert report.versions_seen >= 3


def test_a_held_lock_refuses_a_second_sync(mlflow_factory, synced):
    from datetime import timedelta

    from django.utils import timezone

    from registry_ui.mirror.sync import SyncBusy

    SyncState.get()
    SyncState.objects.filter(pk=1).update(lock_owner="someone", locked_until=timezone.now() + timedelta(minutes=5))
    with pytest.raises(SyncBusy):
        synced.full()
    # An expired lease (its holder crashed) does not block forever.
    SyncState.objects.filter(pk=1).update(locked_until=timezone.now() - timedelta(seconds=1))
    synced.full()
    assert SyncState.get().lock_owner == ""


def test_runs_are_fetched_once_and_only_for_new_versions(mlflow_factory, synced):
    name = mlflow_factory.model()
    for _ in range(3):
        mlflow_factory.version(name, metrics={"auc": 0.5})
    assert synced(name).runs_fetched == 3
    mlflow_factory.version(name, metrics={"auc": 0.6})
    assert synced(name).runs_fetched == 1
    assert synced(name).runs_fetched == 0
    time.sleep(0)  # nothing timed: counts only


def test_history_batches_stay_under_mlflows_caps_and_long_histories_are_sampled():
    from registry_ui.mirror.sync import _history_batches, _thin

    steps = {f"r{i}": 99 for i in range(150)} | {"big": 20_000, "long": 5_000}
    batches = list(_history_batches(sorted(steps), steps, max_points=1000))
    whole = [b for b, sampled in batches if not sampled]
    assert sorted(r for b, _ in batches for r in b) == sorted(steps)
    assert all(len(b) <= 100 and sum(steps[r] + 1 for r in b) <= 25_000 for b in whole)
    assert [b for b, sampled in batches if sampled] == [["big", "long"]]
    rows = [[i, float(i), i] for i in range(10)]
    assert _thin(rows, 4) == [rows[0], rows[3], rows[6], rows[9]] and _thin(rows, 20) == rows
