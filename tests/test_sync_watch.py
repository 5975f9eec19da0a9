"""`sync_registry --watch` keeps the mirror current and anchors the audit chain on a schedule."""

import pytest
from django.core.management import call_command

from governance.audit.models import AuditEvent
from registry_ui.mirror.models import RegisteredModel


@pytest.mark.mlflow
@pytest.mark.django_db(transaction=True)
def test_watcher_syncs_and_writes_a_signed_checkpoint(settings, tmp_path, use_mlflow_server, mlflow_factory):
    settings.AUDIT_SIGNING_KEY = "watch-test-key-" + "k" * 32
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "checkpoints"
    name = mlflow_factory.model(tags={"team": "watch"})
    mlflow_factory.version(name)

    call_command("sync_registry", watch=0.01, passes=2, verbosity=0)

    assert RegisteredModel.objects.filter(name=name).exists()
    files = sorted((tmp_path / "checkpoints").glob("checkpoint-*.json"))
    # Two passes, one checkpoint: the interval (an hour by default) had not elapsed at the second.
    assert len(files) == 1
    assert AuditEvent.objects.filter(action="audit.checkpoint").count() == 1
    call_command("verify_audit", verbosity=0)  # exits 0: chain intact and consistent with the checkpoint


@pytest.mark.django_db
def test_watcher_rejects_a_non_positive_interval():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="positive"):
        call_command("sync_registry", watch=0)
