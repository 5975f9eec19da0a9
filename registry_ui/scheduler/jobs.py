"""What a periodic job is, and the registry of them (settings.SCHEDULED_JOBS).

A job is a PeriodicJob object named by dotted path in settings.SCHEDULED_JOBS, so governance adds its
own jobs (checkpoints, outbox resolution) without registry_ui importing governance. Every path is
imported and checked when the app starts (registry_ui.apps): a path that does not import, or that names
something other than a PeriodicJob, stops start-up with ImproperlyConfigured naming the setting.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class PeriodicJob:
    """`task` (a django-tasks Task) is run by the worker every `interval_setting` seconds (a setting's
    name, read when the scheduler starts, so operators configure it from the environment; `default`
    when the setting is absent). The task returns a dict; its "outcome" key, when present ("synced",
    "busy", "nothing to do", ...), is what the Operations page shows."""

    name: str
    task: object
    interval_setting: str
    default: int
    description: str = ""

    def interval(self) -> int:
        value = int(getattr(settings, self.interval_setting, self.default))
        if value <= 0:
            raise ImproperlyConfigured(f"{self.interval_setting} must be a positive number of seconds, not {value}.")
        return value


_loaded: dict[str, PeriodicJob] = {}


def load_jobs() -> dict[str, PeriodicJob]:
    """Import every path of settings.SCHEDULED_JOBS; raise ImproperlyConfigured on the first bad one."""
    paths = getattr(settings, "SCHEDULED_JOBS", [])
    if isinstance(paths, str):
        raise ImproperlyConfigured("SCHEDULED_JOBS must be a list of dotted paths, not a string.")
    jobs: dict[str, PeriodicJob] = {}
    for path in paths:
        try:
            job = import_string(path)
        except ImportError as exc:
            raise ImproperlyConfigured(f"SCHEDULED_JOBS: {path!r} does not import ({exc}).") from exc
        if not isinstance(job, PeriodicJob):
            raise ImproperlyConfigured(f"SCHEDULED_JOBS: {path!r} is not a PeriodicJob.")
        if job.name in jobs:
            raise ImproperlyConfigured(f"SCHEDULED_JOBS: two jobs are named {job.name!r}.")
        job.interval()  # a bad interval stops start-up too
        jobs[job.name] = job
    _loaded.clear()
    _loaded.update(jobs)
    return jobs


def registered_jobs() -> dict[str, PeriodicJob]:
    if not _loaded:
        load_jobs()
    return dict(_loaded)
