"""python manage.py seed_demo_requests: promotion requests in every state, risk tiers and findings for the demo
(run by `demo`)."""

from django.core.management.base import BaseCommand, CommandError

from governance.workflow.demo import seed_demo_requests
from registry_ui.mirror.client import MlflowUnavailable


class Command(BaseCommand):
    help = "Create demo promotion requests through the workflow services (once; needs the demo users)."

    def handle(self, *args, **options):
        try:
            seed_demo_requests(log=self.stdout.write)
        except KeyError as exc:
            raise CommandError(f"demo user {exc} is missing: run `manage.py demo` first") from None
        except MlflowUnavailable as exc:
            raise CommandError(f"MLflow is not usable: {' '.join(str(exc).split())}") from None
