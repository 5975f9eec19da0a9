"""Settle deploys whose MLflow outcome is unknown (a crash or an error mid-write) by reading MLflow."""

from django.core.management.base import BaseCommand, CommandError

from governance.workflow.services import resolve_outbox


class Command(BaseCommand):
    help = ("Resolve pending deploy outbox entries by reading MLflow (deployed, or failed and retryable); "
            "each decision is an audit event. Exits non-zero, in one line, when MLflow cannot be read.")

    def add_arguments(self, parser):
        parser.add_argument("--request", type=int, default=None, help="only this request")
        parser.add_argument("--stale-seconds", type=int, default=None,
                            help="treat 'deploying' requests started longer ago than this as interrupted "
                                 "(default: when their deployer's lease expired)")

    def handle(self, *args, request=None, stale_seconds=None, **options):
        errors: list[str] = []
        counts = resolve_outbox(request_id=request, stale_seconds=stale_seconds, errors=errors)
        self.stdout.write(f"succeeded={counts['succeeded']} failed={counts['failed']} "
                          f"unreachable={counts['unreachable']}")
        if counts["unreachable"]:
            raise CommandError(f"resolve_outbox: {counts['unreachable']} deploy(s) left unresolved, "
                               f"{errors[-1] if errors else 'MLflow unreachable'}; run again once MLflow answers.")
