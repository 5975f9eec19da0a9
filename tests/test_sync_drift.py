"""Drift classification after a sync, and the sync_registry command (progress, failures, the lock)."""

import io
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from governance.audit.models import AuditEvent
from registry_ui.mirror.models import ModelVersion, RegisteredModel, SyncState

pytestmark = [pytest.mark.mlflow, pytest.mark.django_db]


def test_out_of_band_alias_move_and_stage_transition_are_recorded_as_drift(mlflow_factory, synced):
    name = mlflow_factory.model()
    v1 = mlflow_factory.version(name, with_run=False)
    v2 = mlflow_factory.version(name, with_run=False)
    mlflow_factory.alias(name, "champion", v1)
    synced.full()
    assert not AuditEvent.objects.filter(action="registry.drift", model_name=name).exists()

    mlflow_factory.alias(name, "champion", v2)
    mlflow_factory.stage(name, v2, "Production")
    synced.full()

    drift = {(e.version, e.actor_username, str(e.before), str(e.after))
             for e in AuditEvent.objects.filter(action="registry.drift", model_name=name)}
    assert drift == {
        (v2, "system:sync", str({"alias": "champion", "version": v1}), str({"alias": "champion", "version": v2})),
        (v2, "system:sync", str({"stage": "None"}), str({"stage": "Production"})),
    }
    synced_event = AuditEvent.objects.filter(action="registry.synced").last()
    assert synced_event.actor_username == "system:sync" and synced_event.after["changes"] >= 2


def test_a_change_a_deployment_explains_is_not_drift(mlflow_factory, synced, monkeypatch):
    import governance.workflow.drift

    name = mlflow_factory.model()
    v1 = mlflow_factory.version(name, with_run=False)
    synced(name)
    seen = []

    def explains(**kwargs):
        seen.append(kwargs)
        return SimpleNamespace(state="succeeded")  # a deployment whose success is on record already

    monkeypatch.setattr(governance.workflow.drift, "explaining_deployment", explains)
    mlflow_factory.alias(name, "champion", v1)
    synced(name)

    assert seen == [{"model_name": name, "version": v1, "kind": "alias", "name": "champion", "before": None,
                     "after": v1}]
    assert not AuditEvent.objects.filter(action="registry.drift", model_name=name).exists()
    assert AuditEvent.objects.filter(action="registry.synced", model_name=name).count() == 2


def test_a_failing_drift_handler_rolls_its_page_back_and_the_next_sync_still_records_the_drift(
        mlflow_factory, synced, monkeypatch):
    """The drift events are written in the transaction that writes the mirror rows: if recording them
    fails, the mirror keeps its old state, so the change is not silently absorbed."""
    import governance.workflow.drift
    from registry_ui.mirror.sync import SyncError

    name = mlflow_factory.model()
    v1 = mlflow_factory.version(name, with_run=False)
    mlflow_factory.version(name, with_run=False)
    synced.full()
    mlflow_factory.stage(name, v1, "Production")
    mlflow_factory.alias(name, "champion", v1)

    def broken(**kwargs):
        raise RuntimeError("explanation store unreachable")

    with monkeypatch.context() as m:
        m.setattr(governance.workflow.drift, "explaining_deployment", broken)
        with pytest.raises(SyncError, match="report handler .* failed, the page was not written"):
            synced.full()
    assert ModelVersion.objects.get(model__name=name, version=v1).stage == "None"  # page rolled back
    assert not RegisteredModel.objects.get(name=name).aliases.exists()
    assert "explanation store unreachable" in SyncState.get().last_error
    assert not AuditEvent.objects.filter(action="registry.drift", model_name=name).exists()

    synced.full()
    assert ModelVersion.objects.get(model__name=name, version=v1).stage == "Production"
    drift = sorted(str(e.after) for e in AuditEvent.objects.filter(action="registry.drift", model_name=name))
    assert drift == [str({"alias": "champion", "version": v1}), str({"stage": "Production"})]


def test_a_webhook_sync_during_a_full_sync_is_not_undone_by_the_page_read_before_it(mlflow_factory, synced,
                                                                                    monkeypatch):
    """A full sync reads a page (champion -> v1); MLflow then moves the alias and a webhook's targeted
    sync writes v2; the full sync's older page must not put v1 back (and report v2 -> v1 as drift)."""
    from registry_ui.mirror import client as gw

    name = mlflow_factory.model()
    v1 = mlflow_factory.version(name, with_run=False)
    v2 = mlflow_factory.version(name, with_run=False)
    mlflow_factory.alias(name, "champion", v1)
    synced.full()
    read_versions = gw.model_versions_for
    webhook_fired = []

    def versions_then_webhook(names, **kwargs):
        result = read_versions(names, **kwargs)
        if name in names and not webhook_fired:
            webhook_fired.append(name)
            mlflow_factory.alias(name, "champion", v2)
            synced(name)  # what the webhook receiver runs
        return result

    monkeypatch.setattr(gw, "model_versions_for", versions_then_webhook)
    report = synced.full()

    assert webhook_fired and report.skipped_fresher == 1
    assert RegisteredModel.objects.get(name=name).aliases.get(alias="champion").version == v2
    drift = [(e.before, e.after) for e in AuditEvent.objects.filter(action="registry.drift", model_name=name)]
    assert drift == [({"alias": "champion", "version": v1}, {"alias": "champion", "version": v2})]
    synced.full()  # the next full sync agrees with the mirror: nothing to write for this model
    assert AuditEvent.objects.filter(action="registry.drift", model_name=name).count() == 1


