"""python manage.py scheduler: enqueue the periodic jobs (SCHEDULED_JOBS) when they are due, until stopped."""

import signal
import threading

from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

from registry_ui.scheduler import loop
from registry_ui.scheduler.jobs import registered_jobs


class Command(BaseCommand):
    help = ("Enqueue each periodic job of SCHEDULED_JOBS (mirror sync, audit checkpoints, outbox resolution) "
            "when it is due; a task worker runs them. Runs until SIGINT/SIGTERM. Job state lives in the "
            "database (ScheduledJob rows), so a restart or a second scheduler never enqueues a run twice.")

    def add_arguments(self, parser):
        parser.add_argument("--tick", type=float, default=1.0, help="seconds between two looks at the jobs")
        parser.add_argument("--once", action="store_true", help="one pass over the jobs, then exit")

    def handle(self, *args, tick: float, once: bool, **options):
        if tick <= 0:
            raise CommandError("--tick needs a positive number of seconds")
        jobs = registered_jobs()
        if not jobs:
            raise CommandError("SCHEDULED_JOBS names no job")
        loop.ensure_rows(jobs)
        stop = threading.Event()
        if not once:
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
            self.stdout.write("Scheduler: " + ", ".join(f"{j.name} every {j.interval()} s" for j in jobs.values()))
        while not stop.is_set():
            for name, task_id in loop.tick(jobs).items():
                if options["verbosity"] >= 2 or once:
                    self.stdout.write(f"enqueued {name} ({task_id})")
            if once:
                break
            close_old_connections()  # a long-lived process: drop connections the database closed meanwhile
            stop.wait(tick)
