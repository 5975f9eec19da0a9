"""Where signed checkpoints are kept: a Django storage named "audit_checkpoints" in settings.STORAGES.

The default is CheckpointFileStorage, the folder AUDIT_CHECKPOINT_DIR (read at each use, so the
setting can change under tests), files created once and read-only. Several nodes need one place all of
them read and append to: configure the entry with an object store (e.g. django-storages' S3 backend,
with object lock so that nobody, the database's owner included, can rewrite a checkpoint), and every
node signs to and verifies from the same set.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages

ALIAS = "audit_checkpoints"


class CheckpointFileStorage(FileSystemStorage):
    """FileSystemStorage at AUDIT_CHECKPOINT_DIR, never renaming on collision, files mode 0444."""

    def __init__(self, **kwargs):
        kwargs.setdefault("file_permissions_mode", 0o444)
        super().__init__(**kwargs)

    @property
    def base_location(self):
        return self._value_or_setting(self._location, str(settings.AUDIT_CHECKPOINT_DIR))

    @property
    def location(self):
        return str(Path(self.base_location).resolve())

    def get_available_name(self, name, max_length=None):
        if self.exists(name):  # a checkpoint is created once, never replaced nor saved under another name
            raise FileExistsError(f"checkpoint {name} exists already")
        return name


def checkpoint_storage():
    return storages[ALIAS]