def test_an_unchanged_resync_writes_no_audit_event(mlflow_factory, synced):
    name = mlflow_factory.model()
    mlflow_factory.version(name, with_run=False)
    synced.full()
    before = AuditEvent.objects.count()
    synced.full()
    assert AuditEvent.objects.count() == before


def test_command_prints_progress_and_a_summary(mlflow_factory, use_mlflow_server, settings):
    settings.REGISTRY_SYNC_PAGE_SIZE = 2
    for _ in range(3):
        mlflow_factory.version(mlflow_factory.model(), with_run=False)
    out = io.StringIO()
    call_command("sync_registry", stdout=out)
    lines = out.getvalue().splitlines()
    assert any(line.startswith("[") and "models" in line for line in lines)  # progress
    assert lines[-1].startswith("Synced: ") and "rows written" in lines[-1]


def test_command_refuses_while_another_sync_holds_the_lock(use_mlflow_server):
    SyncState.get()
    SyncState.objects.filter(pk=1).update(lock_owner="other", locked_until=timezone.now() + timedelta(minutes=5))
    with pytest.raises(CommandError, match="another sync is running") as exc:
        call_command("sync_registry", stdout=io.StringIO())
    assert "\n" not in str(exc.value)


class KillOnProgress(io.StringIO):
    """The command's stdout: kills MLflow the moment the first page has been written."""

    def __init__(self, server):
        super().__init__()
        self.server = server

    def write(self, s):
        if s.startswith("[") and self.server.up:
            self.server.kill()
        return super().write(s)


def test_mlflow_killed_mid_sync_fails_cleanly_and_the_next_sync_completes(private_cuttable_mlflow, settings):
    from tests.conftest import MlflowFactory

    settings.MLFLOW_TRACKING_URI = private_cuttable_mlflow.url
    settings.REGISTRY_SYNC_PAGE_SIZE = 2
    settings.MLFLOW_SYNC_RETRIES = 0
    settings.MLFLOW_SYNC_TIMEOUT = 5
    factory = MlflowFactory(private_cuttable_mlflow.url)
    names = sorted(factory.model(f"m{i}-{factory.unique()}") for i in range(5))
    for n in names:
        factory.version(n, with_run=False)
        factory.version(n, metrics={"auc": 0.7})
    # The mirror already knows a model MLflow no longer has: a failed scan must not delete it.
    RegisteredModel.objects.create(name="zz-deleted-in-mlflow")

    with pytest.raises(CommandError) as exc:
        call_command("sync_registry", stdout=KillOnProgress(private_cuttable_mlflow))

    message = str(exc.value)
    assert message.startswith("sync failed: MLflow unavailable") and "\n" not in message
    mirrored = list(RegisteredModel.objects.exclude(name="zz-deleted-in-mlflow").values_list("name", flat=True))
    assert mirrored == names[:2]  # the first page, complete: each model with both its versions
    assert all(ModelVersion.objects.filter(model__name=n).count() == 2 for n in mirrored)
    assert RegisteredModel.objects.filter(name="zz-deleted-in-mlflow").exists()
    state = SyncState.get()
    assert state.last_error.startswith("MLflow unavailable") and state.last_error_at
    assert state.last_success_at is None and state.lock_owner == ""

    private_cuttable_mlflow.start()
    call_command("sync_registry", stdout=io.StringIO())

    assert sorted(RegisteredModel.objects.values_list("name", flat=True)) == names
    assert ModelVersion.objects.filter(model__name__in=names).count() == 10
    state = SyncState.get()
    assert state.last_success_at > state.last_error_at


@pytest.mark.django_db(transaction=True)
def test_two_syncs_at_once_one_runs_the_other_is_refused(mlflow_factory, use_mlflow_server):
    import threading

    from django.db import connection

    from registry_ui.mirror.sync import SyncBusy, sync_registry

    mlflow_factory.version(mlflow_factory.model(), with_run=False)
    first_is_running, second_done = threading.Event(), threading.Event()
    outcome = {}

    def hold(done, total):
        first_is_running.set()
        second_done.wait(60)

    def first():
        try:
            outcome["first"] = sync_registry(progress=hold)
        finally:
            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    assert first_is_running.wait(120)
    try:
        with pytest.raises(SyncBusy):
            sync_registry()
    finally:
        second_done.set()
        thread.join(120)
    assert outcome["first"].models_seen >= 1
    assert SyncState.get().lock_owner == ""
