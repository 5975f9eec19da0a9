from django.apps import AppConfig


class RegistryUiConfig(AppConfig):
    """The Django project itself plus the read-only mirror of the MLflow registry."""

    name = "registry_ui"
    verbose_name = "Registry mirror"

    def ready(self) -> None:
        from django.core.signals import setting_changed

        from registry_ui import extensions

        # Fail closed at start-up: a visibility rule or drift handler that does not import stops the
        # process here, with the setting's name, rather than showing every model or losing drift.
        extensions.load_all()
        # The same for the periodic jobs: a job that does not import stops the scheduler and the web.
        from registry_ui.scheduler.jobs import load_jobs

        load_jobs()
        # Worker heartbeats (registry_ui.scheduler.heartbeat): every task a worker starts records one.
        from django_tasks.signals import task_finished, task_started

        from registry_ui.scheduler.heartbeat import forget_current_task, record_worker_beat

        task_started.connect(record_worker_beat, dispatch_uid="registry_ui.worker_heartbeat")
        task_finished.connect(forget_current_task, dispatch_uid="registry_ui.worker_task_finished")
        setting_changed.connect(_reload_extensions, dispatch_uid="registry_ui.extensions")
        # Deployment checks of several nodes (manage.py check --deploy).
        from registry_ui import checks  # noqa: F401


def _reload_extensions(*, setting, **kwargs) -> None:
    from registry_ui import extensions

    if setting in extensions.SINGLE + extensions.LISTS:
        extensions._loaded.clear()
    if setting == "SCHEDULED_JOBS":
        from registry_ui.scheduler import jobs

        jobs._loaded.clear()
