"""A row per periodic job: when it runs next, and what its last run did.

The rows live in the database, not in a process, because production runs several nodes: every
scheduler and every page reads the same row, and "is it due?" is decided by a conditional UPDATE on it
(two schedulers never enqueue the same run).
"""

from django.db import models


class JobOutcome(models.TextChoices):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # e.g. a full sync found the sync lock held: it records that and does not wait


class ScheduledJob(models.Model):
    """One periodic job (PeriodicJob.name) and the state of its schedule."""

    name = models.CharField(max_length=100, unique=True)
    task_path = models.CharField(max_length=300)
    interval_seconds = models.PositiveIntegerField()
    next_run_at = models.DateTimeField()
    # The run the scheduler enqueued last (a django-tasks result id) and when.
    last_enqueued_at = models.DateTimeField(null=True, blank=True)
    last_task_id = models.CharField(max_length=64, blank=True, default="")
    # What the last run did (written by the worker that ran it).
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_duration_seconds = models.FloatField(null=True, blank=True)
    last_outcome = models.CharField(max_length=16, choices=JobOutcome.choices, blank=True, default="")
    last_detail = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} every {self.interval_seconds} s"


class NodeKind(models.TextChoices):
    WEB = "web"
    WORKER = "worker"
    SCHEDULER = "scheduler"


class Heartbeat(models.Model):
    """The last sign of life of one process of the deployment (a scheduler candidate, a task worker),
    written by that process; readiness and the Operations page read how old it is."""

    node_id = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=NodeKind.choices)
    host = models.CharField(max_length=255, blank=True, default="")
    pid = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField()
    last_beat_at = models.DateTimeField()

    class Meta:
        ordering = ["kind", "node_id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.node_id} (last beat {self.last_beat_at})"


class Lease(models.Model):
    """A named lease held by one process until `expires_at` (e.g. "scheduler": the scheduler leader).
    Claimed and renewed by conditional UPDATEs (see leadership.py); a holder that dies stops renewing
    and the lease simply runs out."""

    name = models.CharField(max_length=100, unique=True)
    holder = models.CharField(max_length=200, blank=True, default="")
    acquired_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"lease {self.name} held by {self.holder or 'nobody'} until {self.expires_at}"
