"""python manage.py register_mlflow_webhook URL: point MLflow's registry webhooks at this console."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from registry_ui.mirror import client as gw


class Command(BaseCommand):
    help = ("Register (or update) a webhook in MLflow delivering every registry event MLflow 3 offers to URL "
            "(e.g. https://governance.example.com/hooks/mlflow/), signed with MLFLOW_WEBHOOK_SECRET.")

    def add_arguments(self, parser):
        parser.add_argument("url")
        parser.add_argument("--name", default="model-governance-console",
                            help="webhook name in MLflow; an existing webhook of this name is updated")
        parser.add_argument("--uri", default=None, help="MLflow tracking URI (default: MLFLOW_TRACKING_URI)")

    def handle(self, *args, **options):
        secret = settings.MLFLOW_WEBHOOK_SECRET
        if not secret:
            raise CommandError("MLFLOW_WEBHOOK_SECRET is not set: MLflow must sign what it delivers")
        url = options["url"]
        if not url.startswith(("http://", "https://")):
            raise CommandError(f"not an http(s) URL: {url}")
        try:
            info = gw.register_webhook(name=options["name"], url=url, secret=secret,
                                       description="Model Governance Console: targeted sync on registry events",
                                       uri=options["uri"])
        except gw.MlflowUnavailable as exc:
            raise CommandError(f"MLflow refused or is unreachable: {' '.join(str(exc).split())}") from None
        verb = "Registered" if info.created else "Updated"
        self.stdout.write(self.style.SUCCESS(
            f"{verb} webhook {info.webhook_id} ({info.name}) -> {info.url} for {', '.join(info.events)}"))
