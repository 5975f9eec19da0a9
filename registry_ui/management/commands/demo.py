"""python manage.py demo: migrate, build a demo MLflow registry, create demo users, then run the web server,
a task worker and the scheduler together (all stop on Ctrl-C or SIGTERM)."""

import json
import os
import secrets
import sys

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError

from registry_ui import demo
from registry_ui.mirror.client import MlflowUnavailable
from registry_ui.processes import Supervisor

# username -> role group (None: a staff superuser who administers users and grants)
DEMO_USERS = {
    "scientist": "data_scientist",
    "engineer": "ml_engineer",
    "operator": "ops",
    "auditor": "auditor",
    "admin": None,
}


class Command(BaseCommand):
    help = "Set up the embedded demo (idempotent) and serve it on 127.0.0.1:8000."

    def add_arguments(self, parser):
        parser.add_argument("--no-serve", action="store_true", help="Set everything up, then exit.")
        parser.add_argument("--serve-only", action="store_true",
                            help="Skip the set-up (done by an earlier run): start web, worker and scheduler.")
        parser.add_argument("--addrport", default="127.0.0.1:8000")

    def handle(self, *args, **options):
        if options["serve_only"]:
            return self._serve(options["addrport"])
        # The demo prints its own progress; MLflow's INFO lines ("Creating initial MLflow database
        # tables...") are noise to a newcomer. Its warnings and errors still show. Read when mlflow is
        # first imported, which has not happened yet in this process.
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
        self.stdout.write("Migrating the database...")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        self.stdout.write(f"Building the demo MLflow registry at {settings.MLFLOW_TRACKING_URI} ...")
        try:
            created = demo.seed_demo_registry(log=self.stdout.write)
        except MlflowUnavailable as exc:
            raise CommandError(f"MLflow is not usable: {exc}") from exc
        self.stdout.write(f"  {created} new model versions trained and registered.")
        if "sync_registry" in get_commands():
            self.stdout.write("Syncing the registry mirror...")
            call_command("sync_registry", verbosity=0)
        credentials = self._users()
        if "seed_demo_requests" in get_commands():
            self.stdout.write("Promotion requests and model risk (through the workflow services):")
            call_command("seed_demo_requests")
        self.stdout.write(self.style.SUCCESS("Demo users (username / password / role):"))
        for username, (password, role) in credentials.items():
            self.stdout.write(f"  {username:<10} {password:<24} {role or 'admin (staff, superuser)'}")
        if options["no_serve"]:
            return
        self._serve(options["addrport"])

    def _serve(self, addrport: str) -> None:
        """The web server, a task worker and the scheduler, as one process tree."""
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        if settings.TASKS_BACKEND == "rq":
            worker = [*manage, "rqworker", "--job-class", "django_tasks_rq.Job", "default"]
        else:
            worker = [*manage, "db_worker", "--no-reload", "--interval", "0.5"]
        env = dict(os.environ)
        # The demo's mirror follows MLflow every 30 s unless told otherwise (production default: 300 s).
        env.setdefault("REGISTRY_SYNC_INTERVAL", "30")
        env.setdefault("PYTHONUNBUFFERED", "1")
        every = env["REGISTRY_SYNC_INTERVAL"]
        self.stdout.write(self.style.SUCCESS(f"Serving on http://{addrport}/ with a task worker and the scheduler "
                                             f"(mirror sync every {every} s); Ctrl-C stops all."))
        self.stdout.flush()
        code = Supervisor({
            "web": [*manage, "runserver", addrport, "--noreload"],
            "worker": worker,
            "scheduler": [*manage, "scheduler"],
        }, env=env, log=lambda line: (self.stdout.write(line), self.stdout.flush())).run()
        if code:
            raise CommandError(f"a demo process stopped unexpectedly (status {code})")

    def _users(self) -> dict[str, tuple[str, str | None]]:
        """Create the demo users once; their random passwords are kept in var/ (never in the repo)."""
        path = settings.VAR_DIR / "demo_credentials.json"
        stored = json.loads(path.read_text()) if path.exists() else {}
        user_model = get_user_model()
        result = {}
        for username, role in DEMO_USERS.items():
            user = user_model.objects.filter(username=username).first()
            password = stored.get(username)
            if user is None or password is None:
                password = secrets.token_urlsafe(12)
                if user is None:
                    user = user_model(username=username, email=f"{username}@example.com")
                user.set_password(password)
                user.is_staff = user.is_superuser = role is None
                user.save()
                stored[username] = password
            if role:
                user.groups.add(Group.objects.get(name=role))
            result[username] = (password, role)
        path.write_text(json.dumps(stored, indent=2))
        path.chmod(0o600)
        return result
