"""python manage.py scheduler: enqueue the periodic jobs (SCHEDULED_JOBS) when they are due, until stopped.

Any number of schedulers may run (one per node for availability): each beats a heartbeat every tick,
and only the one holding the "scheduler" lease (see registry_ui.scheduler.leadership) enqueues, and
puts the tasks of dead workers back in the queue (registry_ui.scheduler.reaper). The
leader renews its lease every tick; a candidate takes it over once it ran out (SCHEDULER_LEASE_SECONDS
after the leader's last renewal), and a leader stopped by SIGTERM/SIGINT releases it at once.
"""

import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

from registry_ui.scheduler import leadership, loop, reaper
from registry_ui.scheduler.jobs import registered_jobs
from registry_ui.scheduler.models import NodeKind


class Command(BaseCommand):
    help = ("Enqueue each periodic job of SCHEDULED_JOBS (mirror sync, audit checkpoints, outbox resolution) "
            "when it is due; a task worker runs them. Runs until SIGINT/SIGTERM. Several schedulers may run: "
            "one leads (a lease row in the database), the others wait and take over when it stops renewing.")

    def add_arguments(self, parser):
        parser.add_argument("--tick", type=float, default=1.0, help="seconds between two looks at the jobs")
        parser.add_argument("--once", action="store_true", help="one pass over the jobs, then exit")
        parser.add_argument("--lease", type=float, default=None,
                            help="seconds the leader's lease lasts without renewal (SCHEDULER_LEASE_SECONDS)")

    def handle(self, *args, tick: float, once: bool, lease: float | None, **options):
        if tick <= 0:
            raise CommandError("--tick needs a positive number of seconds")
        lease = float(lease if lease is not None else settings.SCHEDULER_LEASE_SECONDS)
        if lease <= tick:
            raise CommandError(f"the lease ({lease} s) must be longer than the tick ({tick} s)")
        jobs = registered_jobs()
        if not jobs:
            raise CommandError("SCHEDULED_JOBS names no job")
        loop.ensure_rows(jobs)
        me = leadership.node_id(NodeKind.SCHEDULER)
        stop = threading.Event()
        if not once:
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
            self.stdout.write(f"Scheduler {me}: " + ", ".join(f"{j.name} every {j.interval()} s"
                                                              for j in jobs.values()))
        leading = None  # unknown until the first tick: the first state is always said
        try:
            while not stop.is_set():
                leadership.beat(node_id=me, kind=NodeKind.SCHEDULER)
                now_leading = leadership.hold(leadership.SCHEDULER_LEASE, holder=me, seconds=lease)
                if now_leading != leading and not once:
                    self.stdout.write(f"{me}: {'leading' if now_leading else 'waiting (another scheduler leads)'}")
                leading = now_leading
                if leading:
                    for name, task_id in loop.tick(jobs).items():
                        if options["verbosity"] >= 2 or once:
                            self.stdout.write(f"enqueued {name} ({task_id})")
                    self._requeue_lost()
                if once:
                    break
                close_old_connections()  # a long-lived process: drop connections the database closed meanwhile
                stop.wait(tick)
        finally:
            if leading:
                leadership.release(leadership.SCHEDULER_LEASE, holder=me)

    def _requeue_lost(self) -> None:
        """Tasks whose worker died go back to the queue (reaper.py); a failure (Redis down) is logged and
        the next tick tries again: it must not stop the scheduler."""
        try:
            for task_id in reaper.requeue_lost_tasks():
                self.stdout.write(f"requeued task {task_id}: its worker stopped beating")
        except Exception:  # noqa: BLE001
            logging.getLogger(__name__).exception("requeueing the tasks of dead workers failed")
