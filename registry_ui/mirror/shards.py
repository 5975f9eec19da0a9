"""A full sync spread over the task workers: planned once, applied in shards, finished by the last one.

- **Plan** (the scheduled sync task): take the one sync lock (the lease on the SyncState row), page
  through MLflow's models (cheap: aliases come inline), and store them as shards of
  REGISTRY_SYNC_SHARD_SIZE models under a SyncRun, in one transaction. The caller enqueues one task per
  shard. The lock's owner is the planning task's id, so a planning task re-run after its worker died
  takes its own lock back (and resumes its run) instead of waiting for the lease to run out.
- **Shard** (any worker): claim the shard with a conditional UPDATE (queued; or running under the same
  task id, i.e. this task re-run after its worker was killed; or running with a lapsed claim), read its
  models' versions and runs from MLflow, and write them exactly as the in-process sync writes a page
  (sync._Context.apply_page: diff, bulk writes, report handlers, all in one transaction). In that same
  transaction the shard is marked done and the sync lock renewed, conditionally on still holding both:
  a shard's rows and audit events commit once, and never after another full sync took the lock.
- **Finish** (whoever completes the last shard, claimed like a shard): the deletion check of the
  in-process sync over every model the plan listed, the SyncState summary, the lock released.

So two full syncs never overlap (the lock is held from plan to finish and checked in every shard's
transaction), an unchanged registry still writes 0 rows (shards write through the same diff), and a
worker killed mid-shard loses nothing: its transaction rolled back and the shard is claimed again.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from registry_ui.mirror import client as gw
from registry_ui.mirror import sync
from registry_ui.mirror.models import ShardState, SyncRun, SyncRunState, SyncShard, SyncState
from registry_ui.mirror.sync import Change, SyncBusy, SyncError, SyncReport

COUNTS = ("created", "updated", "deleted", "unchanged", "rows_written", "models_seen", "versions_seen", "runs_fetched",
          "skipped_fresher")


def shard_size() -> int:
    return max(1, int(getattr(settings, "REGISTRY_SYNC_SHARD_SIZE", 500)))


def _take_lock(owner: str) -> bool:
    """The sync lock for `owner`: free, lapsed, or already its own (a re-run of the same task)."""
    try:
        SyncState.get()
    except IntegrityError:  # two first-ever syncs created the row at once
        pass
    now = timezone.now()
    free = Q(lock_owner="") | Q(locked_until__isnull=True) | Q(locked_until__lt=now) | Q(lock_owner=owner)
    return SyncState.objects.filter(pk=1).filter(free).update(lock_owner=owner, locked_until=now + sync._lease()) == 1


def _release(owner: str) -> None:
    SyncState.objects.filter(pk=1, lock_owner=owner).update(lock_owner="", locked_until=None)


def _record(record: gw.ModelRecord) -> dict:
    return {"name": record.name, "description": record.description, "tags": record.tags,
            "aliases": record.aliases, "created_ms": record.created_ms, "updated_ms": record.updated_ms}


def plan(*, task_id: str | None = None, uri: str | None = None, all_runs: bool | None = None) -> SyncRun:
    """Take the lock and store the run's shards. A re-run of the same task resumes its run. Raises
    SyncBusy when another sync holds the lock, SyncError when MLflow fails (the lock is released)."""
    owner = (task_id or uuid.uuid4().hex)[:64]
    run = SyncRun.objects.filter(owner=owner).first()
    if run is not None:
        if run.state in (SyncRunState.RUNNING, SyncRunState.FINISHING) and _take_lock(owner):
            return run
        raise SyncBusy(f"sync run {run.pk} of this task ended ({run.state})")
    if not _take_lock(owner):
        raise SyncBusy("another sync is running (lock held); try again later")
    sync.abandon_other_runs(owner)
    forget_old_runs()
    started = timezone.now()
    try:
        first_import = not sync.RegisteredModel.objects.exists()
        all_runs = sync._all_runs_due(started) if all_runs is None else all_runs
        SyncState.objects.filter(pk=1).update(last_started_at=started)
        listed: list[tuple[gw.ModelRecord, datetime]] = []
        seen: set[str] = set()
        pages = gw.registered_model_pages(uri=uri, page_size=int(getattr(settings, "REGISTRY_SYNC_PAGE_SIZE",
                                                                          gw.MODELS_PAGE_MAX)))
        while True:
            read_at = timezone.now()
            page, _ = next(pages, (None, True))
            if page is None:
                break
            listed.extend((m, read_at) for m in page if m.name not in seen)  # an offset shift can repeat one
            seen.update(m.name for m in page)
            sync._renew_lock(owner)
        size = shard_size()
        with transaction.atomic():
            run = SyncRun.objects.create(owner=owner, task_id=task_id or "", all_runs=all_runs,
                                         first_import=first_import, started_at=started,
                                         shards_total=(len(listed) + size - 1) // size)
            SyncShard.objects.bulk_create([
                # the oldest read of the slice: a fresher write of one of its models is then never undone
                SyncShard(run=run, index=i, records=[_record(m) for m, _ in listed[start:start + size]],
                          read_at=min(at for _, at in listed[start:start + size]))
                for i, start in enumerate(range(0, len(listed), size))])
    except gw.MlflowUnavailable as exc:
        sync._record_failure(f"MLflow unavailable: {exc}")
        _release(owner)
        raise SyncError(f"MLflow unavailable: {exc}") from exc
    except BaseException:
        _release(owner)
        raise
    return run


def pending_shards(run: SyncRun) -> list[int]:
    return list(run.shards.exclude(state=ShardState.DONE).values_list("index", flat=True))


def _claim(queryset, *, claimant: str, running: str, fields: dict) -> bool:
    now = timezone.now()
    lapsed = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    return queryset.filter(Q(state=running) & (Q(claimed_by=claimant) | lapsed)).update(
        claimed_by=claimant, claimed_until=now + sync._lease(), **fields) == 1


def apply_shard(*, run_id: int, index: int, claimant: str, uri: str | None = None) -> dict:
    """Apply one shard (see the module doc); then finish the run if it was the last. Returns the
    task's outcome dict."""
    shards = SyncShard.objects.filter(run_id=run_id, index=index)
    now = timezone.now()
    claimed = (shards.filter(state=ShardState.QUEUED).update(
        state=ShardState.RUNNING, claimed_by=claimant, claimed_until=now + sync._lease(),
        attempts=F("attempts") + 1) == 1) or _claim(shards, claimant=claimant, running=ShardState.RUNNING,
                                                    fields={"attempts": F("attempts") + 1})
    if not claimed:
        finished = finish(run_id=run_id, claimant=claimant, uri=uri)
        return {"outcome": "skipped", "detail": f"shard {index} of run {run_id} is done or held by a live worker"
                + ("; run finished" if finished else "")}
    run = SyncRun.objects.get(pk=run_id)
    if run.state != SyncRunState.RUNNING or not _take_lock(run.owner):
        SyncRun.objects.filter(pk=run_id, state=SyncRunState.RUNNING).update(
            state=SyncRunState.ABANDONED, finished_at=timezone.now(), error="the sync lock was taken by another sync")
        return {"outcome": "skipped", "detail": f"sync run {run_id} was abandoned (another sync holds the lock)"}
    shard = shards.get()
    report = SyncReport(scope="full", started_at=run.started_at, first_import=run.first_import)

    def done(part: SyncReport) -> None:
        # Same transaction as the shard's rows and events: both commit, or neither.
        stamp = timezone.now()
        if not SyncShard.objects.filter(pk=shard.pk, state=ShardState.RUNNING, claimed_by=claimant).update(
                state=ShardState.DONE, report=part.to_dict(), finished_at=stamp):
            raise SyncError(f"lost the claim on shard {index} of run {run_id}")
        if not SyncState.objects.filter(pk=1, lock_owner=run.owner).update(locked_until=stamp + sync._lease()):
            raise SyncError("lost the sync lock (lease expired and another sync took it)")

    records = [gw.ModelRecord(**r) for r in shard.records]
    try:
        ctx = sync._Context(uri=uri, budget=None, report=report, refresh_all_runs=run.all_runs)
        if records:
            ctx.apply_page(records, read_at=shard.read_at, also=done)
        else:
            with transaction.atomic():
                done(SyncReport(scope="full"))
    except (gw.MlflowUnavailable, SyncError) as exc:
        message = f"MLflow unavailable: {exc}" if isinstance(exc, gw.MlflowUnavailable) else str(exc)
        _fail(run, message)
        raise SyncError(message) from exc
    finished = finish(run_id=run_id, claimant=claimant, uri=uri)
    return {"outcome": "synced", "detail": f"shard {index + 1}/{run.shards_total}: {report.summary()}"
            + ("; run finished" if finished else ""), "rows_written": report.rows_written}


