"""Promotion requests, their approvals, the deploy outbox and per-model policy.

State changes happen only in governance.workflow (conditional UPDATEs claim a row); the database
keeps the invariants too: exactly one target, a known state, one open request per model+target.
"""

import re

from django.conf import settings
from django.db import models
from django.db.models import Q

from governance.validation.spec import validate_spec


class RequestState(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"
    # Claimed by one deployer; the MLflow write is in flight (or was interrupted: see resolve_outbox).
    DEPLOYING = "deploying", "Deploying"
    DEPLOYED = "deployed", "Deployed"
    FAILED = "failed", "Failed"


OPEN_STATES = [RequestState.PENDING, RequestState.APPROVED, RequestState.DEPLOYING, RequestState.FAILED]


class Operation(models.TextChoices):
    """What a request asks MLflow to do. Every registry move is one of these, governed alike."""

    # Move the version to a stage (up or down, None and Archived included) or point an alias at it.
    MOVE = "move", "Move to a stage / set an alias"
    # Remove an alias from the version it points at.
    REMOVE_ALIAS = "remove_alias", "Remove an alias"
    # Delete an archived version (after the policy's retention); never one holding a stage or alias.
    DELETE = "delete", "Delete an archived version"
    # A retention batch: archive and delete the versions listed in the request's plan, one by one.
    RETENTION = "retention", "Retention batch"


# What a person or pipeline may ask for one version at a time; a retention batch is proposed only by the
# retention page or its scheduled job, from the policy's plan.
REQUESTED_OPERATIONS = (Operation.MOVE, Operation.REMOVE_ALIAS, Operation.DELETE)
OPERATION_NOT_REQUESTABLE = ("Unknown operation {operation!r}; choose one of move, remove_alias, delete "
                             "(a retention batch is proposed on the retention page or by its scheduled job).")


REQUEST_STAGES = ["", "None", "Staging", "Production", "Archived"]


class PromotionRequest(models.Model):
    """A request to move one version of a registered model to one stage or alias."""

    model = models.ForeignKey("registry_ui.RegisteredModel", null=True, on_delete=models.SET_NULL,
                              related_name="promotion_requests")
    # Kept beside the FK: the mirror row may vanish when MLflow deletes the model; the request stays.
    model_name = models.CharField(max_length=256, db_index=True)
    version = models.PositiveIntegerField()
    target_stage = models.CharField(max_length=20, blank=True, default="")
    target_alias = models.CharField(max_length=256, blank=True, default="")
    archive_existing = models.BooleanField(default=False)
    operation = models.CharField(max_length=16, choices=Operation.choices, default=Operation.MOVE)
    # A retention batch's plan, frozen when proposed: [{"version", "action": "archive"|"delete", "why"}].
    plan = models.JSONField(default=list, blank=True)
    justification = models.TextField()
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                  related_name="promotion_requests")
    requester_username = models.CharField(max_length=150)
    state = models.CharField(max_length=16, choices=RequestState.choices, default=RequestState.PENDING,
                             db_index=True)
    rollback = models.BooleanField(default=False)
    urgent = models.BooleanField(default=False)
    # Break-glass: deployed without approval by an ops user holding the break-glass permission, with a
    # mandatory reason (the justification). A post-hoc review must be closed by an approver by
    # review_due_at; until then it is an open review on the inbox and the auditor's reports.
    emergency = models.BooleanField(default=False, db_index=True)
    review_due_at = models.DateTimeField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.CharField(max_length=150, blank=True, default="")
    review_comment = models.TextField(blank=True, default="")
    # What the requester and the approvers saw, frozen: candidate/incumbent metrics, params digest,
    # gate results and the MLflow version state.
    evidence = models.JSONField(default=dict, blank=True)
    approval_evidence = models.JSONField(default=dict, blank=True)
    gate_results = models.JSONField(default=list, blank=True)
    override = models.BooleanField(default=False)
    # Set when a deploy found that a gate which passed at approval now fails on evidence read from
    # MLflow: what changed (old -> new), which gates fail, and the superseded approval evidence. The
    # request went back to pending; it "needs re-approval" while it stays there.
    reapproval = models.JSONField(default=dict, blank=True)
    decided_by = models.CharField(max_length=150, blank=True, default="")
    decision_comment = models.TextField(blank=True, default="")
    deployed_by = models.CharField(max_length=150, blank=True, default="")
    deployed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    # The deploy lease: one attempt at a time. A deployer claims attempt N+1 with a conditional UPDATE
    # on (state, deploy_attempt) before MLflow is called; while state is 'deploying' and the lease has
    # not expired, nobody else may deploy; after it expires the attempt is presumed dead (resolve_outbox).
    deploy_attempt = models.PositiveIntegerField(default=0)
    lease_holder = models.CharField(max_length=150, blank=True, default="")
    lease_started_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # A move names a stage or an alias; removing an alias names the alias; a deletion neither.
            models.CheckConstraint(
                condition=(Q(operation="move") & ((Q(target_stage="") & ~Q(target_alias=""))
                                                  | (~Q(target_stage="") & Q(target_alias=""))))
                | (Q(operation="remove_alias") & Q(target_stage="") & ~Q(target_alias=""))
                | (Q(operation__in=["delete", "retention"]) & Q(target_stage="") & Q(target_alias="")),
                name="request_target_fits_operation",
            ),
            models.CheckConstraint(condition=Q(state__in=RequestState.values), name="request_state_valid"),
            models.CheckConstraint(condition=Q(target_stage__in=REQUEST_STAGES), name="request_stage_valid"),
            models.UniqueConstraint(
                fields=["model_name", "target_stage", "target_alias"],
                condition=Q(state__in=OPEN_STATES) & ~Q(operation__in=["delete", "retention"]),
                name="one_open_request_per_target",
            ),
            models.UniqueConstraint(
                fields=["model_name"], condition=Q(state__in=OPEN_STATES) & Q(operation="retention"),
                name="one_open_retention_batch_per_model",
            ),
            models.UniqueConstraint(
                fields=["model_name", "version"],
                condition=Q(state__in=OPEN_STATES) & Q(operation="delete"),
                name="one_open_deletion_per_version",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.model_name} v{self.version} -> {self.target_label} ({self.state})"

    @property
    def target_kind(self) -> str:
        return "stage" if self.target_stage else "alias"

    @property
    def target_label(self) -> str:
        if self.operation == Operation.DELETE:
            return "deleted"
        if self.operation == Operation.RETENTION:
            return f"retention ({len(self.plan)} versions)"
        if self.operation == Operation.REMOVE_ALIAS:
            return f"@{self.target_alias} removed"
        return self.target_stage or f"@{self.target_alias}"

    @property
    def deploy_kind_target(self) -> tuple[str, str]:
        """The Deployment kind and target this request's deploy writes."""
        if self.operation == Operation.RETENTION:
            return "batch", "retention"  # each step is a Deployment of its own (stage:Archived or delete)
        if self.operation == Operation.DELETE:
            return "delete", "version"
        if self.operation == Operation.REMOVE_ALIAS:
            return "unalias", self.target_alias
        return ("stage", self.target_stage) if self.target_stage else ("alias", self.target_alias)

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def needs_reapproval(self) -> bool:
        return self.state == RequestState.PENDING and bool(self.reapproval)

    def lease_live(self, now) -> bool:
        """A deploy attempt holds this request now (claimed, not finished, lease not expired)."""
        return (self.state == RequestState.DEPLOYING and self.lease_expires_at is not None
                and self.lease_expires_at > now)


