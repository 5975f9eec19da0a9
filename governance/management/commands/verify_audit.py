"""Verify the audit chain (since the newest signed checkpoint, or --whole); optionally write a new one.

Exit 0 with a count when intact; exit 1 with one line naming the first broken seq and why.
"""

import sys

from django.core.management.base import BaseCommand

from governance.audit import services as audit_service
from governance.audit.checkpoints import CheckpointError


class Command(BaseCommand):
    help = ("Verify the audit trail's hash chain: by default the events after the newest signed checkpoint "
            "(whose signature and pinned hashes are checked); --whole re-hashes every event against every "
            "checkpoint. --checkpoint signs the head afterwards.")

    def add_arguments(self, parser):
        parser.add_argument("--checkpoint", action="store_true",
                            help="after a successful verification, append a signed checkpoint file")
        parser.add_argument("--whole", action="store_true",
                            help="re-hash every event from seq 1 (catches a row edited in place before the "
                                 "newest checkpoint, which the default incremental check does not re-hash)")

    def handle(self, *args, checkpoint=False, whole=False, **options):
        try:
            result, cp = audit_service.audit_verify(source="command", checkpoint=checkpoint, whole=whole)
        except CheckpointError as exc:
            self.stderr.write(f"verify_audit: {exc}")
            sys.exit(1)
        if not result.ok:
            self.stderr.write(result.summary())
            sys.exit(1)
        for note in result.notes:
            self.stdout.write(f"note: {note}")
        self.stdout.write(result.summary())
        if cp is not None:
            self.stdout.write(f"signed checkpoint written: {cp.file} (seq {cp.seq}, head {cp.head_hash})")
