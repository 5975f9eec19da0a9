"""A full sync spread in shards (registry_ui/mirror/shards.py) against the real `mlflow server`: the
same mirror as the in-process sync, 0 rows on an unchanged re-run, one lock for the whole run, a claim
taken back by the same task re-run or by anyone once it lapsed, a run whose lock was taken writes nothing.
Shards are applied here in this process and in any order; tests/test_multinode.py runs them on workers."""

from datetime import timedelta

import pytest
from django.utils import timezone

from registry_ui.mirror import shards
from registry_ui.mirror.models import ModelVersion, RegisteredModel, ShardState, SyncRunState, SyncShard, SyncState
from registry_ui.mirror.sync import SyncBusy
from tests.fixtures_sync import writes_to

pytestmark = [pytest.mark.mlflow, pytest.mark.django_db]


@pytest.fixture
def spread(settings, use_mlflow_server):
    settings.REGISTRY_SYNC_SHARD_SIZE = 3
    uri = use_mlflow_server.url

    def run_all(task_id: str, order=reversed) -> shards.SyncRun:
        run = shards.plan(task_id=task_id, uri=uri)
        for i, index in enumerate(order(shards.pending_shards(run))):
            shards.apply_shard(run_id=run.pk, index=index, claimant=f"{task_id}-worker-{i % 2}", uri=uri)
        run.refresh_from_db()
        return run

    run_all.uri = uri
    return run_all


def test_shards_in_any_order_mirror_the_registry_and_an_unchanged_rerun_writes_nothing(
        mlflow_factory, spread, capture_writes):
    names = [mlflow_factory.model(tags={"i": str(i)}) for i in range(4)]
    versions = {name: mlflow_factory.version(name) for name in names}
    mlflow_factory.alias(names[0], "champion", versions[names[0]])

    run = spread("first")

    assert run.state == SyncRunState.DONE and run.shards_total >= 2
    assert set(run.shards.values_list("state", flat=True)) == {ShardState.DONE}
    for name in names:
        assert list(ModelVersion.objects.filter(model__name=name).values_list("version", flat=True)) == [versions[name]]
    assert RegisteredModel.objects.get(name=names[0]).aliases.get().alias == "champion"
    state = SyncState.get()
    assert state.lock_owner == "" and state.last_success_at == run.finished_at
    assert state.last_report["models_seen"] == RegisteredModel.objects.count()

    with capture_writes() as ctx:
        again = spread("second", order=list)

    assert again.state == SyncRunState.DONE and again.report["rows_written"] == 0
    assert writes_to(ctx.captured_queries) == []

    mlflow_factory.client.delete_registered_model(names[1])
    gone = spread("third")
    assert gone.report["deleted"] >= 2 and not RegisteredModel.objects.filter(name=names[1]).exists()


def test_one_lock_for_the_whole_run(mlflow_factory, spread, synced):
    mlflow_factory.model()
    run = shards.plan(task_id="holder", uri=spread.uri)

    with pytest.raises(SyncBusy):
        shards.plan(task_id="another", uri=spread.uri)
    with pytest.raises(SyncBusy):
        synced.full()
    # The planning task re-run (its worker died) resumes its own run rather than waiting for the lease.
    assert shards.plan(task_id="holder", uri=spread.uri).pk == run.pk

    for index in shards.pending_shards(run):
        shards.apply_shard(run_id=run.pk, index=index, claimant="w", uri=spread.uri)
    assert SyncState.get().lock_owner == ""
    synced.full()  # free again


def test_a_claimed_shard_is_taken_back_by_its_own_task_or_once_the_claim_lapsed(mlflow_factory, spread):
    for _ in range(4):
        mlflow_factory.model()
    run = shards.plan(task_id="t", uri=spread.uri)
    first, *rest = shards.pending_shards(run)
    soon = timezone.now() + timedelta(minutes=5)
    SyncShard.objects.filter(run=run, index=first).update(state=ShardState.RUNNING, claimed_by="task-a",
                                                          claimed_until=soon)

    other = shards.apply_shard(run_id=run.pk, index=first, claimant="task-b", uri=spread.uri)
    assert other["outcome"] == "skipped"
    mine = shards.apply_shard(run_id=run.pk, index=first, claimant="task-a", uri=spread.uri)
    assert mine["outcome"] == "synced"
    assert SyncShard.objects.get(run=run, index=first).attempts == 1

    second = rest[0]
    SyncShard.objects.filter(run=run, index=second).update(state=ShardState.RUNNING, claimed_by="task-dead",
                                                           claimed_until=timezone.now() - timedelta(seconds=1))
    assert shards.apply_shard(run_id=run.pk, index=second, claimant="task-c", uri=spread.uri)["outcome"] == "synced"
    assert shards.apply_shard(run_id=run.pk, index=second, claimant="task-c", uri=spread.uri)["outcome"] == "skipped"


def test_a_run_whose_lock_another_sync_took_writes_nothing(mlflow_factory, spread, capture_writes):
    mlflow_factory.version(mlflow_factory.model())
    stale = shards.plan(task_id="stale", uri=spread.uri)
    SyncState.objects.filter(pk=1).update(locked_until=timezone.now() - timedelta(seconds=1))  # its workers died
    RegisteredModel.objects.all().delete()
    fresh = spread("fresh")
    assert fresh.state == SyncRunState.DONE

    RegisteredModel.objects.all().delete()
    with capture_writes() as ctx:
        outcome = shards.apply_shard(run_id=stale.pk, index=0, claimant="late", uri=spread.uri)

    assert outcome["outcome"] == "skipped" and writes_to(ctx.captured_queries) == []
    stale.refresh_from_db()
    assert stale.state == SyncRunState.ABANDONED
