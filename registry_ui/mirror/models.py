"""The registry mirror: a rebuildable cache of what MLflow holds.

MLflow stays the system of record for what is registered. These tables are written only by
`registry_ui.mirror.sync` (and by deploy's confirmation re-read) and read by pages, the API and the
governance services. Names follow MLflow's own column limits (names up to 256 characters).
"""

from django.db import models


class Stage(models.TextChoices):
    NONE = "None", "None"
    STAGING = "Staging", "Staging"
    PRODUCTION = "Production", "Production"
    ARCHIVED = "Archived", "Archived"


class RegisteredModel(models.Model):
    """A registered model as last seen in MLflow."""

    name = models.CharField(max_length=256, unique=True)
    description = models.TextField(blank=True, default="")
    tags = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True, db_index=True)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        # Object-level permissions (django-guardian) are granted on this model; governance.access
        # gives them meaning. view_registeredmodel is Django's default.
        permissions = [
            ("request_promotion", "Can request a promotion of this model's versions"),
            ("approve_promotion", "Can approve or reject promotion requests for this model"),
            ("deploy_promotion", "Can deploy approved promotions of this model to MLflow"),
            ("break_glass_promotion", "Can deploy or roll back without approval in an incident (break-glass)"),
        ]

    def __str__(self) -> str:
        return self.name


class ModelVersion(models.Model):
    """One version of a registered model (soft-deleted versions vanish from MLflow and from here)."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.NONE)
    status = models.CharField(max_length=32, blank=True, default="")
    source = models.TextField(blank=True, default="")
    run_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    run_link = models.TextField(blank=True, default="")
    description = models.TextField(blank=True, default="")
    tags = models.JSONField(default=dict, blank=True)
    user_id = models.CharField(max_length=256, blank=True, default="")
    created_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["model__name", "-version"]
        constraints = [models.UniqueConstraint(fields=["model", "version"], name="uniq_model_version")]
        indexes = [models.Index(fields=["model", "stage"], name="version_model_stage_idx")]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.version}"


class ModelAlias(models.Model):
    """An alias (e.g. @champion) pointing at one version of a registered model."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="aliases")
    alias = models.CharField(max_length=256)
    version = models.PositiveIntegerField()

    class Meta:
        ordering = ["model__name", "alias"]
        constraints = [models.UniqueConstraint(fields=["model", "alias"], name="uniq_model_alias")]
        indexes = [models.Index(fields=["alias"], name="alias_name_idx")]

    def __str__(self) -> str:
        return f"{self.model.name}@{self.alias} -> v{self.version}"


class RunSnapshot(models.Model):
    """The MLflow run behind a version: params, final metrics, tags and where it came from."""

    run_id = models.CharField(max_length=64, unique=True)
    experiment_id = models.CharField(max_length=64, blank=True, default="")
    experiment_name = models.CharField(max_length=512, blank=True, default="")
    run_name = models.CharField(max_length=512, blank=True, default="")
    user = models.CharField(max_length=256, blank=True, default="")
    status = models.CharField(max_length=32, blank=True, default="")
    lifecycle_stage = models.CharField(max_length=32, blank=True, default="")
    start_time = models.DateTimeField(null=True, blank=True)
    end_time = models.DateTimeField(null=True, blank=True)
    params = models.JSONField(default=dict, blank=True)
    # Final value per metric key; NaN/inf are stored as strings ("NaN", "Infinity") since JSON has none.
    metrics = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    source_name = models.TextField(blank=True, default="")
    entry_point = models.CharField(max_length=512, blank=True, default="")
    git_commit = models.CharField(max_length=64, blank=True, default="", db_index=True)
    parent_run_id = models.CharField(max_length=64, blank=True, default="")
    logged_model_id = models.CharField(max_length=64, blank=True, default="")
    fetched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run_id"]

    def __str__(self) -> str:
        return f"run {self.run_id}"

    @property
    def is_deleted(self) -> bool:
        """Deleted in MLflow (lifecycle "deleted"), or gone from it altogether ("missing", see the sync)."""
        return self.lifecycle_stage in ("deleted", "missing")


class DatasetInput(models.Model):
    """A dataset logged as an input of a run (MLflow dataset tracking)."""

    run = models.ForeignKey(RunSnapshot, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=512)
    digest = models.CharField(max_length=64, db_index=True)
    source_type = models.CharField(max_length=64, blank=True, default="")
    source = models.TextField(blank=True, default="")
    context = models.CharField(max_length=64, blank=True, default="")  # e.g. train / eval
    schema = models.TextField(blank=True, default="")
    profile = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["run_id", "context", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.digest})"


