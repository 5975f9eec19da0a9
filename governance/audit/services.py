"""Services of the audit trail: verification (with bookkeeping and checkpoints) and audited exports."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction

from governance import audit
from governance.audit import checkpoints
from governance.audit.models import AuditVerification
from registry_ui.replica import primary_reads


def audit_verify(*, source: str, checkpoint: bool = False, whole: bool = False):
    """Verify the chain, store the result; on success optionally append a new signed checkpoint (and
    record that it was written). Returns (Verification, Checkpoint|None).

    By default incremental: from the newest signed checkpoint on (checkpoints.verify_incremental says
    what that covers), the whole chain when there is no checkpoint yet. `whole`: every event from seq 1
    against every signed checkpoint. Signing after an incremental check keeps the anchors chained: each
    checkpoint is written only after the events since the previous one were verified.

    Raises CheckpointError when a checkpoint is asked for without AUDIT_SIGNING_KEY.
    """
    if checkpoint and not checkpoints.has_key():
        raise checkpoints.CheckpointError("AUDIT_SIGNING_KEY is not set: cannot sign a checkpoint")
    with primary_reads():  # the chain is checked on the primary, never on a lagging replica
        result = checkpoints.verify(whole=whole)
    cp = None
    if result.ok and checkpoint:
        cp = checkpoints.write_checkpoint()  # records its audit.checkpoint event in its own transaction
    AuditVerification.objects.create(
        ok=result.ok, count=result.count, head_seq=result.head_seq, head_hash=result.head_hash or "",
        broken_seq=result.broken_seq, reason=result.reason, checkpoints_checked=result.checkpoints_checked,
        checkpoint_file=cp.file if cp else "", source=source, scope=result.scope,
        from_seq=result.from_seq,
    )
    return result, cp


def audit_verify_requested(*, actor, source_ip: str | None = None, whole: bool = False):
    """An auditor's "Verify chain" from the pages: walk the chain now (since the newest signed
    checkpoint, or `whole`), store the result, and record who asked and what it found as an event
    (appended after the walk, so it is not part of what was checked). Auditors and staff only."""
    from governance.audit.search import sees_everything

    if not sees_everything(actor):
        raise PermissionDenied("Only auditors and staff may verify the audit trail.")
    result, _ = audit_verify(source="page", whole=whole)
    with transaction.atomic():
        audit.record(actor=actor, action="audit.verified", source_ip=source_ip,
                     after={"ok": result.ok, "count": result.count, "head_seq": result.head_seq,
                            "head_hash": result.head_hash or "", "broken_seq": result.broken_seq,
                            "reason": result.reason, "checkpoints_checked": result.checkpoints_checked,
                            "scope": result.scope, "from_seq": result.from_seq},
                     comment="chain intact" if result.ok else f"chain BROKEN at seq {result.broken_seq}")
    return result


def audit_export_record(*, actor, fmt: str, filters: dict, upto_seq: int, source_ip: str | None,
                        what: str = "audit events") -> None:
    """Every export is itself an audit event (written before the first byte is streamed)."""
    with transaction.atomic():
        audit.record(actor=actor, action="report.exported", model=filters.get("model") or "",
                     after={"format": fmt, "what": what, "filters": filters, "upto_seq": upto_seq},
                     comment=f"exported {what} as {fmt}", source_ip=source_ip)


def audit_scheduled_checkpoint() -> str:
    """The periodic job's work (governance.audit.tasks) and a `sync_registry --watch` hook: verify the
    chain and append a signed checkpoint when the last one is older than AUDIT_CHECKPOINT_INTERVAL
    seconds. Without AUDIT_SIGNING_KEY it does nothing (the README asks production to set one).
    Returns what it did, in a few words; a broken chain raises (the job is recorded as failed)."""
    if not checkpoints.has_key():
        return "no AUDIT_SIGNING_KEY: nothing signed"
    latest = checkpoints.latest_checkpoint_name()
    interval = getattr(settings, "AUDIT_CHECKPOINT_INTERVAL", 3600)
    if latest is not None and time.time() - checkpoints.checkpoint_written_at(latest) < interval:
        return f"latest checkpoint {latest} is recent"
    result, cp = audit_verify(source="sync", checkpoint=True)
    if not result.ok:
        raise checkpoints.CheckpointError(f"chain broken at seq {result.broken_seq}: {result.reason}")
    return f"checkpoint written: {cp.file}" if cp else "verified"
