"""Reconcile MLflow into the mirror tables and report what changed.

Why a full paged reconciliation and not "what changed since T": MLflow does not bump
`last_updated_timestamp` when an alias or a tag is set, which are exactly the changes governance
cares about. So every sync reads every model (1000 a page, aliases inline) and, per page, every
live version of those models (`name IN (...)`), diffs them against the mirror and writes only rows
that differ. Each page is written in one transaction (a model, its aliases, versions and run
snapshots together: never half a model). A deletion is only concluded after the whole scan
completed, and confirmed by a targeted read (page tokens are offsets, so a model deleted during the
scan can shift another one out of view).

Runs are re-read, in batches through search_runs, because MLflow lets a finished run change: a
metric logged or corrected later, a run deleted or restored. Every sync re-reads the runs it does not
hold yet, the ones still running, and the ones that matter to a decision: behind a version holding a
stage or an alias, or in an open promotion request (settings.REGISTRY_RUNS_TO_REFRESH names who knows
those). Every run behind a version is re-read by a full sync at most REGISTRY_ALL_RUNS_EVERY seconds
after the last one that did (or when asked: `sync_registry --all-runs`): re-reading every run costs
as much as the rest of the scan together, and decisions never rest on the mirror anyway (they read
MLflow at that moment). A run that did not
change writes nothing, so an unchanged re-sync still writes 0 rows.

Metric histories (the comparison's curves) are mirrored too, so no page ever waits on MLflow for
them: for each run the sync has just read, every metric whose latest value was logged past step 0
has its history read (one request per metric key for up to 100 runs, at most
REGISTRY_HISTORY_MAX_POINTS points a run) when the mirror has none yet or the run's latest point
differs from the one the stored history ended on. Histories are written after the page's
transaction, 100 runs at a time, so the sync's memory stays bounded by one such batch; they carry no
change the governance report needs (the run's final metrics are in the snapshot).

The report lists every stage and alias change seen on models the mirror already knew (`changes`,
classified as drift by governance) and every other change it saw (`observed`): models and versions
created, deleted, renamed; tags set, changed, removed; descriptions edited; runs deleted or
restored; the metrics of a run that is evidence. The first sync of an empty mirror is an import,
not a series of changes: it reports no creations (the handler's summary event records it). MLflow
has no rename event: a model that vanished and one that appeared with the same creation time and
the same versions (numbers, run ids, creation times) is a rename, and the mirror row is renamed in
place so nothing that references it is lost; when in doubt it stays a delete and a create. A model a
targeted sync finds gone is left to the next full sync, which alone can tell a rename. registry_ui
does not know governance: whoever wants the report (drift classification) is named in
settings.REGISTRY_SYNC_REPORT_HANDLERS and called with the part of it each transaction wrote, inside
that transaction (a page of models, a batch of deletions, one targeted model). So the audit events a
handler writes commit with the mirror rows they describe, or neither does: a handler that fails rolls
its page back, the sync fails, and the next sync sees the same changes again. Nothing is detected
into the mirror and then lost.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from registry_ui import extensions
from registry_ui.mirror import client as gw
from registry_ui.mirror.models import (
    DatasetInput,
    MetricHistory,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    RunSnapshot,
    SyncRun,
    SyncRunState,
    SyncState,
)

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BULK_BATCH = 500
LIVE_RUN_STATUSES = {"RUNNING", "SCHEDULED"}
MISSING_RUN = "missing"  # lifecycle_stage of a snapshot whose run MLflow no longer has
DELETED_RUN_STAGES = {"deleted", MISSING_RUN}
OBSERVED_KINDS = ("model_created", "model_deleted", "model_renamed", "version_created", "version_deleted",
                  "tag_set", "tag_changed", "tag_removed", "description_changed", "run_deleted", "run_restored",
                  "metrics_changed")


class SyncError(Exception):
    """A sync could not complete; the message is one line, fit for a command's exit."""


class SyncBusy(SyncError):
    """Another full sync holds the lock."""


@dataclass
class Change:
    """A change the sync saw in MLflow.

    In SyncReport.changes (drift candidates): kind "stage" (name "stage") or "alias" (name: the alias);
    before/after are stage names, or alias version numbers (None when the alias did not / no longer exist).

    In SyncReport.observed: kind is one of OBSERVED_KINDS, name says what changed (the tag key, the run
    id, the model name), before/after are dicts of the state on each side (None where there was none)."""

    model: str
    version: int | None
    kind: str
    name: str
    before: str | int | None
    after: str | int | None
    detected_at: datetime

    def to_dict(self) -> dict:
        data = asdict(self)
        data["detected_at"] = self.detected_at.isoformat()
        return data