class MetricHistory(models.Model):
    """The logged values of one metric of one run (the comparison's curves), mirrored by the sync for
    the metrics a run logged at more than one step; at most REGISTRY_HISTORY_MAX_POINTS points, evenly
    sampled by MLflow beyond that (first and last always kept)."""

    run = models.ForeignKey(RunSnapshot, on_delete=models.CASCADE, related_name="histories")
    key = models.CharField(max_length=256)
    points = models.JSONField(default=list)  # [[step, value, timestamp_ms], ...] ordered by step
    # The run's latest (step, value) of this metric when the history was read: a later sync fetches the
    # history again only when the run's latest point differs (more steps logged, a value corrected).
    last_step = models.BigIntegerField(null=True, blank=True)
    last_value = models.FloatField(null=True, blank=True)
    fetched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run_id", "key"]
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="uniq_run_metric_history")]

    def __str__(self) -> str:
        return f"{self.run.run_id}:{self.key}"


class SyncState(models.Model):
    """One row (pk=1): when the mirror was last reconciled, and how the last attempt ended."""

    last_started_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_report = models.JSONField(default=dict, blank=True)
    # When a sync last re-read every run (not only the runs behind decisions): see REGISTRY_ALL_RUNS_EVERY.
    last_all_runs_at = models.DateTimeField(null=True, blank=True)
    # A lease, not a session lock: a full sync claims it with a conditional UPDATE (works the same on
    # PostgreSQL and SQLite, across processes) and a crashed holder's lease simply runs out.
    lock_owner = models.CharField(max_length=64, blank=True, default="")
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"sync state (last good {self.last_success_at})"

    @classmethod
    def get(cls) -> "SyncState":
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj


class WebhookDelivery(models.Model):
    """One accepted MLflow webhook delivery, kept so that a redelivery (same id) is ignored."""

    delivery_id = models.CharField(max_length=128, unique=True)
    received_at = models.DateTimeField(db_index=True)
    event = models.CharField(max_length=64, blank=True, default="")
    model_name = models.CharField(max_length=256, blank=True, default="")

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"delivery {self.delivery_id} ({self.event})"


class SyncRunState(models.TextChoices):
    RUNNING = "running"  # shards queued or being applied
    FINISHING = "finishing"  # every shard applied: deletions being checked, the lock about to be released
    DONE = "done"
    FAILED = "failed"
    ABANDONED = "abandoned"  # its lock ran out and another full sync took it: its leftover shards do nothing


class SyncRun(models.Model):
    """One full sync spread over workers. It holds the one sync lock (SyncState.lock_owner == owner)
    from planning until its last shard is applied and deletions are checked, so two full syncs never
    overlap; each shard renews the lock when it commits. `claimed_by`/`claimed_until`: who finishes it."""

    owner = models.CharField(max_length=64, unique=True)
    task_id = models.CharField(max_length=64, blank=True, default="")  # the planning task (a rerun resumes)
    state = models.CharField(max_length=16, choices=SyncRunState.choices, default=SyncRunState.RUNNING)
    all_runs = models.BooleanField(default=False)
    first_import = models.BooleanField(default=False)
    shards_total = models.PositiveIntegerField(default=0)
    claimed_by = models.CharField(max_length=64, blank=True, default="")
    claimed_until = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [models.CheckConstraint(condition=models.Q(state__in=SyncRunState.values),
                                              name="sync_run_state_valid")]

    def __str__(self) -> str:
        return f"sync run {self.pk} ({self.state}, {self.shards_total} shards)"


class ShardState(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"


class SyncShard(models.Model):
    """A slice of a SyncRun's models (as MLflow listed them at `read_at`), applied by whichever worker
    claims it: a conditional UPDATE, taken over by the same task re-run after its worker died (same
    `claimed_by`) or by anyone once `claimed_until` passed. Marked done in the transaction that writes
    its rows and audit events, so a shard is written once."""

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="shards")
    index = models.PositiveIntegerField()
    records = models.JSONField(default=list)  # ModelRecord fields, one dict per model
    read_at = models.DateTimeField()
    state = models.CharField(max_length=8, choices=ShardState.choices, default=ShardState.QUEUED)
    claimed_by = models.CharField(max_length=64, blank=True, default="")
    claimed_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run_id", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="uniq_sync_shard"),
                       models.CheckConstraint(condition=models.Q(state__in=ShardState.values),
                                              name="sync_shard_state_valid")]

    def __str__(self) -> str:
        return f"shard {self.index} of sync run {self.run_id} ({self.state})"


class ModelFiles(models.Model):
    """What a version's model needs to run, read from its small files in MLflow (MLmodel, requirements,
    the input example) by a task, never by a page (registry_ui/mirror/files.py). No `needs` and no
    `error`: a read is queued. No `needs` and an `error`: the last read failed and is tried again after
    `retry_after`, which is also how long a queued read holds its claim."""

    version = models.OneToOneField(ModelVersion, on_delete=models.CASCADE, related_name="files")
    # The version's source when its files were read: a version whose source the sync sees change is
    # read again, never shown with another model's files.
    source = models.TextField(blank=True, default="")
    needs = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    queued_at = models.DateTimeField()
    retry_after = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"files of version #{self.version_id}"
