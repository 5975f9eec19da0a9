"""Settle deploys whose MLflow outcome is unknown (a crash or an error mid-write) by reading MLflow."""

from django.core.management.base import BaseCommand, CommandError

from governance.workflow.services import resolve_outbox


class Command(BaseCommand):
    help = "Resolve pending deploy outbox entries by reading MLflow (deployed, or failed and retryable)."

    def add_arguments(self, parser):
        parser.add_argument("--request", type=int, default=None, help="only this request (must be 'failed')")
        parser.add_argument("--stale-seconds", type=int, default=None,
                            help="treat 'deploying' requests older than this as interrupted")

    def handle(self, *args, request=None, stale_seconds=None, **options):
        counts = resolve_outbox(request_id=request, stale_seconds=stale_seconds)
        self.stdout.write(f"succeeded={counts['succeeded']} failed={counts['failed']} "
                          f"unreachable={counts['unreachable']}")
        if counts["unreachable"]:
            raise CommandError(f"MLflow unreachable: {counts['unreachable']} deploy(s) left unresolved; run again.")
