"""What a version's model needs to run (flavors, Python, signature, input example, requirements), read
from its small files in MLflow by a task and kept in `ModelFiles`, so that no page waits on MLflow.

A page that finds nothing read, or a failed read whose retry time has come, claims the row with a
conditional update (one claim however many nodes show the page at once) and queues the read after its
transaction commits. A failed read is tried again later, each time twice as late (a minute, then two,
... at most a day): MLflow that is down comes back, and files absent from a version are rarely added.
The files of a registered version do not change, so a successful read is kept for good.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django_tasks import task

from registry_ui.mirror import client as gw
from registry_ui.mirror.models import ModelFiles, ModelVersion

# A queued read not finished within this (its worker died, the queue is long) is queued again.
READ_LEASE = timedelta(minutes=5)
RETRY_FIRST = timedelta(minutes=1)
RETRY_MAX = timedelta(days=1)


@dataclass(frozen=True)
class Files:
    """What the pages show. `needs` when read; otherwise `queued_at` when a read is queued, and the
    last failed read's `error`, with `retry_after`, when there was one."""

    needs: dict | None
    read_at: datetime | None
    queued_at: datetime | None
    error: str
    attempts: int
    retry_after: datetime | None

    @property
    def pending(self) -> bool:
        return self.needs is None and self.queued_at is not None


def files_of(mv: ModelVersion) -> Files:
    """The version's files as last read; queues a read when none was made or a failed one is due again."""
    now = timezone.now()
    row = ModelFiles.objects.filter(version=mv).first()
    if row is None or (row.needs is None and row.retry_after <= now) or row.source != mv.source:
        row = _claim(mv, row, now)
    if row.needs is not None:
        return Files(needs=row.needs, read_at=row.read_at, queued_at=None, error="", attempts=row.attempts,
                     retry_after=None)
    # Queued: never tried, or queued again after the last failed try.
    queued = not row.error or (row.read_at is not None and row.queued_at > row.read_at)
    return Files(needs=None, read_at=row.read_at, queued_at=row.queued_at if queued else None, error=row.error,
                 attempts=row.attempts, retry_after=row.retry_after)


def _claim(mv: ModelVersion, row: ModelFiles | None, now: datetime) -> ModelFiles:
    """Take the read for this page's request, or find that another request took it first."""
    lease = now + READ_LEASE
    try:
        with transaction.atomic():
            if row is None:
                row = ModelFiles.objects.create(version=mv, source=mv.source, queued_at=now, retry_after=lease)
                claimed = True
            elif row.source != mv.source:  # another model under this version: forget the old files
                claimed = bool(ModelFiles.objects.filter(pk=row.pk, source=row.source).update(
                    source=mv.source, needs=None, error="", attempts=0, read_at=None, queued_at=now,
                    retry_after=lease))
            else:
                claimed = bool(ModelFiles.objects.filter(pk=row.pk, needs__isnull=True, retry_after__lte=now)
                               .update(queued_at=now, retry_after=lease))
            if claimed:
                transaction.on_commit(lambda: read_model_files_task.enqueue(mv.pk))
    except IntegrityError:  # another request created the row first: its read is queued
        pass
    return ModelFiles.objects.get(version=mv)


def read(version_id: int, *, budget: gw.Budget | None = None) -> ModelFiles | None:
    """Read the version's model files from MLflow and keep what they say (the task's work). None when
    the version is no longer mirrored. On MlflowUnavailable the failure and the time of the next try
    are recorded, then the error is raised (the worker records the task as failed)."""
    mv = ModelVersion.objects.select_related("model").filter(pk=version_id).first()
    if mv is None:
        return None
    failure = None
    try:
        needs = shown(gw.read_model_needs(mv.model.name, mv.version, budget=budget or gw.sync_budget()))
    except gw.MlflowUnavailable as exc:
        needs, failure = None, exc
    now = timezone.now()
    with transaction.atomic():
        row, _ = ModelFiles.objects.select_for_update().get_or_create(
            version=mv, defaults={"queued_at": now, "retry_after": now})
        row.attempts += 1
        row.source, row.needs, row.error, row.read_at = mv.source, needs, str(failure or ""), now
        row.retry_after = now + min(RETRY_FIRST * 2 ** min(row.attempts - 1, 20), RETRY_MAX) if failure else now
        row.save()
    if failure is not None:
        raise failure
    return row


def shown(needs: gw.ModelNeeds) -> dict:
    """The reading as the pages and the model card show it, in plain JSON (the input example as text)."""
    example = needs.input_example or {}
    signature = needs.signature or {}
    out = {
        "flavors": needs.flavors, "python_version": needs.python_version, "mlflow_version": needs.mlflow_version,
        "artifact_location": needs.artifact_location, "requirements": needs.requirements,
        "signature": needs.signature, "inputs": signature.get("inputs"), "outputs": signature.get("outputs"),
        "example_text": json.dumps(example.get("rows", example.get("value")), default=str)[:400] if example else "",
    }
    return json.loads(json.dumps(out, default=str))


@task()
def read_model_files_task(version_id: int) -> dict:
    """The worker's read of a version's model files, queued by the page that found them unread."""
    if read(version_id) is None:
        return {"outcome": "gone", "detail": f"version #{version_id} is no longer mirrored"}
    return {"outcome": "read", "detail": f"the model files of version #{version_id}"}
