"""The audit trail table. Rows are written only by governance.audit.record()."""

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One append-only, hash-chained record of something that happened."""

    seq = models.BigIntegerField(unique=True)
    timestamp = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
        related_name="+",
    )
    # Kept beside the FK so history survives the user's deletion; also "system:sync", "mlflow:webhook".
    actor_username = models.CharField(max_length=150)
    action = models.CharField(max_length=64)
    # Model name, not FK: registered models are hard-deleted in MLflow (and in the mirror), the
    # trail about them must stay.
    model_name = models.CharField(max_length=256, blank=True, default="")
    version = models.PositiveIntegerField(null=True, blank=True)
    request_id = models.BigIntegerField(null=True, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    comment = models.TextField(blank=True, default="")
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["seq"]
        # Search pages newest first by seq (keyset): each filter gets an index that ends in seq, so
        # "filter, then the next 50 by seq" is an index range scan at any table size.
        indexes = [
            models.Index(fields=["action", "seq"], name="audit_action_seq"),
            models.Index(fields=["actor_username", "seq"], name="audit_actor_seq"),
            models.Index(fields=["model_name", "version", "seq"], name="audit_model_seq"),
            models.Index(fields=["request_id", "seq"], name="audit_request_seq"),
            # Covering: the reports page's names of models deleted from MLflow (a DISTINCT over the
            # deletion events) is read from this index alone, not from the heap of a million events.
            models.Index(fields=["action", "model_name"], name="audit_action_model"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} by {self.actor_username}"


class AuditVerification(models.Model):
    """Bookkeeping: the result of one walk of the chain (verify_audit or the verify API).

    Not part of the trail itself; the audit page shows the latest one.
    """

    verified_at = models.DateTimeField(auto_now_add=True, db_index=True)
    ok = models.BooleanField()
    count = models.BigIntegerField(default=0)
    head_seq = models.BigIntegerField(null=True, blank=True)
    head_hash = models.CharField(max_length=64, blank=True, default="")
    broken_seq = models.BigIntegerField(null=True, blank=True)
    reason = models.TextField(blank=True, default="")
    checkpoints_checked = models.IntegerField(default=0)
    checkpoint_file = models.CharField(max_length=255, blank=True, default="")
    source = models.CharField(max_length=32, default="command")
    # "whole": every event re-hashed from seq 1. "incremental": the events after the newest signed
    # checkpoint (from_seq), which itself was checked against the chain; `count` is what was re-hashed.
    scope = models.CharField(max_length=16, default="whole")
    from_seq = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-verified_at", "-id"]

    def __str__(self) -> str:
        return f"{'intact' if self.ok else 'BROKEN'} at {self.verified_at:%Y-%m-%d %H:%M} ({self.count} events)"
