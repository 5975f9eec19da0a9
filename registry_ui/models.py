"""Django finds an app's models in `<app>.models`; the mirror's live in registry_ui/mirror/models.py, the
scheduler's in registry_ui/scheduler/models.py."""

from registry_ui.mirror.models import (  # noqa: F401
    DatasetInput,
    MetricHistory,
    ModelAlias,
    ModelFiles,
    ModelVersion,
    RegisteredModel,
    RunSnapshot,
    ShardState,
    Stage,
    SyncRun,
    SyncRunState,
    SyncShard,
    SyncState,
    WebhookDelivery,
)
from registry_ui.scheduler.models import Heartbeat, JobOutcome, Lease, NodeKind, ScheduledJob  # noqa: F401
