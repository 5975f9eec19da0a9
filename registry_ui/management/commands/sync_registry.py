"""python manage.py sync_registry [--watch SECONDS]: reconcile MLflow into the mirror."""

import logging
import time

from django.core.management.base import BaseCommand, CommandError

from registry_ui import extensions
from registry_ui.mirror.sync import SyncBusy, SyncError, sync_registry


class Command(BaseCommand):
    help = ("One full reconciliation of the MLflow registry into the mirror (then drift classification "
            "through REGISTRY_SYNC_REPORT_HANDLERS). --watch SECONDS repeats it; never two syncs at once.")

    def add_arguments(self, parser):
        parser.add_argument("--watch", type=float, metavar="SECONDS", default=None,
                            help="repeat every SECONDS until interrupted")
        parser.add_argument("--passes", type=int, default=None,
                            help="with --watch: stop after this many passes (default: run until interrupted)")
        parser.add_argument("--uri", default=None, help="MLflow tracking URI (default: MLFLOW_TRACKING_URI)")
        parser.add_argument("--all-runs", action="store_true",
                            help="re-read every run now (otherwise every REGISTRY_ALL_RUNS_EVERY seconds; the "
                                 "runs behind a stage, an alias or an open request are re-read every time)")

    def handle(self, *args, **options):
        watch = options["watch"]
        if watch is not None and watch <= 0:
            raise CommandError("--watch needs a positive number of seconds")
        verbosity = options["verbosity"]
        passes = 0
        while True:
            try:
                report = sync_registry(uri=options["uri"], progress=self._progress if verbosity >= 1 else None,
                                       all_runs=True if options["all_runs"] else None)
            except SyncError as exc:
                message = " ".join(str(exc).split())
                if watch is None:
                    raise CommandError(f"sync failed: {message}") from None
                self.stderr.write(f"sync {'skipped' if isinstance(exc, SyncBusy) else 'failed'}: {message}")
            else:
                if verbosity >= 1:
                    if self.stdout.isatty():
                        self.stdout.write("")
                    self.stdout.write(self.style.SUCCESS(f"Synced: {report.summary()}"))
            if watch is None:
                return
            self._run_watch_hooks()
            passes += 1
            if options["passes"] is not None and passes >= options["passes"]:
                return
            time.sleep(watch)

    def _run_watch_hooks(self) -> None:
        """Scheduled work riding on the watcher (e.g. signed audit checkpoints); a failing hook is
        reported and never stops the watcher."""
        for hook in extensions.watch_hooks():
            name = f"{hook.__module__}.{hook.__qualname__}"
            try:
                hook()
            except Exception as exc:  # noqa: BLE001 - a hook must not kill the watcher
                logging.getLogger(__name__).exception("watch hook %s failed", name)
                self.stderr.write(f"watch hook {name} failed: {' '.join(str(exc).split())}")

    def _progress(self, done: int, total: int | None) -> None:
        """total: MLflow's count, known once it has sent its last page (None before: MLflow has no
        count call, and the mirror's count is what the sync is correcting)."""
        width = 30
        if total is None:
            bar = f"[{'~' * width}] {done} models so far, MLflow has more"
        else:
            filled = int(width * done / total) if total else width
            bar = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} models"
        if self.stdout.isatty():
            self.stdout.write(f"\r{bar}", ending="")
            self.stdout.flush()
        else:
            self.stdout.write(bar)
