"""A model's risk tier, the governed changes of it, and findings."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class ModelRiskTier(models.Model):
    """The tier in force for one registered model (set only by an approved TierChange)."""

    model = models.OneToOneField("registry_ui.RegisteredModel", on_delete=models.CASCADE, related_name="risk_tier")
    tier = models.CharField(max_length=32)
    change = models.ForeignKey("governance.TierChange", on_delete=models.PROTECT, related_name="+")
    set_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model_id"]

    def __str__(self) -> str:
        return f"{self.model_id}: {self.tier}"


class TierChangeState(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class TierChange(models.Model):
    """A request to set a model's tier: requested by one person, approved or rejected by another."""

    model = models.ForeignKey("registry_ui.RegisteredModel", on_delete=models.CASCADE, related_name="tier_changes")
    from_tier = models.CharField(max_length=32, blank=True, default="")
    to_tier = models.CharField(max_length=32)
    reason = models.TextField()
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    requester_username = models.CharField(max_length=150)
    state = models.CharField(max_length=16, choices=TierChangeState.choices, default=TierChangeState.PENDING)
    decided_by = models.CharField(max_length=150, blank=True, default="")
    decision_comment = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["model"], condition=Q(state="pending"), name="one_pending_tier_change"),
            models.CheckConstraint(condition=Q(state__in=["pending", "approved", "rejected"]),
                                   name="tier_change_state_valid"),
        ]

    def __str__(self) -> str:
        return f"tier change #{self.pk} {self.from_tier or '-'} -> {self.to_tier} ({self.state})"


class Severity(models.TextChoices):
    BLOCKING = "blocking", "Blocking"
    MAJOR = "major", "Major"
    MINOR = "minor", "Minor"


class FindingState(models.TextChoices):
    OPEN = "open", "Open"
    CLOSURE_PROPOSED = "closure_proposed", "Closure proposed"
    CLOSED = "closed", "Closed"


OPEN_FINDING_STATES = [FindingState.OPEN, FindingState.CLOSURE_PROPOSED]


class Finding(models.Model):
    """A validator's (an approver's) finding on a model (version None) or one of its versions."""

    model = models.ForeignKey("registry_ui.RegisteredModel", on_delete=models.CASCADE, related_name="findings")
    version = models.PositiveIntegerField(null=True, blank=True)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    description = models.TextField()
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    owner_username = models.CharField(max_length=150)
    due_date = models.DateField()
    state = models.CharField(max_length=24, choices=FindingState.choices, default=FindingState.OPEN)
    raised_by = models.CharField(max_length=150)
    remediation_note = models.TextField(blank=True, default="")
    closed_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(severity__in=["blocking", "major", "minor"]),
                                   name="finding_severity_valid"),
            models.CheckConstraint(condition=Q(state__in=["open", "closure_proposed", "closed"]),
                                   name="finding_state_valid"),
        ]
        indexes = [models.Index(fields=["model", "state"], name="finding_model_state")]

    def __str__(self) -> str:
        where = f" v{self.version}" if self.version else ""
        return f"finding #{self.pk} ({self.severity}) on {self.model_id}{where}: {self.state}"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_FINDING_STATES