class Approval(models.Model):
    """One approver's yes on a request (Production may need several distinct ones). An approval given
    on evidence that later changed so that a gate fails is superseded: it stays on record, no longer
    counts towards the quorum, and its approver may approve again."""

    request = models.ForeignKey(PromotionRequest, on_delete=models.CASCADE, related_name="approvals")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    approver_username = models.CharField(max_length=150)
    comment = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    superseded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["request", "approver_username"],
                                               condition=Q(superseded_at__isnull=True),
                                               name="one_live_approval_per_user")]

    def __str__(self) -> str:
        return f"{self.approver_username} approved #{self.request_id}"


class DeploymentState(models.TextChoices):
    PENDING = "pending", "Pending (intent recorded, outcome unknown)"
    SUCCEEDED = "succeeded", "Succeeded (confirmed by reading MLflow)"
    FAILED = "failed", "Failed (confirmed not applied)"


# The version tag each deploy sets on its version before it moves the stage or alias: whoever reads
# MLflow later tells the console's own write (even one that lands after the console gave up on it)
# from somebody else's change by this mark. One key per target, so deploys of one version to two
# targets do not overwrite each other's mark.
MARKER_PREFIX = "governance.deploy"
_MARKER_RE = re.compile(r"^deployment=(\d+) request=(\d+) attempt=(\d+)$")


def marker_key(kind: str, target: str) -> str:
    return f"{MARKER_PREFIX}.{kind}.{target}"


def parse_marker(value: str | None) -> int | None:
    """The deployment id a mark names (None: not a mark of ours)."""
    match = _MARKER_RE.match(value or "")
    return int(match.group(1)) if match else None


# stage: a stage move; alias: an alias set; unalias: an alias removed; delete: a version deleted.
DEPLOY_KINDS = ["stage", "alias", "unalias", "delete"]


