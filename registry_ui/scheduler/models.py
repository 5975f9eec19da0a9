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
