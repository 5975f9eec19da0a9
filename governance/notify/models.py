"""Outbox rows of what the console tells the outside world, and who wants to hear what."""

from django.conf import settings
from django.db import models


class EventKind(models.TextChoices):
    """The outbound vocabulary: a subset of the audit actions (the same names)."""

    REQUEST_CREATED = "request.created"
    REQUEST_APPROVED = "request.approved"
    REQUEST_REJECTED = "request.rejected"
    REQUEST_CANCELLED = "request.cancelled"
    # A deploy found a gate failing on fresh evidence: back to pending, approvers needed again.
    REQUEST_REAPPROVAL_REQUIRED = "request.reapproval_required"
    # An ops user deployed without approval in an incident: approvers review it after the fact.
    REQUEST_BREAK_GLASS = "request.break_glass"
    RECERTIFICATION_REMINDED = "recertification.reminded"
    # Open findings past their due date: their owners and the model's approvers are told.
    FINDING_OVERDUE = "finding.overdue"
    DEPLOY_SUCCEEDED = "deploy.succeeded"
    DEPLOY_FAILED = "deploy.failed"
    DRIFT_DETECTED = "registry.drift"
    VALIDATION_FINISHED = "validation.finished"


class MailKind(models.TextChoices):
    """Kinds of mail a person may turn off on their profile page."""

    APPROVAL_NEEDED = "approval_needed", "A request needs my approval"
    DEPLOY_NEEDED = "deploy_needed", "An approved request is mine to deploy"
    MY_REQUEST = "my_request", "My request was approved, rejected, deployed or failed"
    WATCHED_DRIFT = "watched_drift", "Drift on a model I watch"
    EMERGENCY = "emergency", "An emergency (break-glass) deploy I must review"
    RECERTIFICATION = "recertification", "Versions in production whose approval needs renewing"
    FINDINGS = "findings", "Model-risk findings past their due date (mine, or on models I approve)"


class OutboundEvent(models.Model):
    """One event for CI/CD and people, written in the transaction of the audit event it derives from.

    Its id is the event feed's cursor and (with the subscription) the webhook-id of its deliveries."""

    audit_seq = models.BigIntegerField(unique=True)
    kind = models.CharField(max_length=64, choices=EventKind.choices, db_index=True)
    model_name = models.CharField(max_length=256, blank=True, default="", db_index=True)
    version = models.PositiveIntegerField(null=True, blank=True)
    request_id = models.BigIntegerField(null=True, blank=True)
    occurred_at = models.DateTimeField()
    payload = models.JSONField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.model_name}"


class Subscription(models.Model):
    """An admin-configured outbound webhook: where to send which kinds of events, signed with its secret."""

    name = models.CharField(max_length=100, unique=True)
    url = models.URLField(max_length=500)
    # The Standard Webhooks secret ("whsec_" + base64). Shown once when created; needed to sign, so stored.
    secret = models.CharField(max_length=100)
    kinds = models.JSONField(default=list, help_text="Event kinds sent; empty means every kind.")
    model_name = models.CharField(max_length=256, blank=True, default="",
                                  help_text="Only events of this registered model (empty: every model).")
    slack = models.BooleanField(default=False, help_text='Send a Slack-compatible body {"text": ...}.')
    active = models.BooleanField(default=True)
    created_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def wants(self, kind: str, model_name: str) -> bool:
        return self.active and (not self.kinds or kind in self.kinds) and (
            not self.model_name or self.model_name == model_name)


class OutboxState(models.TextChoices):
    PENDING = "pending"
    SENDING = "sending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


class Delivery(models.Model):
    """One event to one subscription: the delivery log row and the unit of retry.

    webhook-id is `msg_<event>_<subscription>`, the same for every attempt and every re-send, so a
    receiver de-duplicates by it."""

    event = models.ForeignKey(OutboundEvent, on_delete=models.CASCADE, related_name="deliveries")
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="deliveries")
    state = models.CharField(max_length=16, choices=OutboxState.choices, default=OutboxState.PENDING,
                             db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["event", "subscription"], name="notify_one_delivery")]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="notify_delivery_due")]

    def __str__(self) -> str:
        return f"{self.webhook_id} -> {self.subscription_id} ({self.state})"

    @property
    def webhook_id(self) -> str:
        return f"msg_{self.event_id}_{self.subscription_id}"


class Notification(models.Model):
    """One email to one person about one event (the mail outbox). Sent by a task, never in a request."""

    event = models.ForeignKey(OutboundEvent, on_delete=models.CASCADE, related_name="notifications")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=32, choices=MailKind.choices)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    state = models.CharField(max_length=16, choices=OutboxState.choices, default=OutboxState.PENDING,
                             db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["event", "user", "kind"], name="notify_one_mail")]

    def __str__(self) -> str:
        return f"{self.kind} to {self.user_id}: {self.subject}"


class MailPreference(models.Model):
    """The kinds of mail a person turned off (absent row: every kind on)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mail_preference")
    muted = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["user_id"]

    def __str__(self) -> str:
        return f"{self.user_id}: muted {', '.join(self.muted) or 'nothing'}"


class ModelWatch(models.Model):
    """A person watching a registered model: told about drift on it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="model_watches")
    model = models.ForeignKey("registry_ui.RegisteredModel", on_delete=models.CASCADE, related_name="watches")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model__name"]
        constraints = [models.UniqueConstraint(fields=["user", "model"], name="notify_one_watch")]

    def __str__(self) -> str:
        return f"{self.user_id} watches {self.model_id}"