class Deployment(models.Model):
    """The outbox: one deploy attempt's intended MLflow write, recorded before it is made, resolved by
    reading MLflow (the target's state and the attempt's mark on the version)."""

    request = models.ForeignKey(PromotionRequest, on_delete=models.CASCADE, related_name="deployments")
    model_name = models.CharField(max_length=256, db_index=True)
    version = models.PositiveIntegerField()
    kind = models.CharField(max_length=8)  # one of DEPLOY_KINDS
    target = models.CharField(max_length=256)  # stage name or alias
    archive_existing = models.BooleanField(default=False)
    state = models.CharField(max_length=16, choices=DeploymentState.choices, default=DeploymentState.PENDING,
                             db_index=True)
    actor_username = models.CharField(max_length=150)
    # Which attempt of its request this is (0: recorded before attempts were numbered, carries no mark).
    attempt = models.PositiveIntegerField(default=0)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    # The rollback alias move made in the same attempt, beside the main move, when it replaces the
    # holder of Production or a protected alias: {"alias", "version" (the previous holder), "was"}.
    rollback_move = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    # When the move was sent to MLflow, and when it landed there as MLflow reports it (a stage move
    # carries MLflow's own time; an alias move none, so then the time it was first seen).
    sent_at = models.DateTimeField(null=True, blank=True)
    landed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=DEPLOY_KINDS), name="deployment_kind_valid"),
            # At most one unresolved write per request: a retry resolves the previous one first.
            models.UniqueConstraint(fields=["request"], condition=Q(state="pending"), name="one_pending_deployment"),
        ]

    def __str__(self) -> str:
        return f"deploy {self.model_name} v{self.version} -> {self.kind}:{self.target} ({self.state})"

    @property
    def marker_key(self) -> str:
        return marker_key(self.kind, self.target)

    @property
    def marker(self) -> str:
        """The tag value this attempt sets; empty for rows from before attempts were marked."""
        if not self.attempt:
            return ""
        return f"deployment={self.pk} request={self.request_id} attempt={self.attempt}"


class ModelPolicy(models.Model):
    """Per-model scoping switch and policy gates; an empty field falls back to settings' defaults."""

    model = models.OneToOneField("registry_ui.RegisteredModel", on_delete=models.CASCADE, related_name="policy")
    scoped = models.BooleanField(
        default=False,
        help_text="When on, role-group permissions do not apply to this model: request/approve/deploy need "
                  "an object permission granted on it (Object permissions in its admin page).",
    )
    required_tags = models.JSONField(
        null=True, blank=True,
        help_text='Version tags required for Production / protected aliases, e.g. {"validation_status": "passed"}. '
                  "Empty: the global default.",
    )
    metric_thresholds = models.JSONField(
        null=True, blank=True,
        help_text='e.g. {"accuracy": {"min": 0.8}, "latency_ms": {"max": 50}}. Empty: the global default.',
    )
    compare_metric = models.CharField(
        max_length=256, blank=True, default="",
        help_text="The candidate must not be worse than the current holder of the target on this metric.",
    )
    higher_is_better = models.BooleanField(default=True)
    require_lineage = models.BooleanField(null=True, blank=True,
                                          help_text="Require a run with a dataset input. Empty: global default.")
    production_quorum = models.PositiveSmallIntegerField(null=True, blank=True,
                                                         help_text="Distinct approvals for Production. Empty: default.")
    rollback_alias = models.CharField(
        max_length=256, blank=True, default="",
        help_text="The alias a deploy gives the previous holder of Production or a protected alias. "
                  "Empty: the global default (WORKFLOW_ROLLBACK_ALIAS).")
    retention_keep = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Retention: keep the newest N versions outside protected stages (Staging, Production) and "
                  "aliases, archive the rest. Empty: the global default (WORKFLOW_RETENTION_KEEP; 0 = off).")
    approval_validity_days = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Re-certification: an approval of a version in Production or a protected alias is valid this "
                  "many days; then it enters the re-review queue. Empty: default (WORKFLOW_APPROVAL_VALIDITY_DAYS).")
    delete_after_days = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="An archived version may be deleted this many days after it was archived. Empty: default.")
    validation = models.JSONField(
        null=True, blank=True, validators=[validate_spec],
        help_text='Validation before promotion, e.g. {"dataset": "runs:/<run_id>/eval/holdout.csv", "target": "label", '
                  '"thresholds": {"roc_auc": {"min": 0.85}}, "relative": {"roc_auc": {"max_drop": 0.01}}, '
                  '"max_latency_p95_ms": 100, "max_psi": 0.2, "class_rate": {"min": 0.1, "max": 0.2}}. '
                  "Runs for Production and protected aliases unless \"targets\" lists others. Empty: none.",
    )

    class Meta:
        ordering = ["model__name"]
        verbose_name_plural = "model policies"

    def __str__(self) -> str:
        return f"policy of {self.model.name}"


class Recertification(models.Model):
    """An approver confirmed, again, that a version may keep holding a protected target (Production or a
    protected alias): it restarts the approval's validity (ModelPolicy.approval_validity_days)."""

    model_name = models.CharField(max_length=256, db_index=True)
    version = models.PositiveIntegerField()
    target = models.CharField(max_length=260)  # "Production" or "@champion"
    approver_username = models.CharField(max_length=150)
    comment = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.model_name} v{self.version} {self.target} re-certified by {self.approver_username}"
