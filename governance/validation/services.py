"""The writers of validation runs: queue one (a request created, a re-run asked for, a deploy whose
evidence changed), execute one (the task), and write its headline back to MLflow.

Each change records an audit event in its own transaction. Executing claims the run with a
conditional UPDATE (queued -> running), so two workers never run one validation twice; the model runs
in a child process with a wall-clock and a memory limit (registry_ui.mirror.validation.run_job):
whatever the model does, the run ends passed or failed with a reason, and the worker survives.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tasks import task

from governance import audit
from governance.access import can, require_perm
from governance.errors import InvalidInput
from governance.notify.outbox import emit
from governance.validation.models import ValidationRun, ValidationStatus, spec_key
from governance.validation.selectors import summary, version_tags
from registry_ui.mirror import client as gateway
from registry_ui.mirror import validation as runner
from registry_ui.scheduler.heartbeat import current_task_id

SYSTEM = "system:validation"


def validation_run_request(*, model, version: int, spec: dict, incumbent: int | None, trigger: str,
                           actor=None, actor_name: str | None = None, request_id: int | None = None,
                           source_ip: str | None = None) -> ValidationRun:
    """Queue a validation (enqueued on commit). An actor needs the right to request or approve on the
    model; a system caller (a deploy, a request's creation) names itself with actor_name."""
    if actor is not None and not (can(actor, "request", model) or can(actor, "approve", model)):
        require_perm(actor, "request", model)
    if not spec.get("dataset"):
        raise InvalidInput("The policy names no evaluation dataset, so there is nothing to validate against.")
    with transaction.atomic():
        run = ValidationRun.objects.create(
            model=model, model_name=model.name, version=int(version), incumbent_version=incumbent, spec=spec,
            spec_digest=spec_key(spec, incumbent), trigger=trigger[:200], request_id=request_id,
            requested_by=actor.get_username() if actor is not None else (actor_name or SYSTEM))
        audit.record(actor=actor, actor_name=actor_name or SYSTEM, action="validation.requested", model=model,
                     version=int(version), request=request_id, before=None,
                     after={"run": run.pk, "status": run.status, "spec_digest": run.spec_digest,
                            "incumbent": incumbent, "dataset": spec.get("dataset")},
                     comment=trigger, source_ip=source_ip)
        transaction.on_commit(lambda: _enqueue(run.pk))
    return run


def _enqueue(run_id: int) -> None:
    run_validation.enqueue(run_id)


def _claim(run_id: int, claimant: str, now) -> bool:
    """queued -> running under `claimant`; or running under the same claimant: the same task re-run
    after its worker was killed (registry_ui.scheduler.reaper requeues it with its id)."""
    runs = ValidationRun.objects.filter(pk=run_id)
    if runs.filter(status=ValidationStatus.QUEUED).update(status=ValidationStatus.RUNNING, started_at=now,
                                                          claimed_by=claimant) == 1:
        return True
    return bool(claimant) and runs.filter(status=ValidationStatus.RUNNING, claimed_by=claimant).update(
        started_at=now) == 1


def validation_run_execute(*, run_id: int, claimant: str = "") -> ValidationRun:
    """Run a queued validation now (the task's body); returns the run as finished. `claimant` (the
    task's id) lets the same task, re-run after its worker died, take the run back."""
    now = timezone.now()
    if not _claim(run_id, claimant or uuid.uuid4().hex, now):
        return ValidationRun.objects.get(pk=run_id)  # already taken by another worker, or finished
    run = ValidationRun.objects.get(pk=run_id)
    if run.tags_written and run.result:
        # The killed attempt got as far as MLflow: finish from its result, and write only the tags
        # MLflow does not hold yet (none, if its write landed), so a retry never writes twice.
        result = run.result
        status = ValidationStatus.PASSED if result.get("status") == "passed" else ValidationStatus.FAILED
        run.status = status
        _write_missing_tags(run)
    else:
        job = {"tracking_uri": gateway.tracking_uri(),
               "candidate": {"name": run.model_name, "version": run.version},
               "incumbent": ({"name": run.model_name, "version": run.incumbent_version}
                             if run.incumbent_version and run.incumbent_version != run.version else None),
               "spec": run.spec}
        timeout = float(run.spec.get("timeout_seconds") or settings.VALIDATION_TIMEOUT_SECONDS)
        memory = int(run.spec.get("memory_mb") or settings.VALIDATION_MEMORY_MB)
        result = runner.run_job(job, timeout=timeout, memory_mb=memory)
        status = ValidationStatus.PASSED if result.get("status") == "passed" else ValidationStatus.FAILED
        # The tags go to MLflow before the run is marked finished: whoever sees it finished (an approver, a
        # deploy judging the required validation_status tag) finds them in MLflow already.
        run.status, run.result = status, result
        _write_tags(run)
    reason = result.get("reason") or ""
    with transaction.atomic():
        ValidationRun.objects.filter(pk=run.pk, status=ValidationStatus.RUNNING).update(
            status=status, reason=reason, result=result, finished_at=timezone.now())
        run.refresh_from_db()
        after = {k: v for k, v in summary(run, spec=run.spec, incumbent=run.incumbent_version).items() if k != "checks"}
        after |= {"failed_checks": [c["name"] for c in result.get("checks", []) if not c.get("passed")],
                  "tags_written": run.tags_written, "tags_error": run.tags_error}
        event = audit.record(actor_name=SYSTEM, action="validation.finished", model=run.model_name,
                             version=run.version, request=run.request_id,
                             before={"run": run.pk, "status": ValidationStatus.RUNNING}, after=after, comment=reason)
        # Pipelines learn the outcome from the same transaction (webhook subscribers and the event feed).
        emit(event)
    return run


def _write_tags(run: ValidationRun) -> None:
    """The headline on the version in MLflow, for people who look there. Best effort: MLflow down
    leaves the run without them (tags_error says why); the console's own evidence is the run."""
    tags = version_tags(run)
    # Recorded before the write: a sync that sees the tags in MLflow meanwhile knows whose they are;
    # with the result, so that a re-run after a crash finishes from it instead of validating again.
    ValidationRun.objects.filter(pk=run.pk).update(tags_written=tags, tags_error="", result=run.result)
    _send_tags(run, tags)


def _send_tags(run: ValidationRun, tags: dict) -> None:
    try:
        gateway.write_version_tags(run.model_name, run.version, tags)
    except gateway.MlflowUnavailable as exc:
        ValidationRun.objects.filter(pk=run.pk).update(tags_written={}, tags_error=str(exc)[:1000])


def _write_missing_tags(run: ValidationRun) -> None:
    try:
        current = gateway.read_version(run.model_name, run.version, budget=gateway.web_budget())
    except gateway.MlflowUnavailable as exc:
        ValidationRun.objects.filter(pk=run.pk).update(tags_written={}, tags_error=str(exc)[:1000])
        return
    have = current.tags if current is not None else {}
    missing = {k: v for k, v in run.tags_written.items() if have.get(k) != str(v)}
    if missing and current is not None:
        _send_tags(run, missing)


@task()
def run_validation(run_id: int) -> str:
    """The task a worker (`manage.py db_worker`) runs; the model itself runs in that worker's child."""
    return validation_run_execute(run_id=run_id, claimant=current_task_id() or "").status