@dataclass
class SyncReport:
    """What one sync did. Counts are of registered models plus versions; rows_written counts every
    mirror row inserted, updated or deleted (aliases, run snapshots and dataset inputs included)."""

    scope: str = "full"
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    rows_written: int = 0
    models_seen: int = 0
    versions_seen: int = 0
    runs_fetched: int = 0
    histories_fetched: int = 0  # (run, metric) histories read from MLflow and written
    # Models left as they were because a fresher write (a targeted sync, a deploy) reached the mirror
    # after this page was read from MLflow: writing the older read would undo it (and report false drift).
    skipped_fresher: int = 0
    # The mirror was empty when this sync began: what it creates is an import, not a change.
    first_import: bool = False
    changes: list[Change] = field(default_factory=list)
    observed: list[Change] = field(default_factory=list)
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def changed(self) -> bool:
        return self.rows_written > 0

    def add(self, part: SyncReport) -> None:
        """Fold in what one committed transaction of this sync did."""
        for name in ("created", "updated", "deleted", "unchanged", "rows_written", "models_seen", "versions_seen",
                     "runs_fetched", "histories_fetched", "skipped_fresher"):
            setattr(self, name, getattr(self, name) + getattr(part, name))
        self.changes.extend(part.changes)
        self.observed.extend(part.observed)

    def summary(self) -> str:
        return (f"{self.models_seen} models, {self.versions_seen} versions: {self.created} created, "
                f"{self.updated} updated, {self.deleted} deleted, {self.unchanged} unchanged; "
                f"{len(self.changes)} stage/alias changes, {len(self.observed)} other changes; "
                f"{self.rows_written} rows written; "
                f"{self.runs_fetched} runs, {self.histories_fetched} metric histories fetched")

    def to_dict(self) -> dict:
        return {
            "scope": self.scope,
            "created": self.created,
            "updated": self.updated,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "rows_written": self.rows_written,
            "models_seen": self.models_seen,
            "versions_seen": self.versions_seen,
            "runs_fetched": self.runs_fetched,
            "histories_fetched": self.histories_fetched,
            "skipped_fresher": self.skipped_fresher,
            "first_import": self.first_import,
            "changes": [c.to_dict() for c in self.changes],
            "observed": [c.to_dict() for c in self.observed],
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


# --------------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------------


def _all_runs_due(now) -> bool:
    every = int(getattr(settings, "REGISTRY_ALL_RUNS_EVERY", 3600))
    last = SyncState.objects.filter(pk=1).values_list("last_all_runs_at", flat=True).first()
    return last is None or (now - last).total_seconds() >= every


def sync_registry(*, uri: str | None = None, progress: Callable[[int, int], None] | None = None,
                  all_runs: bool | None = None) -> SyncReport:
    """One full reconciliation. Raises SyncBusy when another sync runs, SyncError when MLflow fails
    (what was committed page by page stays; nothing is deleted; the error is recorded). `all_runs`:
    re-read every run (None: when REGISTRY_ALL_RUNS_EVERY has passed since the last time)."""
    owner = uuid.uuid4().hex
    if not _acquire_lock(owner):
        raise SyncBusy("another sync is running (lock held); try again later")
    report = SyncReport(scope="full", started_at=timezone.now(), first_import=not RegisteredModel.objects.exists())
    all_runs = _all_runs_due(report.started_at) if all_runs is None else all_runs
    SyncState.objects.filter(pk=1).update(last_started_at=report.started_at)
    try:
        _Scan(uri=uri, owner=owner, report=report, progress=progress, all_runs=all_runs).run()
    except gw.MlflowUnavailable as exc:
        _record_failure(f"MLflow unavailable: {exc}")
        raise SyncError(f"MLflow unavailable: {exc}") from exc
    except SyncError as exc:
        _record_failure(str(exc))
        raise
    finally:
        SyncState.objects.filter(pk=1, lock_owner=owner).update(lock_owner="", locked_until=None)
    report.finished_at = timezone.now()
    SyncState.objects.filter(pk=1).update(last_success_at=report.finished_at, last_report=report.to_dict(),
                                          **({"last_all_runs_at": report.started_at} if all_runs else {}))
    return report


def sync_model(name: str, *, uri: str | None = None, budget: gw.Budget | None = None) -> SyncReport:
    """Reconcile one registered model (webhooks, confirmations). Raises SyncError when MLflow fails.
    A model MLflow no longer has is left for the full sync: it may have been renamed, and only a full
    scan sees the new name (deleting the row here would take its policy and requests with it)."""
    report = SyncReport(scope=f"model:{name}", started_at=timezone.now(),
                        first_import=not RegisteredModel.objects.exists())
    try:
        ctx = _Context(uri=uri, budget=budget, report=report)
        read_at = timezone.now()
        record = gw.get_registered_model(name, uri=uri, budget=budget)
        if record is not None:
            ctx.apply_page([record], read_at=read_at)
    except gw.MlflowUnavailable as exc:
        raise SyncError(f"MLflow unavailable: {exc}") from exc
    report.finished_at = timezone.now()
    return report


def report_handlers() -> list[Callable[[SyncReport], None]]:
    return extensions.sync_report_handlers()


def _commit(report: SyncReport, write: Callable[[SyncReport], None],
            also: Callable[[SyncReport], None] | None = None) -> None:
    """One transaction of a sync: `write` changes mirror rows and counts them into a part report, the
    report handlers get that part in the same transaction, and the part is folded into `report` once
    it committed. A handler that fails rolls the rows back with it (SyncError; sync_registry records it).
    `also` runs last in the same transaction (a shard marks itself done there: written once)."""
    part = SyncReport(scope=report.scope, started_at=report.started_at, first_import=report.first_import)
    with transaction.atomic():
        write(part)
        part.finished_at = timezone.now()
        for handler in report_handlers():
            try:
                handler(part)
            except Exception as exc:
                log.exception("sync report handler %s failed", handler)
                name = getattr(handler, "__qualname__", handler)
                raise SyncError(f"report handler {name} failed, the page was not written: {exc}") from exc
        if also is not None:
            also(part)
    report.add(part)


def _record_failure(message: str) -> None:
    SyncState.get()
    SyncState.objects.filter(pk=1).update(last_error=" ".join(message.split())[:2000], last_error_at=timezone.now())


# --------------------------------------------------------------------------------------------------
# The lock: a lease on the SyncState row, claimed by a conditional UPDATE
# --------------------------------------------------------------------------------------------------


def _lease() -> timedelta:
    return timedelta(seconds=getattr(settings, "REGISTRY_SYNC_LOCK_SECONDS", 600))


def _acquire_lock(owner: str) -> bool:
    try:
        SyncState.get()
    except IntegrityError:  # two first-ever syncs created the row at once; it exists now
        pass
    now = timezone.now()
    claimed = (SyncState.objects.filter(pk=1)
               .filter(Q(lock_owner="") | Q(locked_until__isnull=True) | Q(locked_until__lt=now))
               .update(lock_owner=owner, locked_until=now + _lease()))
    if claimed:
        abandon_other_runs(owner)
    return claimed == 1


def abandon_other_runs(owner: str) -> None:
    """The lock changed hands: a spread run that held it before (its workers died or stalled) is over;
    its leftover shard tasks find it abandoned and write nothing."""
    SyncRun.objects.filter(state__in=[SyncRunState.RUNNING, SyncRunState.FINISHING]).exclude(owner=owner).update(
        state=SyncRunState.ABANDONED, finished_at=timezone.now(), error="its sync lock lapsed and another sync took it")


def _renew_lock(owner: str) -> None:
    now = timezone.now()
    # Renew only when half the lease is gone, so an idle registry's sync hardly writes.
    renewed = SyncState.objects.filter(pk=1, lock_owner=owner, locked_until__gt=now + _lease() / 2).exists()
    if renewed:
        return
    if not SyncState.objects.filter(pk=1, lock_owner=owner).update(locked_until=now + _lease()):
        raise SyncError("lost the sync lock (lease expired and another sync took it)")


# --------------------------------------------------------------------------------------------------
# Reconciliation
# --------------------------------------------------------------------------------------------------


def _ts(ms: int | None) -> datetime | None:
    return EPOCH + timedelta(milliseconds=ms) if ms else None


def _clip(value: str, n: int) -> str:
    return (value or "")[:n]


class _Scan:
    def __init__(self, *, uri, owner, report, progress, all_runs: bool = True):
        self.uri, self.owner, self.report, self.progress = uri, owner, report, progress
        self.ctx = _Context(uri=uri, budget=None, report=report, refresh_all_runs=all_runs,
                            heartbeat=lambda: _renew_lock(owner))

    def run(self) -> None:
        page_size = int(getattr(settings, "REGISTRY_SYNC_PAGE_SIZE", gw.MODELS_PAGE_MAX))
        seen: set[str] = set()
        done = 0
        pages = gw.registered_model_pages(uri=self.uri, page_size=page_size)
        while True:
            read_at = timezone.now()  # before MLflow is asked for the page: what it returns is at least this fresh
            page, last = next(pages, (None, True))
            if page is None:
                break
            page = [m for m in page if m.name not in seen]  # an offset shift can repeat a model
            seen.update(m.name for m in page)
            self.ctx.apply_page(page, read_at=read_at)
            done += len(page)
            _renew_lock(self.owner)
            if self.progress:
                # The total is MLflow's: known once it says this was the last page (None until then),
                # never the mirror's count, which is what this sync is correcting.
                self.progress(done, done if last else None)
        confirm_deletions(self.ctx, seen, uri=self.uri, renew=lambda: _renew_lock(self.owner))


def confirm_deletions(ctx: _Context, seen: set[str], *, uri: str | None, renew: Callable[[], None]) -> None:
    """After a completed scan: a mirrored model it did not see is a deletion candidate, confirmed by a
    targeted read (an offset shift during the scan can hide a live model)."""
    missing = [n for n in RegisteredModel.objects.values_list("name", flat=True).iterator() if n not in seen]
    gone = []
    for name in missing:
        renew()
        read_at = timezone.now()
        record = gw.get_registered_model(name, uri=uri)
        if record is None:
            gone.append(name)
        else:
            ctx.apply_page([record], read_at=read_at)
    _delete_models(gone, ctx.report)


def _version_state(v) -> dict:
    """What a version_created / version_deleted event carries (a mirror row or a VersionRecord)."""
    return {"version": v.version, "run_id": v.run_id, "stage": v.stage, "status": v.status, "source": v.source,
            "description": v.description, "tags": v.tags or {}}


def _delete_models(names: list[str], report: SyncReport) -> None:
    def delete(batch: list[str], part: SyncReport) -> None:
        now = timezone.now()
        doomed = list(RegisteredModel.objects.select_for_update().filter(name__in=batch).order_by("name"))
        versions: dict[int, list[dict]] = {}
        for v in ModelVersion.objects.filter(model__in=doomed).order_by("version"):
            versions.setdefault(v.model_id, []).append(_version_state(v))
        aliases: dict[int, dict[str, int]] = {}
        for a in ModelAlias.objects.filter(model__in=doomed):
            aliases.setdefault(a.model_id, {})[a.alias] = a.version
        for m in doomed:
            part.observed.append(Change(
                model=m.name, version=None, kind="model_deleted", name=m.name,
                before={"name": m.name, "description": m.description, "tags": m.tags or {},
                        "aliases": aliases.get(m.pk, {}), "versions": versions.get(m.pk, [])},
                after=None, detected_at=now))
        deleted, _ = RegisteredModel.objects.filter(pk__in=[m.pk for m in doomed]).delete()
        part.deleted += len(doomed) + sum(len(vs) for vs in versions.values())
        part.rows_written += deleted

    for start in range(0, len(names), BULK_BATCH):
        _commit(report, lambda part, batch=names[start:start + BULK_BATCH]: delete(batch, part))


_MODEL_FIELDS = ("description", "tags", "created_at", "updated_at")
_VERSION_FIELDS = ("stage", "status", "source", "run_id", "run_link", "description", "tags", "user_id",
                   "created_at", "updated_at")
_RUN_FIELDS = ("experiment_id", "experiment_name", "run_name", "user", "status", "lifecycle_stage", "start_time",
               "end_time", "params", "metrics", "tags", "source_name", "entry_point", "git_commit",
               "parent_run_id", "logged_model_id")


def _model_values(r: gw.ModelRecord) -> dict:
    return {"description": r.description, "tags": r.tags, "created_at": _ts(r.created_ms),
            "updated_at": _ts(r.updated_ms)}


def _version_values(r: gw.VersionRecord) -> dict:
    return {"stage": r.stage, "status": _clip(r.status, 32), "source": r.source, "run_id": _clip(r.run_id, 64),
            "run_link": r.run_link, "description": r.description, "tags": r.tags,
            "user_id": _clip(r.user_id, 256), "created_at": _ts(r.created_ms), "updated_at": _ts(r.updated_ms)}


def _run_values(r: gw.RunRecord, logged_model_id: str) -> dict:
    return {
        "experiment_id": _clip(r.experiment_id, 64), "experiment_name": _clip(r.experiment_name, 512),
        "run_name": _clip(r.run_name, 512), "user": _clip(r.user, 256), "status": _clip(r.status, 32),
        "lifecycle_stage": _clip(r.lifecycle_stage, 32), "start_time": _ts(r.start_ms), "end_time": _ts(r.end_ms),
        "params": r.params, "metrics": r.metrics, "tags": r.tags,
        "source_name": r.tags.get("mlflow.source.name", ""),
        "entry_point": _clip(r.tags.get("mlflow.project.entryPoint", ""), 512),
        "git_commit": _clip(r.tags.get("mlflow.source.git.commit", ""), 64),
        "parent_run_id": _clip(r.tags.get("mlflow.parentRunId", ""), 64),
        "logged_model_id": _clip(r.logged_model_id or logged_model_id, 64),
    }


def _dataset_key(d) -> tuple:
    return (_clip(d.name, 512), _clip(d.digest, 64), _clip(d.source_type, 64), d.source, _clip(d.context, 64),
            d.schema, d.profile)


def _metrics_key(metrics: dict) -> dict:
    # PostgreSQL's jsonb prints a huge float (MLflow clamps inf to 1.797e308) as a long integer, which
    # reads back as an int that is not == the float: compare numbers as floats.
    return {k: float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for k, v in metrics.items()}


def _differs(obj, values: dict) -> list[str]:
    changed = []
    for k, v in values.items():
        current = getattr(obj, k)
        if k == "metrics" and isinstance(current, dict) and isinstance(v, dict):
            if _metrics_key(current) != _metrics_key(v):
                changed.append(k)
        elif current != v:
            changed.append(k)
    return changed


class _Context:
    """State shared by the pages of one sync: the report and the experiment names (read once)."""

    def __init__(self, *, uri, budget, report: SyncReport, refresh_all_runs: bool = False,
                 heartbeat: Callable[[], None] | None = None):
        self.uri, self.budget, self.report = uri, budget, report
        self.refresh_all_runs = refresh_all_runs
        self.heartbeat = heartbeat or (lambda: None)  # keeps a full sync's lease while histories are read
        self._experiments: dict[str, str] | None = None

    def experiments(self, refresh: bool = False) -> dict[str, str]:
        if self._experiments is None or refresh:
            self._experiments = gw.list_experiments(uri=self.uri, budget=self.budget)
        return self._experiments

    # -- reading MLflow (outside any transaction) ---------------------------------------------------

    def _runs_needed(self, records: list[gw.ModelRecord], versions: list[gw.VersionRecord]) -> list[str]:
        run_ids = {v.run_id for v in versions if v.run_id}
        if not run_ids:
            return []
        ids = sorted(run_ids)
        if self.refresh_all_runs:
            return ids
        have = {}
        for start in range(0, len(ids), BULK_BATCH):
            have.update(RunSnapshot.objects.filter(run_id__in=ids[start:start + BULK_BATCH])
                        .values_list("run_id", "status"))
        # The evidence of a decision is re-read every time: runs behind a stage or an alias, or in an
        # open request (the incumbent of a target holds it, so it is covered too).
        aliased = {(r.name, v) for r in records for v in r.aliases.values()}
        evidence = {v.run_id for v in versions if v.run_id and (v.stage != "None" or (v.name, v.version) in aliased)}
        evidence |= set(extensions.runs_to_refresh([r.name for r in records])) & run_ids
        return [r for r in ids if r not in have or have[r] in LIVE_RUN_STATUSES or r in evidence]

    def _fetch_runs(self, run_ids: list[str]) -> dict[str, gw.RunRecord | None]:
        if not run_ids:
            return {}
        found = gw.fetch_runs(run_ids, experiments=self.experiments(), uri=self.uri, budget=self.budget)
        missing = [r for r in run_ids if r not in found]
        if missing:  # maybe an experiment created since we listed them
            found.update(gw.fetch_runs(missing, experiments=self.experiments(refresh=True), uri=self.uri,
                                       budget=self.budget))
        return {r: found.get(r) for r in run_ids}

    def _renames(self, records: list[gw.ModelRecord],
                 versions: dict[str, list[gw.VersionRecord]]) -> dict[str, str]:
        """{new name: old name} for the models of this page the mirror does not know that are a
        mirrored model renamed in MLflow: the old name is gone from MLflow, and exactly one vanished
        model and one new model share the creation time, with the same versions (numbers, run ids,
        creation times). Anything less certain is left a delete and a create."""
        if self.report.first_import:
            return {}
        names = [r.name for r in records]
        known = set(RegisteredModel.objects.filter(name__in=names).values_list("name", flat=True))
        fresh: dict[datetime, list[gw.ModelRecord]] = {}
        for r in records:
            if r.name not in known and r.created_ms:
                fresh.setdefault(_ts(r.created_ms), []).append(r)
        if not fresh:
            return {}
        candidates: dict[datetime, list[RegisteredModel]] = {}
        for m in RegisteredModel.objects.filter(created_at__in=list(fresh)).exclude(name__in=names):
            candidates.setdefault(m.created_at, []).append(m)
        renames = {}
        for created, new in fresh.items():
            old = candidates.get(created, [])
            if len(new) != 1 or len(old) != 1:
                continue
            new_record, old_model = new[0], old[0]
            mirrored = set(ModelVersion.objects.filter(model=old_model).values_list("version", "run_id", "created_at"))
            listed = {(v.version, _clip(v.run_id, 64), _ts(v.created_ms)) for v in versions.get(new_record.name, [])}
            if mirrored != listed or len(listed) != len(versions.get(new_record.name, [])):
                continue
            if gw.get_registered_model(old_model.name, uri=self.uri, budget=self.budget) is not None:
                continue
            renames[new_record.name] = old_model.name
        return renames

    def apply_page(self, records: list[gw.ModelRecord], *, read_at: datetime,
                   also: Callable[[SyncReport], None] | None = None) -> None:
        """Write one page of models read from MLflow at or after `read_at` (`also`: see _commit)."""
        if not records:
            return
        versions = gw.model_versions_for([r.name for r in records], uri=self.uri, budget=self.budget)
        renames = self._renames(records, versions)
        runs = self._fetch_runs(self._runs_needed(records, [v for vs in versions.values() for v in vs]))

        def write(part: SyncReport) -> None:
            part.runs_fetched += sum(1 for r in runs.values() if r is not None)
            _Writer(part, read_at).write(records, versions, runs, renames)

        _commit(self.report, write, also)
        self._mirror_histories(runs)

    def _mirror_histories(self, runs: dict[str, gw.RunRecord | None]) -> None:
        """Read and store the histories of the multi-step metrics of `runs` that the mirror lacks or
        holds out of date (see the module doc). Bounded: 100 runs of one metric per request and write."""
        if not getattr(settings, "REGISTRY_SYNC_HISTORIES", True):
            return
        latest: dict[str, dict[str, tuple[int, float | None]]] = {}
        for run_id, record in runs.items():
            for key, step in (record.metric_steps if record else {}).items():
                if step > 0:
                    latest.setdefault(run_id, {})[key] = (step, _finite(record.metrics.get(key)))
        if not latest:
            return
        ids = sorted(latest)
        pks: dict[str, int] = {}
        stored: dict[tuple[str, str], tuple[int | None, float | None]] = {}
        for start in range(0, len(ids), BULK_BATCH):
            batch = ids[start:start + BULK_BATCH]
            pks.update(RunSnapshot.objects.filter(run_id__in=batch).values_list("run_id", "pk"))
            for run_id, key, step, value in (MetricHistory.objects.filter(run__run_id__in=batch)
                                             .values_list("run__run_id", "key", "last_step", "last_value")):
                stored[(run_id, key)] = (step, value)
        todo: dict[str, list[str]] = {}
        for run_id in ids:
            if run_id not in pks:
                continue
            for key, point in latest[run_id].items():
                if stored.get((run_id, key)) != point:
                    todo.setdefault(key, []).append(run_id)
        max_points = int(getattr(settings, "REGISTRY_HISTORY_MAX_POINTS", 1000))
        for key, run_ids in sorted(todo.items()):
            for chunk, sampled in _history_batches(run_ids, {r: latest[r][key][0] for r in run_ids}, max_points):
                read = gw.metric_history_bulk(chunk, key, max_points=max_points, sampled=sampled, uri=self.uri,
                                              budget=self.budget)
                if not sampled:  # read whole: keep at most max_points, evenly spread, first and last kept
                    read = {r: _thin(rows, max_points) for r, rows in read.items()}
                now = timezone.now()
                rows = [MetricHistory(run_id=pks[r], key=key, points=read.get(r, []), last_step=latest[r][key][0],
                                      last_value=latest[r][key][1], fetched_at=now) for r in chunk]
                with transaction.atomic():
                    MetricHistory.objects.bulk_create(
                        rows, batch_size=BULK_BATCH, update_conflicts=True, unique_fields=["run", "key"],
                        update_fields=["points", "last_step", "last_value", "fetched_at"])
                self.report.histories_fetched += len(rows)
                self.report.rows_written += len(rows)
                self.heartbeat()


def _history_batches(run_ids: list[str], last_steps: dict[str, int], max_points: int):
    """(runs, sampled) batches for one metric: runs whose history fits `max_points` are read whole, as
    many a request as keep it under MLflow's cap (a step is about a point); longer ones sampled by MLflow."""
    short = [r for r in run_ids if last_steps[r] + 1 <= max_points]
    long = [r for r in run_ids if last_steps[r] + 1 > max_points]
    batch, points = [], 0
    for run_id in short:
        size = last_steps[run_id] + 1
        if batch and (len(batch) == gw.HISTORY_RUNS_MAX or points + size > gw.HISTORY_BULK_POINTS):
            yield batch, False
            batch, points = [], 0
        batch.append(run_id)
        points += size
    if batch:
        yield batch, False
    for start in range(0, len(long), gw.HISTORY_RUNS_MAX):
        yield long[start:start + gw.HISTORY_RUNS_MAX], True


def _thin(rows: list[list], n: int) -> list[list]:
    if len(rows) <= n:
        return rows
    if n < 2:
        return rows[-1:]
    step = (len(rows) - 1) / (n - 1)
    return [rows[round(i * step)] for i in range(n)]


def _finite(value) -> float | None:
    """A metric value as the float a history ends on (None for NaN/inf, which the mirror keeps as text)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if value == value and value not in (float("inf"), float("-inf")) else None


class _Writer:
    """Diffs one page against the mirror and writes only what differs, in bulk.

    A model's `synced_at` is the time of the MLflow read its mirror rows come from (every writer sets
    it when it changes the model, its aliases or versions: this sync, a targeted sync, a deploy's
    mirror update). A model whose synced_at is newer than this page's read was written from a fresher
    read while the page was in flight, so it is left alone: the rows are locked first (PostgreSQL;
    SQLite's IMMEDIATE transactions serialise writers), so the check and the write are one step."""

    def __init__(self, report: SyncReport, read_at: datetime):
        self.report = report
        self.now = timezone.now()
        self.read_at = read_at
        self.touched: set[int] = set()  # ids of models whose aliases or versions this page wrote

    def write(self, records, versions_by_name, runs, renames=None) -> None:
        report = self.report
        names = [r.name for r in records]
        self._rename(renames or {})
        existing = {m.name: m for m in RegisteredModel.objects.select_for_update().filter(name__in=names)
                    .order_by("name")}
        fresher = {n for n, m in existing.items() if m.synced_at and m.synced_at > self.read_at}
        if fresher:
            report.skipped_fresher += len(fresher)
            records = [r for r in records if r.name not in fresher]
            names = [r.name for r in records]
            versions_by_name = {n: vs for n, vs in versions_by_name.items() if n not in fresher}
            wanted = {v.run_id for vs in versions_by_name.values() for v in vs}
            runs = {run_id: run for run_id, run in runs.items() if run_id in wanted}
        known = set(existing)  # models the mirror already had: their changes are reported
        new_models, changed_models = [], []
        for r in records:
            values = _model_values(r)
            obj = existing.get(r.name)
            if obj is None:
                new_models.append(RegisteredModel(name=r.name, synced_at=self.read_at, **values))
                if not report.first_import:
                    self._observe(r.name, None, "model_created", r.name, None, {
                        "name": r.name, "description": r.description, "tags": r.tags, "aliases": r.aliases,
                        "versions": sorted(v.version for v in versions_by_name.get(r.name, []))})
                continue
            diff = _differs(obj, values)
            if diff:
                self._observe_edits(r.name, None, obj, values)
                for k in diff:
                    setattr(obj, k, values[k])
                obj.synced_at = self.read_at
                changed_models.append(obj)
            else:
                report.unchanged += 1
        if new_models:
            RegisteredModel.objects.bulk_create(new_models, batch_size=BULK_BATCH)
            existing.update({m.name: m for m in RegisteredModel.objects.filter(name__in=[m.name for m in new_models])})
        if changed_models:
            RegisteredModel.objects.bulk_update(changed_models, [*_MODEL_FIELDS, "synced_at"], batch_size=BULK_BATCH)
        report.models_seen += len(records)
        report.created += len(new_models)
        report.updated += len(changed_models)
        report.rows_written += len(new_models) + len(changed_models)

        ids = {name: existing[name].pk for name in names}
        self._aliases(records, ids, known)
        self._versions(versions_by_name, ids, known)
        self._runs(runs, versions_by_name)
        # A model whose aliases or versions changed carries this read's time too (see the class doc).
        bump = self.touched - {m.pk for m in changed_models} - {existing[m.name].pk for m in new_models}
        if bump:
            report.rows_written += RegisteredModel.objects.filter(pk__in=bump).update(synced_at=self.read_at)

    def _change(self, model, version, kind, name, before, after) -> None:
        self.report.changes.append(Change(model=model, version=version, kind=kind, name=name, before=before,
                                          after=after, detected_at=self.now))

    def _observe(self, model, version, kind, name, before, after) -> None:
        self.report.observed.append(Change(model=model, version=version, kind=kind, name=name, before=before,
                                           after=after, detected_at=self.now))

    def _observe_edits(self, model: str, version: int | None, obj, values: dict) -> None:
        """Tag and description edits of a model or version (before the row takes the new values)."""
        old_tags, new_tags = obj.tags or {}, values["tags"] or {}
        for key in sorted(set(old_tags) | set(new_tags)):
            before, after = old_tags.get(key), new_tags.get(key)
            if before == after:
                continue
            kind = "tag_set" if key not in old_tags else "tag_removed" if key not in new_tags else "tag_changed"
            self._observe(model, version, kind, key, {"tag": key, "value": before}, {"tag": key, "value": after})
        if (obj.description or "") != (values["description"] or ""):
            self._observe(model, version, "description_changed", model if version is None else f"{model} v{version}",
                          {"description": obj.description}, {"description": values["description"]})

    def _rename(self, renames: dict[str, str]) -> None:
        """Follow MLflow's renames on the mirror row itself: its id, and so its policy, requests and
        permissions, stay; its versions and aliases are then compared as those of a known model."""
        for new, old in sorted(renames.items()):
            if RegisteredModel.objects.filter(name=new).exists():
                continue  # another writer mirrored the new name meanwhile: not provably a rename any more
            if RegisteredModel.objects.filter(name=old).update(name=new):
                self.report.rows_written += 1
                self._observe(new, None, "model_renamed", new, {"name": old}, {"name": new})

    def _aliases(self, records, ids, known) -> None:
        current: dict[int, dict[str, ModelAlias]] = {}
        for a in ModelAlias.objects.filter(model_id__in=list(ids.values())):
            current.setdefault(a.model_id, {})[a.alias] = a
        create, update, delete = [], [], []
        for r in records:
            mine = current.get(ids[r.name], {})
            report = r.name in known
            for alias, version in r.aliases.items():
                obj = mine.get(alias)
                if obj is None:
                    create.append(ModelAlias(model_id=ids[r.name], alias=alias, version=version))
                    self.touched.add(ids[r.name])
                    if report:
                        self._change(r.name, version, "alias", alias, None, version)
                elif obj.version != version:
                    if report:
                        self._change(r.name, version, "alias", alias, obj.version, version)
                    obj.version = version
                    update.append(obj)
                    self.touched.add(ids[r.name])
            for alias, obj in mine.items():
                if alias not in r.aliases:
                    delete.append(obj.pk)
                    self.touched.add(ids[r.name])
                    if report:
                        self._change(r.name, obj.version, "alias", alias, obj.version, None)
        if delete:
            ModelAlias.objects.filter(pk__in=delete).delete()
        if create:
            ModelAlias.objects.bulk_create(create, batch_size=BULK_BATCH)
        if update:
            ModelAlias.objects.bulk_update(update, ["version"], batch_size=BULK_BATCH)
        self.report.rows_written += len(create) + len(update) + len(delete)

    def _versions(self, versions_by_name, ids, known) -> None:
        report = self.report
        current: dict[tuple[int, int], ModelVersion] = {
            (v.model_id, v.version): v for v in ModelVersion.objects.filter(model_id__in=list(ids.values()))
        }
        create, update = [], []
        live: set[tuple[int, int]] = set()
        for name, records in versions_by_name.items():
            model_id = ids[name]
            for r in records:
                key = (model_id, r.version)
                if key in live:
                    continue
                live.add(key)
                values = _version_values(r)
                obj = current.get(key)
                if obj is None:
                    create.append(ModelVersion(model_id=model_id, version=r.version, synced_at=self.read_at,
                                               **values))
                    self.touched.add(model_id)
                    if not report.first_import:
                        self._observe(name, r.version, "version_created", f"{name} v{r.version}", None,
                                      _version_state(r))
                    if name in known and r.stage != "None":
                        self._change(name, r.version, "stage", "stage", "None", r.stage)
                    continue
                diff = _differs(obj, values)
                if not diff:
                    report.unchanged += 1
                    continue
                if "stage" in diff:
                    self._change(name, r.version, "stage", "stage", obj.stage, r.stage)
                self._observe_edits(name, r.version, obj, values)
                for k in diff:
                    setattr(obj, k, values[k])
                obj.synced_at = self.read_at
                update.append(obj)
                self.touched.add(model_id)
        # Versions of these models that MLflow no longer lists (soft-deleted): the version read for
        # these models was complete, so this is conclusive.
        delete = [v.pk for key, v in current.items() if key not in live]
        names = {model_id: name for name, model_id in ids.items()}
        for key, v in sorted(current.items()):
            if key not in live:
                self._observe(names[v.model_id], v.version, "version_deleted", f"{names[v.model_id]} v{v.version}",
                              _version_state(v), None)
        self.touched.update(v.model_id for key, v in current.items() if key not in live)
        if delete:
            ModelVersion.objects.filter(pk__in=delete).delete()
        if create:
            ModelVersion.objects.bulk_create(create, batch_size=BULK_BATCH)
        if update:
            ModelVersion.objects.bulk_update(update, [*_VERSION_FIELDS, "synced_at"], batch_size=BULK_BATCH)
        report.versions_seen += len(live)
        report.created += len(create)
        report.updated += len(update)
        report.deleted += len(delete)
        report.rows_written += len(create) + len(update) + len(delete)

    def _runs(self, runs: dict[str, gw.RunRecord | None], versions_by_name) -> None:
        if not runs:
            return
        model_ids = {v.run_id: v.logged_model_id for vs in versions_by_name.values() for v in vs if v.run_id}
        current = {s.run_id: s for s in RunSnapshot.objects.filter(run_id__in=list(runs))}
        create, update, touched = [], [], []
        seen: dict[str, tuple[RunSnapshot, dict]] = {}  # run id -> (the row before, the new values)
        for run_id, record in runs.items():
            if record is None:
                values = {f: RunSnapshot._meta.get_field(f).get_default() for f in _RUN_FIELDS}
                values["lifecycle_stage"] = MISSING_RUN
            else:
                values = _run_values(record, model_ids.get(run_id, ""))
            obj = current.get(run_id)
            if obj is None:
                create.append(RunSnapshot(run_id=run_id, fetched_at=self.now, **values))
                touched.append(run_id)
            elif _differs(obj, values):
                seen[run_id] = (RunSnapshot(lifecycle_stage=obj.lifecycle_stage, metrics=obj.metrics), values)
                for k, v in values.items():
                    setattr(obj, k, v)
                obj.fetched_at = self.now
                update.append(obj)
                touched.append(run_id)
        if create:
            RunSnapshot.objects.bulk_create(create, batch_size=BULK_BATCH)
        if update:
            RunSnapshot.objects.bulk_update(update, [*_RUN_FIELDS, "fetched_at"], batch_size=BULK_BATCH)
        written = len(create) + len(update)
        # Dataset inputs: replace a run's set when it differs.
        pks = dict(RunSnapshot.objects.filter(run_id__in=list(runs)).values_list("run_id", "pk"))
        have: dict[int, set[tuple]] = {}
        for d in DatasetInput.objects.filter(run_id__in=list(pks.values())):
            have.setdefault(d.run_id, set()).add(_dataset_key(d))
        replace, add = [], []
        for run_id, record in runs.items():
            wanted = {_dataset_key(d) for d in record.datasets} if record else set()
            pk = pks[run_id]
            if wanted == have.get(pk, set()):
                continue
            if pk in have:
                replace.append(pk)
                written += len(have[pk])
            for key in sorted(wanted):
                name, digest, source_type, source, context, schema, profile = key
                add.append(DatasetInput(run_id=pk, name=name, digest=digest, source_type=source_type,
                                        source=source, context=context, schema=schema, profile=profile))
        if replace:
            DatasetInput.objects.filter(run_id__in=replace).delete()
        if add:
            DatasetInput.objects.bulk_create(add, batch_size=BULK_BATCH)
        self.report.rows_written += written + len(add)
        if seen:
            self._observe_runs(seen)

    def _observe_runs(self, seen: dict[str, tuple[RunSnapshot, dict]]) -> None:
        """A run deleted or restored is reported on every version it backs; changed metrics only where
        the run is evidence (behind a stage, an alias or an open request), since those are what gates
        judged. Read from the mirror after this page's writes, so a run shared with a model of another
        page is judged on that model's mirrored state."""
        users: dict[str, list[tuple[str, int, int, str]]] = {}
        for run_id, name, model_id, version, stage in (ModelVersion.objects.filter(run_id__in=list(seen))
                                                       .order_by("model__name", "version")
                                                       .values_list("run_id", "model__name", "model_id", "version",
                                                                    "stage")):
            users.setdefault(run_id, []).append((name, model_id, version, stage))
        model_ids = {u[1] for us in users.values() for u in us}
        aliased = set(ModelAlias.objects.filter(model_id__in=model_ids).values_list("model_id", "version"))
        requested = set(extensions.runs_to_refresh(sorted({u[0] for us in users.values() for u in us})))
        for run_id, (old, values) in sorted(seen.items()):
            versions = users.get(run_id, [])
            was, now = old.lifecycle_stage, values["lifecycle_stage"]
            lifecycle = None
            if now in DELETED_RUN_STAGES and was not in DELETED_RUN_STAGES:
                lifecycle = "run_deleted"
            elif was in DELETED_RUN_STAGES and now not in DELETED_RUN_STAGES:
                lifecycle = "run_restored"
            if lifecycle:
                for name, _, version, _ in versions:
                    self._observe(name, version, lifecycle, run_id, {"run_id": run_id, "lifecycle_stage": was},
                                  {"run_id": run_id, "lifecycle_stage": now})
            if now == MISSING_RUN:
                continue  # a run MLflow no longer has: its deletion is the change, not its emptied metrics
            before, after = _metrics_key(old.metrics or {}), _metrics_key(values["metrics"] or {})
            keys = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            if not keys:
                continue
            for name, model_id, version, stage in versions:
                if stage != "None" or (model_id, version) in aliased or run_id in requested:
                    self._observe(name, version, "metrics_changed", run_id,
                                  {"run_id": run_id, "metrics": {k: (old.metrics or {}).get(k) for k in keys}},
                                  {"run_id": run_id, "metrics": {k: (values["metrics"] or {}).get(k) for k in keys}})
