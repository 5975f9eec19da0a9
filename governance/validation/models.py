"""One validation of one model version against one policy spec and one incumbent."""

import hashlib
import json

from django.db import models
from django.db.models import Q


class ValidationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"


FINISHED = [ValidationStatus.PASSED, ValidationStatus.FAILED]


def spec_key(spec: dict, incumbent: int | None) -> str:
    """What identifies the evidence a validation gives: the spec (dataset, thresholds, limits) and the
    version it was compared with. Another policy or another incumbent needs another run."""
    canonical = json.dumps({"spec": spec, "incumbent": incumbent}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class ValidationRun(models.Model):
    """A validation: queued by a request, a re-run or a deploy; run by a task; its result (checks,
    metrics, latency, prediction distributions, what the model needs to run) is evidence."""

    model = models.ForeignKey("registry_ui.RegisteredModel", null=True, on_delete=models.SET_NULL,
                              related_name="validation_runs")
    model_name = models.CharField(max_length=256)
    version = models.PositiveIntegerField()
    incumbent_version = models.PositiveIntegerField(null=True, blank=True)
    spec = models.JSONField(default=dict)
    spec_digest = models.CharField(max_length=16)
    status = models.CharField(max_length=8, choices=ValidationStatus.choices, default=ValidationStatus.QUEUED)
    reason = models.TextField(blank=True, default="")
    result = models.JSONField(default=dict, blank=True)
    # Why it ran ("request #12 created", "re-run", "deploy of #12: evidence changed") and for whom.
    trigger = models.CharField(max_length=200, blank=True, default="")
    request_id = models.PositiveIntegerField(null=True, blank=True)
    requested_by = models.CharField(max_length=150, blank=True, default="")
    # The version tags written back to MLflow (empty: not written; tags_error says why).
    tags_written = models.JSONField(default=dict, blank=True)
    tags_error = models.TextField(blank=True, default="")
    # The task running it (its id): the same task re-run after its worker died takes it back.
    claimed_by = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["model_name", "version", "spec_digest"], name="validation_lookup")]
        constraints = [models.CheckConstraint(condition=Q(status__in=ValidationStatus.values),
                                              name="validation_status_valid")]

    def __str__(self) -> str:
        return f"validation #{self.pk} {self.model_name} v{self.version} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in FINISHED
