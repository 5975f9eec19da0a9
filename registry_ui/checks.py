"""Deployment checks (`manage.py check --deploy`) of a deployment of several nodes: what one node keeps in
its own memory or on its own disk, the others do not see."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.caches, deploy=True)
def shared_state_of_several_nodes(app_configs=None, **kwargs) -> list[Warning]:
    if getattr(settings, "CONSOLE_NODES", 1) <= 1:
        return []
    found = []
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if backend.endswith(("LocMemCache", "DummyCache", "FileBasedCache")):
        found.append(Warning(
            f"CONSOLE_NODES is {settings.CONSOLE_NODES} but the cache is per node ({backend.rsplit('.', 1)[-1]}): "
            "each node counts the API throttle on its own.",
            hint="Set CACHE_URL (or REDIS_URL) to a Redis every node reaches.", id="registry_ui.W001"))
    storage = settings.STORAGES.get("audit_checkpoints", {}).get("BACKEND", "")
    if storage.endswith("CheckpointFileStorage"):
        found.append(Warning(
            f"CONSOLE_NODES is {settings.CONSOLE_NODES} but signed checkpoints go to the folder "
            f"{settings.AUDIT_CHECKPOINT_DIR}: unless every node mounts the same folder, verify on one node does "
            "not see the checkpoints another signed.",
            hint="Set AUDIT_CHECKPOINT_S3_BUCKET (S3 under Object Lock), or mount one shared folder there.",
            id="registry_ui.W002"))
    return found
