"""Reads of validation runs: the run that is evidence for a version under a spec, and its summary as
it is frozen into a request's evidence."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from governance.validation.models import ValidationRun, ValidationStatus, spec_key

# Headline figures: frozen into evidence summaries and written back to MLflow as version tags.
HEADLINES = (("roc_auc", ("metrics", "candidate", "roc_auc")),
             ("latency_p95_ms", ("latency", 0, "p95_ms")),
             ("psi", ("distribution", "psi")))
TAG_PREFIX = "validation."
STATUS_TAG = "validation_status"


def _dig(data, path):
    for step in path:
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def evidence_run(*, model_name: str, version: int, spec: dict, incumbent: int | None) -> ValidationRun | None:
    """The latest run of this version under this spec against this incumbent (None: never run)."""
    return (ValidationRun.objects.filter(model_name=model_name, version=version,
                                         spec_digest=spec_key(spec, incumbent)).order_by("-created_at", "-id").first())


def stale(run: ValidationRun) -> bool:
    """Queued or running far longer than a validation may take: its worker is gone."""
    if run.finished:
        return False
    since = run.started_at or run.created_at
    limit = float(run.spec.get("timeout_seconds") or settings.VALIDATION_TIMEOUT_SECONDS)
    return since is not None and (timezone.now() - since).total_seconds() > limit + settings.VALIDATION_STALE_GRACE


def headline(run: ValidationRun) -> dict:
    figures = {name: _dig(run.result, path) for name, path in HEADLINES}
    deps = next((c for c in run.result.get("checks", []) if c.get("name") == "deps_pinned"), None)
    if deps is not None:
        figures["deps_pinned"] = deps["passed"]
    return {k: v for k, v in figures.items() if v is not None}


def summary(run: ValidationRun | None, *, spec: dict, incumbent: int | None) -> dict:
    """What a decision records of the validation: enough to show and to compare, not the histograms."""
    if run is None:
        return {"status": "missing", "run": None, "spec_digest": spec_key(spec, incumbent), "incumbent": incumbent,
                "reason": "no validation has run for this version under the policy in force"}
    status, reason = run.status, run.reason
    if stale(run):
        status, reason = ValidationStatus.FAILED, (f"validation #{run.pk} was left {run.status} (its worker "
                                                   "stopped or never picked it up); run it again")
    return {"status": status, "run": run.pk, "spec_digest": run.spec_digest, "incumbent": run.incumbent_version,
            "reason": reason, "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "dataset_digest": (run.result.get("dataset") or {}).get("digest"),
            "checks": [{k: c.get(k) for k in ("name", "passed", "value", "limit", "detail")}
                       for c in run.result.get("checks", [])],
            "headline": headline(run)}


def version_tags(run: ValidationRun) -> dict[str, str]:
    """The tags a finished run writes on its version in MLflow."""
    tags = {STATUS_TAG: run.status, f"{TAG_PREFIX}run": str(run.pk)}
    for name, value in headline(run).items():
        tags[f"{TAG_PREFIX}{name}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return tags


def written_by_validation(*, model_name: str, version: int | None, key: str, value) -> ValidationRun | None:
    """The validation run that wrote this tag value on this version (the sync's explanation of a tag
    change it sees), or None."""
    if version is None or not (key == STATUS_TAG or key.startswith(TAG_PREFIX)):
        return None
    for run in ValidationRun.objects.filter(model_name=model_name, version=version).exclude(tags_written={})[:20]:
        if run.tags_written.get(key) == value:
            return run
    return None


def runs_of_version(*, model_name: str, version: int, limit: int = 5) -> list[ValidationRun]:
    return list(ValidationRun.objects.filter(model_name=model_name, version=version)[:limit])


def latest_finished(*, model_name: str, version: int) -> ValidationRun | None:
    return ValidationRun.objects.filter(model_name=model_name, version=version,
                                        status__in=[ValidationStatus.PASSED, ValidationStatus.FAILED]).first()


def run_for_request(*, request_id: int, evidence: dict) -> ValidationRun | None:
    """The run a request page shows: the latest queued for it, else the one its evidence names."""
    run = ValidationRun.objects.filter(request_id=request_id).first()
    frozen = (evidence.get("validation") or {}).get("run")
    if run is None and frozen:
        run = ValidationRun.objects.filter(pk=frozen).first()
    return run
