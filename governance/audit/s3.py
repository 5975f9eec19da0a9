"""Signed checkpoints in S3-compatible object storage with Object Lock (django-storages' S3 backend).

Configured by AUDIT_CHECKPOINT_S3_BUCKET and friends (settings, README "Several nodes"). The bucket must be
created with Object Lock enabled (which turns versioning on). Every checkpoint is written with a retention
(COMPLIANCE: nobody, the account's root included, can delete or shorten it before the date; GOVERNANCE:
only a principal allowed s3:BypassGovernanceRetention can), so whoever owns the database, and whoever holds
the console's own S3 credentials, cannot destroy a checkpoint.

Writing a key again or "deleting" it (without a version id) is still possible in a versioned bucket: it
adds a newer version or a delete marker, and leaves the locked one in place. So this storage reads what
the console wrote, not what came later: a key counts as long as it has a version, and reads, its time and
its listing come from its first (oldest) version. A forged file put over a checkpoint, or a delete marker
hiding one, changes nothing verify sees.

A known limit: write_checkpoint stores the file inside the transaction that records its
audit.checkpoint event and deletes the file when that transaction fails. Here the delete only adds a
delete marker (the locked version stays, and this storage still reads it), so a transaction that fails
after the upload (a connection lost at COMMIT) leaves a checkpoint pinning an event that does not exist,
which verify reports until an operator with the right to bypass the retention (GOVERNANCE mode) removes
that version, or forever in COMPLIANCE mode. The window is the COMMIT alone.

Imported only when the storage is configured: django-storages and boto3 are the `s3` extra.
"""

from __future__ import annotations

import posixpath
from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.utils import timezone
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

LOCK_MODES = ("COMPLIANCE", "GOVERNANCE")


class CheckpointS3Storage(S3Storage):
    """S3Storage writing each object once, under Object Lock retention, and reading first versions."""

    def __init__(self, *, lock_mode: str = "COMPLIANCE", lock_days: int = 2555, **kwargs):
        kwargs.setdefault("file_overwrite", False)
        super().__init__(**kwargs)
        self.lock_mode = (lock_mode or "").upper()
        if self.lock_mode not in LOCK_MODES:
            raise ImproperlyConfigured(f"AUDIT_CHECKPOINT_S3_LOCK_MODE must be one of {', '.join(LOCK_MODES)}, "
                                       f"not {lock_mode!r}.")
        self.lock_days = int(lock_days)
        if self.lock_days < 1:
            raise ImproperlyConfigured("AUDIT_CHECKPOINT_S3_LOCK_DAYS must be at least 1.")

    # --- writing ----------------------------------------------------------------------------------
    def get_available_name(self, name, max_length=None):
        if self.exists(name):  # created once: never replaced, never saved under another name
            raise FileExistsError(f"checkpoint {name} exists already")
        return clean_name(name)

    def _get_write_parameters(self, name, content=None):
        params = super()._get_write_parameters(name, content)
        params["ObjectLockMode"] = self.lock_mode
        params["ObjectLockRetainUntilDate"] = timezone.now() + timedelta(days=self.lock_days)
        return params

    # --- reading: first versions --------------------------------------------------------------------
    def _client(self):
        return self.connection.meta.client

    def _versions(self, prefix: str, *, delimiter: str | None = None) -> tuple[dict[str, dict], list[str]]:
        """{key: its oldest version} of the object versions under `prefix` (delete markers ignored), and
        the common prefixes. S3 lists a key's versions newest first, so the last one seen is the oldest."""
        oldest: dict[str, dict] = {}
        prefixes: list[str] = []
        kwargs = {"Bucket": self.bucket_name, "Prefix": prefix, **({"Delimiter": delimiter} if delimiter else {})}
        for page in self._client().get_paginator("list_object_versions").paginate(**kwargs):
            for version in page.get("Versions", ()):
                oldest[version["Key"]] = version
            prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", ())]
        return oldest, prefixes

    def _first_version(self, name: str) -> dict | None:
        key = self._normalize_name(clean_name(name))
        return self._versions(key)[0].get(key)

    def exists(self, name):
        return self._first_version(name) is not None

    def listdir(self, name):
        path = self._normalize_name(clean_name(name))
        if path and not path.endswith("/"):
            path += "/"
        oldest, prefixes = self._versions(path, delimiter="/")
        return ([posixpath.relpath(p, path) for p in prefixes],
                [posixpath.relpath(key, path) for key in oldest if key != path])

    def _open(self, name, mode="rb"):
        if "w" in mode or "a" in mode or "+" in mode:
            raise PermissionError("checkpoints are written with save(), once")
        first = self._first_version(name)
        if first is None:
            raise FileNotFoundError(f"File does not exist: {name}")
        body = self._client().get_object(Bucket=self.bucket_name, Key=first["Key"], VersionId=first["VersionId"])
        content = ContentFile(body["Body"].read(), name=name)
        return content

    def get_modified_time(self, name):
        first = self._first_version(name)
        if first is None:
            raise FileNotFoundError(f"File does not exist: {name}")
        return first["LastModified"]

    def size(self, name):
        first = self._first_version(name)
        if first is None:
            raise FileNotFoundError(f"File does not exist: {name}")
        return first["Size"]
