"""A model card per model version, its revisions (the governed edits), and the template per tier."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class CardTemplate(models.Model):
    """The sections a card of one risk tier has, and which it requires ('' = models without a tier).
    A tier without a row uses the built-in default (governance.cards.defaults); written only through
    services.card_template_set / card_template_reset, which audit the change."""

    tier = models.CharField(max_length=32, unique=True, blank=True)
    sections = models.JSONField(default=list)  # [{"key", "title", "required", "guidance"}]
    updated_by = models.CharField(max_length=150, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tier"]

    def __str__(self) -> str:
        return f"card template of {self.tier or 'models without a tier'}"


class ModelCard(models.Model):
    """The card of one model version; `current` is its approved revision in force (None: none yet)."""

    model = models.ForeignKey("registry_ui.RegisteredModel", on_delete=models.CASCADE, related_name="cards")
    version = models.PositiveIntegerField()
    # SET_NULL, not PROTECT: a model deleted in MLflow leaves the mirror with its cards (CASCADE) in one go.
    current = models.ForeignKey("governance.CardRevision", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model_id", "-version"]
        constraints = [models.UniqueConstraint(fields=["model", "version"], name="one_card_per_version")]

    def __str__(self) -> str:
        return f"card of {self.model_id} v{self.version}"


class RevisionState(models.TextChoices):
    PENDING = "pending", "Proposed (awaiting approval)"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class PublishState(models.TextChoices):
    """Where the approved revision stands in MLflow (the version's description)."""

    NONE = "", "Not to be written"
    PENDING = "pending", "To be written"
    WRITING = "writing", "Being written"
    WRITTEN = "written", "Written to MLflow"
    FAILED = "failed", "Not written (MLflow refused or did not answer)"
    SUPERSEDED = "superseded", "Superseded by a newer revision"


class CardRevision(models.Model):
    """One edit of a card: its full sections, who wrote it, from which approved revision, and how it was
    decided (applied directly, or approved/rejected by a second person for tiers that review edits)."""

    card = models.ForeignKey(ModelCard, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    sections = models.JSONField(default=list)  # [{"key", "title", "body"}], in order
    base = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    tier = models.CharField(max_length=32, blank=True, default="")
    state = models.CharField(max_length=16, choices=RevisionState.choices, default=RevisionState.PENDING)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    author_username = models.CharField(max_length=150)
    comment = models.TextField(blank=True, default="")
    decided_by = models.CharField(max_length=150, blank=True, default="")
    decision_comment = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    publish_state = models.CharField(max_length=16, choices=PublishState.choices, blank=True, default="")
    publish_attempts = models.PositiveIntegerField(default=0)
    publish_started_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    publish_error = models.TextField(blank=True, default="")
    description_digest = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["card", "number"], name="card_revision_number"),
            models.UniqueConstraint(fields=["card"], condition=Q(state="pending"), name="one_pending_card_revision"),
            models.CheckConstraint(condition=Q(state__in=["pending", "approved", "rejected"]),
                                   name="card_revision_state_valid"),
        ]

    def __str__(self) -> str:
        return f"card revision #{self.pk} (r{self.number}, {self.state})"

    def body(self, key: str) -> str:
        return next((s.get("body", "") for s in self.sections if s.get("key") == key), "")
