"""Checkpoints go through the "audit_checkpoints" storage, so nodes can share one store (S3 in
production): here a storage other than the local folder, shared by the "nodes" of this process."""

import pytest
from django.core.files.base import ContentFile

from governance.audit import checkpoints
from governance.audit.services import audit_scheduled_checkpoint
from tests.fixtures_audit import seed_events

pytestmark = pytest.mark.django_db


@pytest.fixture
def shared_store(settings, signing_key):
    settings.STORAGES = {**settings.STORAGES,
                         "audit_checkpoints": {"BACKEND": "django.core.files.storage.InMemoryStorage"}}
    return checkpoints.checkpoint_storage()


def test_a_checkpoint_is_written_to_and_verified_from_the_configured_storage(shared_store, settings):
    seed_events(3)
    assert audit_scheduled_checkpoint().startswith("checkpoint written")
    [name] = checkpoints.checkpoint_names()
    assert shared_store.exists(name) and not settings.AUDIT_CHECKPOINT_DIR.exists()  # nothing node-local
    assert audit_scheduled_checkpoint() == f"latest checkpoint {name} is recent"  # the store's time decides
    assert checkpoints.verify().ok

    shared_store.delete(name)  # someone removes the signed checkpoint from the store
    result = checkpoints.verify()
    assert not result.ok and "missing" in result.reason


def test_the_default_storage_is_the_checkpoint_folder_and_never_replaces_a_file(signing_key, settings):
    seed_events(1)
    cp = checkpoints.write_checkpoint()
    path = settings.AUDIT_CHECKPOINT_DIR / cp.file
    assert checkpoints.latest_checkpoint_path() == path.resolve()
    assert oct(path.stat().st_mode & 0o777) == "0o444"
    with pytest.raises(FileExistsError):
        checkpoints.checkpoint_storage().save(cp.file, ContentFile(b"{}"))  # not saved under another name
    assert checkpoints.checkpoint_names() == [cp.file] and checkpoints.verify().ok