def _fail(run: SyncRun, message: str) -> None:
    """MLflow failed under a shard: end the run and free the lock now (the next scheduled sync retries
    the whole registry) rather than hold it until the lease runs out."""
    sync._record_failure(message)
    SyncRun.objects.filter(pk=run.pk, state__in=[SyncRunState.RUNNING, SyncRunState.FINISHING]).update(
        state=SyncRunState.FAILED, error=message[:2000], finished_at=timezone.now())
    _release(run.owner)


def _merged(run: SyncRun) -> SyncReport:
    report = SyncReport(scope="full", started_at=run.started_at, first_import=run.first_import)
    for data in run.shards.values_list("report", flat=True):
        part = SyncReport(scope="full")
        for name in COUNTS:
            setattr(part, name, int((data or {}).get(name) or 0))
        for key in ("changes", "observed"):
            getattr(part, key).extend(Change(**{**c, "detected_at": datetime.fromisoformat(c["detected_at"])})
                                      for c in (data or {}).get(key, []))
        report.add(part)
    return report


def finish(*, run_id: int, claimant: str, uri: str | None = None) -> bool:
    """When every shard is done, claim the run's finish, check deletions, record the result and release
    the lock. False when shards remain, or another live worker finishes it."""
    if SyncShard.objects.filter(run_id=run_id).exclude(state=ShardState.DONE).exists():
        return False
    runs = SyncRun.objects.filter(pk=run_id)
    now = timezone.now()
    if not (runs.filter(state=SyncRunState.RUNNING).update(state=SyncRunState.FINISHING, claimed_by=claimant,
                                                           claimed_until=now + sync._lease()) == 1
            or _claim(runs, claimant=claimant, running=SyncRunState.FINISHING, fields={})):
        return False
    run = runs.get()
    if not _take_lock(run.owner):
        runs.filter(state=SyncRunState.FINISHING).update(state=SyncRunState.ABANDONED, finished_at=timezone.now(),
                                                         error="the sync lock was taken by another sync")
        return False
    report = _merged(run)
    seen = {r["name"] for records in run.shards.values_list("records", flat=True) for r in records}
    ctx = sync._Context(uri=uri, budget=None, report=report, refresh_all_runs=run.all_runs)
    try:
        sync.confirm_deletions(ctx, seen, uri=uri, renew=lambda: sync._renew_lock(run.owner))
    except (gw.MlflowUnavailable, SyncError) as exc:
        message = f"MLflow unavailable: {exc}" if isinstance(exc, gw.MlflowUnavailable) else str(exc)
        _fail(run, message)
        raise SyncError(message) from exc
    report.finished_at = timezone.now()
    with transaction.atomic():
        SyncState.objects.filter(pk=1).update(last_success_at=report.finished_at, last_report=report.to_dict(),
                                              **({"last_all_runs_at": run.started_at} if run.all_runs else {}))
        runs.filter(state=SyncRunState.FINISHING).update(state=SyncRunState.DONE, finished_at=report.finished_at,
                                                         report={k: v for k, v in report.to_dict().items()
                                                                 if k not in ("changes", "observed")})
    _release(run.owner)
    return True


def run_inline(run: SyncRun, *, claimant: str, uri: str | None = None) -> SyncReport:
    """Apply every shard of `run` in this process (a registry of one shard is not worth spreading)."""
    for index in pending_shards(run):
        apply_shard(run_id=run.pk, index=index, claimant=claimant, uri=uri)
    finish(run_id=run.pk, claimant=claimant, uri=uri)
    run.refresh_from_db()
    if run.state != SyncRunState.DONE:
        raise SyncError(f"sync run {run.pk} ended {run.state}: {run.error or 'another worker holds it'}")
    report = SyncReport(scope="full", started_at=run.started_at, finished_at=run.finished_at,
                        first_import=run.first_import)
    for name in COUNTS:
        setattr(report, name, int(run.report.get(name) or 0))
    return report


def forget_old_runs(*, older_than: timedelta = timedelta(days=7)) -> int:
    """Runs are for following a sync in progress; their shards hold a copy of the model list."""
    deleted, _ = SyncRun.objects.filter(finished_at__lt=timezone.now() - older_than).delete()
    return deleted
