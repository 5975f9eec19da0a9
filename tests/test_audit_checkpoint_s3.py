"""Signed checkpoints in S3 with Object Lock (governance/audit/s3.py), against moto's standalone S3 server
(a real process speaking the S3 protocol, Object Lock included) on a free loopback port."""

import json
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from django.core.files.base import ContentFile
from django.utils import timezone

from benchmarks.servers import ChildServer, free_port
from governance.audit import checkpoints
from governance.audit.services import audit_scheduled_checkpoint
from tests.fixtures_audit import seed_events

pytestmark = pytest.mark.django_db
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    port = free_port()
    moto = str(Path(sys.executable).with_name("moto_server"))
    server = ChildServer("moto_server", [moto, "-H", "127.0.0.1", "-p", str(port)], url=f"http://127.0.0.1:{port}",
                         probe="/moto-api/", env={"PATH": "/usr/bin:/bin"},
                         log=tmp_path_factory.mktemp("moto") / "moto.log")
    server.start(timeout=60)
    yield server
    server.stop()


@pytest.fixture(params=["COMPLIANCE", "GOVERNANCE"])
def locked_store(request, s3_server, settings, signing_key):
    """A bucket of the test's own, created with Object Lock; the checkpoint storage pointed at it."""
    bucket = f"checkpoints-{uuid.uuid4().hex[:10]}"
    s3 = boto3.client("s3", endpoint_url=s3_server.url, region_name="us-east-1", **CREDENTIALS)
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    settings.STORAGES = {**settings.STORAGES, "audit_checkpoints": {
        "BACKEND": "governance.audit.s3.CheckpointS3Storage",
        "OPTIONS": {"bucket_name": bucket, "location": "audit-checkpoints", "endpoint_url": s3_server.url,
                    "region_name": "us-east-1", "access_key": "testing", "secret_key": "testing",
                    "lock_mode": request.param, "lock_days": 30}}}
    return s3, bucket, request.param


def test_a_checkpoint_is_written_locked_and_verified_from_the_bucket(locked_store, settings):
    s3, bucket, mode = locked_store
    seed_events(3)
    assert audit_scheduled_checkpoint().startswith("checkpoint written")
    [name] = checkpoints.checkpoint_names()
    key = f"audit-checkpoints/{name}"
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ObjectLockMode"] == mode
    assert timedelta(days=29) < head["ObjectLockRetainUntilDate"] - timezone.now() <= timedelta(days=30)
    assert json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())["seq"] == 3
    assert not settings.AUDIT_CHECKPOINT_DIR.exists()  # nothing node-local
    assert audit_scheduled_checkpoint() == f"latest checkpoint {name} is recent"  # the bucket's time decides
    assert checkpoints.verify().ok and checkpoints.verify().checkpoints_checked == 1


def test_nobody_can_delete_or_rewrite_a_locked_checkpoint(locked_store):
    s3, bucket, _ = locked_store
    seed_events(2)
    name = checkpoints.write_checkpoint().file
    key = f"audit-checkpoints/{name}"
    [version] = s3.list_object_versions(Bucket=bucket, Prefix=key)["Versions"]

    with pytest.raises(ClientError) as refused:  # the console's own credentials, or the bucket owner's
        s3.delete_object(Bucket=bucket, Key=key, VersionId=version["VersionId"])
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(FileExistsError):  # the console never writes a checkpoint twice
        checkpoints.checkpoint_storage().save(name, ContentFile(b"{}"))

    # What a versioned bucket still allows, a forged body put over the key and a delete marker, only
    # adds versions: the storage reads the locked first one, and verify checks what was signed.
    s3.put_object(Bucket=bucket, Key=key, Body=b'{"seq": 1, "forged": true}')
    s3.delete_object(Bucket=bucket, Key=key)
    assert checkpoints.checkpoint_names() == [name]
    assert json.loads(checkpoints.read_checkpoint(name))["seq"] == 2
    assert checkpoints.verify().ok
