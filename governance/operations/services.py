"""The one write of the Operations page: ask the worker for a sync, audited with who asked."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction

from governance import audit
from governance.access import is_operator, visible_models
from governance.errors import NotFound
from registry_ui.mirror.models import RegisteredModel
from registry_ui.mirror.tasks import sync_model_task, sync_registry_task


def mirror_sync_request(*, actor, model_name: str | None = None, source_ip: str | None = None) -> str:
    """Enqueue a full sync (model_name None) or a targeted one; returns the task id. The audit event
    ("sync.requested") and, with the database task backend, the task commit together."""
    if not is_operator(actor):
        raise PermissionDenied("Only ops and administrators may start a sync.")
    if model_name is not None and not visible_models(actor, RegisteredModel.objects.filter(name=model_name)).exists():
        raise NotFound(f"No registered model named {model_name!r}.")
    with transaction.atomic():
        result = sync_model_task.enqueue(model_name) if model_name is not None else sync_registry_task.enqueue()
        audit.record(actor=actor, action="sync.requested", model=model_name or "",
                     after={"scope": f"model:{model_name}" if model_name is not None else "full",
                            "task_id": str(result.id)},
                     comment=f"sync of {model_name!r} requested" if model_name is not None else "full sync requested",
                     source_ip=source_ip)
    return str(result.id)
