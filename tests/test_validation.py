"""Validation before promotion, with real scikit-learn and PythonModel models logged to the real
`mlflow server`, run in the real child process (and once through the real task worker).

The models are logged once per module (tests.validation_models); every test validates one version
against the @champion incumbent v1 under a small spec (few latency repeats) so the suite stays lean.
"""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from django.urls import reverse

from governance.audit.models import AuditEvent
from governance.errors import Conflict, PolicyViolation
from governance.validation import services as validation
from governance.validation.models import ValidationRun, ValidationStatus
from governance.workflow import services as workflow
from governance.workflow.models import ModelPolicy
from registry_ui.mirror.models import ModelFiles, ModelVersion
from tests.fixtures_tasks import wait_until
from tests.fixtures_workflow import mirror_model
from tests.validation_models import log_validation_models

pytestmark = [pytest.mark.mlflow]

ROLES = ("incumbent", "good", "worse", "shifted", "slow", "hanging", "greedy")


@pytest.fixture(scope="module")
def logged(mlflow_server):
    from tests.conftest import MlflowFactory

    factory = MlflowFactory(mlflow_server.url)
    found = log_validation_models(mlflow_server.url, factory.unique("churn-val"), ROLES)
    factory.alias(found.name, "champion", found.versions["incumbent"])
    return found


def spec_for(logged, **overrides) -> dict:
    spec = {"dataset": logged.dataset_uri, "target": "label",
            "thresholds": {"roc_auc": {"min": 0.55}}, "relative": {"roc_auc": {"max_drop": 0.01}},
            "latency": {"batch_size": 8, "warmup": 1, "repeats": 5}, "max_latency_p95_ms": 100,
            "max_psi": 0.2, "class_rate": {"min": 0.03, "max": 0.4}}
    spec.update(overrides)
    return {k: v for k, v in spec.items() if v is not None}


@pytest.fixture
def churn(logged, role_perms, use_mlflow_server):
    """The logged model in the mirror, with a policy asking for validation of @champion."""
    import mlflow

    model = mirror_model(mlflow.MlflowClient(use_mlflow_server.url), logged.name)
    ModelPolicy.objects.create(model=model, validation=spec_for(logged))
    return model


def execute(model, logged, role: str, *, incumbent: bool = True, **overrides) -> ValidationRun:
    """Queue and run one validation synchronously (in this test process's child)."""
    run = validation.validation_run_request(
        model=model, version=logged.versions[role], spec=spec_for(logged, **overrides),
        incumbent=logged.versions["incumbent"] if incumbent else None, trigger="test", actor_name="system:test")
    return validation.validation_run_execute(run_id=run.pk)


def check(run: ValidationRun, name: str) -> dict:
    return next(c for c in run.result["checks"] if c["name"] == name)


@pytest.mark.django_db
def test_worse_than_the_incumbent_fails_the_relative_threshold_and_blocks_approval(churn, logged, scientist,
                                                                                   engineer):
    req = workflow.promotion_request_create(actor=scientist, model_name=logged.name, version=logged.versions["worse"],
                                            target_alias="champion", justification="cheaper features")
    queued = ValidationRun.objects.get(request_id=req.pk)
    assert queued.status == ValidationStatus.QUEUED and queued.incumbent_version == logged.versions["incumbent"]
    with pytest.raises(PolicyViolation, match="still queued"):
        workflow.promotion_request_approve(request_id=req.pk, actor=engineer, override=True, comment="ship it")

    run = validation.validation_run_execute(run_id=queued.pk)
    assert run.status == ValidationStatus.FAILED
    relative = check(run, "vs_incumbent:roc_auc")
    assert not relative["passed"] and "roc_auc threshold" in relative["detail"]  # MLflow's MetricThreshold said so
    assert run.result["metrics"]["candidate"]["roc_auc"] < run.result["metrics"]["incumbent"]["roc_auc"] - 0.01
    assert run.result["dataset"]["digest"] and run.result["model"]["signature"]["inputs"]
    with pytest.raises(PolicyViolation, match=rf"validation #{run.pk} failed: failed checks: .*vs_incumbent:roc_auc"):
        workflow.promotion_request_approve(request_id=req.pk, actor=engineer, override=True, comment="ship it")
    req.refresh_from_db()
    assert any(g["gate"] == "validation:vs_incumbent:roc_auc" and not g["passed"] for g in req.gate_results)
    events = list(AuditEvent.objects.filter(action__startswith="validation.").values_list("action", flat=True))
    assert events == ["validation.requested", "validation.finished"]
    # "Re-run validation" on the request page: queued again, audited with the engineer as actor.
    client = Client()
    client.force_login(engineer)
    response = client.post(reverse("governance:request_validate", args=[req.pk]))
    assert response.status_code == 302
    rerun = ValidationRun.objects.filter(request_id=req.pk).first()
    assert rerun.pk != run.pk and rerun.status == ValidationStatus.QUEUED and rerun.requested_by == engineer.username
    assert AuditEvent.objects.filter(action="validation.requested", actor_username=engineer.username).count() == 1
    response = client.post(reverse("governance:request_validate", args=[req.pk]))  # one at a time
    assert response.status_code == 409 and "already queued" in response.content.decode()
    # The headline went back to MLflow as version tags.
    tags = churn_tags(logged, "worse")
    assert tags["validation_status"] == "failed" and tags["validation.run"] == str(run.pk)


def churn_tags(logged, role) -> dict:
    import mlflow

    from registry_ui.mirror.client import tracking_uri

    return dict(mlflow.MlflowClient(tracking_uri()).get_model_version(logged.name, str(logged.versions[role])).tags)


@pytest.mark.django_db
def test_shifted_predictions_fail_psi_and_unpinned_requirements_fail_deps_pinned(churn, logged):
    run = execute(churn, logged, "shifted")
    assert run.status == ValidationStatus.FAILED
    assert not check(run, "psi")["passed"] and check(run, "psi")["value"] > 0.2
    assert not check(run, "class_rate")["passed"]
    assert check(run, "vs_incumbent:roc_auc")["passed"]  # same ranking: only the distribution moved
    deps = check(run, "deps_pinned")
    assert not deps["passed"] and "scikit-learn" in deps["detail"] and "pandas>=2.0" in deps["detail"]
    assert [r for r in run.result["model"]["requirements"] if r["line"] == "scikit-learn"][0]["pinned"] is False
    hist = run.result["distribution"]["histogram"]
    assert len(hist["edges"]) == len(hist["candidate"]) + 1 and hist["incumbent"]


@pytest.mark.django_db
def test_slow_model_fails_latency(churn, logged):
    run = execute(churn, logged, "slow", incumbent=False, thresholds=None, relative=None, class_rate=None)
    assert run.status == ValidationStatus.FAILED
    latency = check(run, "latency_p95_ms")
    assert not latency["passed"] and latency["value"] > 100
    assert [row["batch_size"] for row in run.result["latency"]] == [1, 8]
    assert check(run, "deps_pinned")["passed"] and check(run, "signature")["passed"]


@pytest.mark.django_db
def test_hanging_model_is_killed_at_the_limit(churn, logged):
    run = execute(churn, logged, "hanging", incumbent=False, timeout_seconds=10)
    assert run.status == ValidationStatus.FAILED
    assert run.reason.startswith("killed after 10 s: the wall-clock limit")
    assert churn_tags(logged, "hanging")["validation_status"] == "failed"


@pytest.mark.django_db
def test_approve_is_refused_while_the_required_validation_runs_or_has_not_run(churn, logged, scientist, engineer):
    req = workflow.promotion_request_create(actor=scientist, model_name=logged.name, version=logged.versions["good"],
                                            target_alias="champion", justification="retrained")
    run = ValidationRun.objects.get(request_id=req.pk)
    ValidationRun.objects.filter(pk=run.pk).update(status=ValidationStatus.RUNNING, claimed_by="worker-1")
    with pytest.raises(PolicyViolation, match=rf"validation #{run.pk} is still running; wait for its result"):
        workflow.promotion_request_approve(request_id=req.pk, actor=engineer, override=True, comment="ship it")

    # The policy changed after the run was queued: that run no longer answers what the policy asks.
    ModelPolicy.objects.filter(model=churn).update(validation=spec_for(logged, max_psi=0.3))
    with pytest.raises(PolicyViolation, match="the validation the policy requires has not run for this version"):
        workflow.promotion_request_approve(request_id=req.pk, actor=engineer, override=True, comment="ship it")

    # Never run: requested while the policy asked for none, then the policy asks for one.
    workflow.promotion_request_reject(request_id=req.pk, actor=engineer, comment="not validated")
    ModelPolicy.objects.filter(model=churn).update(validation={})
    other = workflow.promotion_request_create(actor=scientist, model_name=logged.name,
                                              version=logged.versions["slow"], target_alias="champion",
                                              justification="faster to retrain")
    assert not ValidationRun.objects.filter(request_id=other.pk).exists()
    ModelPolicy.objects.filter(model=churn).update(validation=spec_for(logged))
    with pytest.raises(PolicyViolation, match="has not run for this version"):
        workflow.promotion_request_approve(request_id=other.pk, actor=engineer, override=True, comment="ship it")
    other.refresh_from_db()
    assert other.state == "pending" and not other.approvals.exists()
    assert not AuditEvent.objects.filter(action="request.approved").exists()


@pytest.mark.django_db
def test_a_model_that_eats_memory_fails_on_its_memory_limit(churn, logged):
    run = execute(churn, logged, "greedy", incumbent=False, memory_mb=3500)
    assert run.status == ValidationStatus.FAILED
    # The first call that runs out is the input example's: the limit is blamed, not the example.
    assert run.reason == "ran out of memory while predicting the input example (limit 3500 MB)", run.reason
    assert not [c for c in run.result["checks"] if c["name"] == "input_example"]
    assert run.result["peak_rss_mb"] < 2000  # address space only: the machine's memory was never at risk


@pytest.mark.django_db
def test_a_version_whose_artifacts_are_missing_fails_with_the_reason(churn, logged, mlflow_factory):
    import mlflow

    name = mlflow_factory.model(mlflow_factory.unique("no-artifacts"))
    version = mlflow_factory.version(name)  # runs:/<run>/model, and the run logged nothing there
    model = mirror_model(mlflow.MlflowClient(mlflow_factory.uri), name)
    run = validation.validation_run_request(model=model, version=version, spec=spec_for(logged), incumbent=None,
                                            trigger="test", actor_name="system:test")
    run = validation.validation_run_execute(run_id=run.pk)
    assert run.status == ValidationStatus.FAILED
    assert run.reason.startswith("failed while reading the candidate's artifacts: "), run.reason
    assert len(run.reason) < 600 and "\n" not in run.reason


@pytest.mark.django_db(transaction=True)
def test_good_candidate_passes_through_the_real_worker(logged, role_perms, use_mlflow_server, start_worker,
                                                       scientist, engineer, ops_user):
    import mlflow

    from registry_ui.mirror.sync import sync_model

    model = mirror_model(mlflow.MlflowClient(use_mlflow_server.url), logged.name)
    ModelPolicy.objects.create(model=model, validation=spec_for(logged))
    req = workflow.promotion_request_create(actor=scientist, model_name=logged.name, version=logged.versions["good"],
                                            target_alias="champion", justification="retrained")
    run = ValidationRun.objects.get(request_id=req.pk)  # enqueued when the request was committed
    worker = start_worker(MLFLOW_TRACKING_URI=use_mlflow_server.url)
    wait_until(lambda: ValidationRun.objects.filter(pk=run.pk, status__in=["passed", "failed"]).exists(),
               timeout=300, what=f"validation #{run.pk} to finish in the worker\n{worker.output()[-2000:]}")
    run.refresh_from_db()
    run.refresh_from_db()
    assert run.status == ValidationStatus.PASSED, run.reason
    assert all(c["passed"] for c in run.result["checks"])
    assert {c["name"] for c in run.result["checks"]} >= {"signature", "input_example", "deps_pinned", "metric:roc_auc",
                                                         "vs_incumbent:roc_auc", "latency_p95_ms", "psi", "class_rate"}
    assert run.tags_written["validation_status"] == "passed", run.tags_error

    approved = workflow.promotion_request_approve(request_id=req.pk, actor=engineer, comment="validated")
    assert approved.state == "approved"
    frozen = approved.approval_evidence["validation"]
    assert frozen["status"] == "passed" and frozen["run"] == run.pk and frozen["headline"]["roc_auc"] > 0.55
    assert {g["gate"] for g in approved.gate_results} >= {"validation", "validation:psi", "validation:deps_pinned"}

    # What the model needs to run: the first view of the version page queues the read of its files
    # and answers at once; the worker reads them and the next view shows them.
    client = Client()
    client.force_login(engineer)
    version_url = reverse("registry:version_detail", args=[logged.name, logged.versions["good"]])
    page = client.get(version_url).content.decode()
    assert 'id="needs-pending"' in page and 'id="requirements"' not in page
    wait_until(lambda: ModelFiles.objects.filter(version__model__name=logged.name, version__version=logged.versions[
        "good"], needs__isnull=False).exists(), timeout=60, what=f"the model files read\n{worker.output()[-2000:]}")
    page = client.get(version_url).content.decode()
    assert 'id="needs-pending"' not in page and 'id="requirements"' in page and "scikit-learn==" in page

    worker.stop()  # what follows needs no worker: a validation queued at deploy stays queued
    # The sync sees the tags the validation wrote: explained, never drift.
    sync_model(logged.name, uri=use_mlflow_server.url)
    tag_events = AuditEvent.objects.filter(action__in=["registry.tag_set", "registry.tag_changed"],
                                           version=logged.versions["good"])
    assert tag_events.exists()
    assert all((e.after or {}).get("explained_by") == f"validation run #{run.pk}" for e in tag_events)
    assert not AuditEvent.objects.filter(action="registry.drift").exists()

    # The pages show the evidence: checks, latency and histogram figures (drawn by static JS), what it needs.
    page = client.get(reverse("governance:request_detail", args=[req.pk])).content.decode()
    assert 'id="validation-checks"' in page and "vs_incumbent:roc_auc" in page
    figures = re.search(r'<script id="validation-figures" type="application/json">(.*?)</script>', page, re.S)
    assert set(json.loads(figures.group(1))) == {"latency", "candidate_hist", "incumbent_hist"}
    assert "<script>" not in page  # CSP: no inline script
    page = client.get(version_url).content.decode()
    assert 'id="validation-checks"' in page and 'id="requirements"' in page

    # At deploy the incumbent is another version: the validation no longer matches the evidence, the
    # request goes back for re-approval and a new validation is queued against the new incumbent.
    mlflow.MlflowClient(use_mlflow_server.url).set_registered_model_alias(logged.name, "champion",
                                                                          str(logged.versions["worse"]))
    with pytest.raises(Conflict):
        workflow.promotion_request_deploy(request_id=req.pk, actor=ops_user, comment="go")
    req.refresh_from_db()
    assert req.state == "pending" and any(c["what"] == "validation.spec_digest" for c in req.reapproval["changes"])
    again = ValidationRun.objects.filter(request_id=req.pk).first()
    assert again.status == ValidationStatus.QUEUED and again.incumbent_version == logged.versions["worse"]
    assert again.trigger.startswith(f"deploy of request #{req.pk}")
    mlflow.MlflowClient(use_mlflow_server.url).set_registered_model_alias(logged.name, "champion",
                                                                          str(logged.versions["incumbent"]))


@pytest.mark.django_db
def test_the_version_page_never_waits_on_mlflow_for_what_the_model_needs(settings, client,
                                                                          django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    from registry_ui.mirror import client as gw
    from registry_ui.mirror import files
    from registry_ui.mirror.files import read_model_files_task
    from tests.conftest import make_user
    from tests.fixtures_pages import MirrorFactory

    settings.MLFLOW_TRACKING_URI = "http://127.0.0.1:9"  # nothing listens there: any call would fail
    f = MirrorFactory()
    mv = f.version(f.model("churn"), 1)
    client.force_login(make_user("eve", "ml_engineer"))
    url = reverse("registry:version_detail", args=["churn", 1])

    def reads_queued() -> int:
        return DBTaskResult.objects.filter(task_path=read_model_files_task.module_path).count()

    # First view: answered from the mirror at once, the read queued once after the page's transaction.
    with django_capture_on_commit_callbacks(execute=True):
        page = client.get(url).content.decode()
    assert 'id="needs-pending"' in page and "Not read yet" in page
    assert reads_queued() == 1
    with django_capture_on_commit_callbacks(execute=True):
        client.get(url)
    assert reads_queued() == 1  # a second view while the read is queued queues nothing more

    # The worker's read fails: recorded with the reason, retried a minute later, then two.
    with pytest.raises(gw.MlflowUnavailable):
        read_model_files_task.call(mv.pk)
    row = ModelFiles.objects.get(version=mv)
    assert row.needs is None and row.attempts == 1 and "MLflow unreachable" in row.error
    assert timedelta(seconds=55) < row.retry_after - row.read_at <= timedelta(seconds=60)
    with django_capture_on_commit_callbacks(execute=True):
        page = client.get(url).content.decode()
    assert 'id="needs-pending"' not in page and "Could not be read (1 try;" in page and "MLflow unreachable" in page
    assert reads_queued() == 1

    # Its retry time come, the next view queues it again and says what the last try found.
    ModelFiles.objects.filter(pk=row.pk).update(retry_after=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        page = client.get(url).content.decode()
    assert 'id="needs-pending"' in page and "The last try failed: MLflow unreachable" in page
    assert reads_queued() == 2
    with pytest.raises(gw.MlflowUnavailable):
        read_model_files_task.call(mv.pk)
    row.refresh_from_db()
    assert row.attempts == 2 and timedelta(seconds=115) < row.retry_after - row.read_at <= timedelta(seconds=120)

    # Two nodes that both saw the due row: one claim, one read queued.
    ModelFiles.objects.filter(pk=row.pk).update(retry_after=timezone.now() - timedelta(seconds=1))
    stale = ModelFiles.objects.get(pk=row.pk)
    with django_capture_on_commit_callbacks(execute=True):
        files._claim(mv, stale, timezone.now())
        files._claim(mv, stale, timezone.now())
    assert reads_queued() == 3

    # Files once read are kept; should the sync see the version's source change, they are read again.
    ModelFiles.objects.filter(pk=row.pk).update(needs={"flavors": ["sklearn"], "requirements": []},
                                                source=mv.source, read_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        page = client.get(url).content.decode()
    assert 'id="needs-pending"' not in page and "sklearn" in page and reads_queued() == 3
    ModelVersion.objects.filter(pk=mv.pk).update(source="runs:/another-run/model")
    with django_capture_on_commit_callbacks(execute=True):
        page = client.get(url).content.decode()
    assert 'id="needs-pending"' in page and reads_queued() == 4
    row.refresh_from_db()
    assert row.needs is None and row.source == "runs:/another-run/model"

    # A version gone from the mirror by the time the worker runs: nothing to read, nothing raised.
    assert read_model_files_task.call(999_999)["outcome"] == "gone"


def test_requirements_are_pinned_only_with_double_equals(tmp_path):
    from registry_ui.mirror.validate_child import _requirements

    (tmp_path / "requirements.txt").write_text("# comment\nmlflow==3.1.0\nscikit-learn>=1.3\npandas\n-r other.txt\n"
                                               "numpy==2.0.1 ; python_version >= '3.10'\n")
    (tmp_path / "conda.yaml").write_text("dependencies:\n- python=3.11.7\n- pip<=24\n- pip:\n  - mlflow==3.1.0\n"
                                         "  - scipy~=1.11\n")
    found = {(r["file"], r["line"]): r["pinned"] for r in _requirements(str(tmp_path))}
    assert found == {("requirements.txt", "mlflow==3.1.0"): True, ("requirements.txt", "scikit-learn>=1.3"): False,
                     ("requirements.txt", "pandas"): False,
                     ("requirements.txt", "numpy==2.0.1 ; python_version >= '3.10'"): True,
                     ("conda.yaml", "mlflow==3.1.0"): True, ("conda.yaml", "scipy~=1.11"): False}


@pytest.mark.django_db
def test_the_same_task_rerun_after_its_worker_died_finishes_once_without_writing_mlflow_again(churn, logged,
                                                                                           monkeypatch):
    from governance.validation.selectors import version_tags
    from registry_ui.mirror import client as gateway
    from registry_ui.mirror import validation as runner

    run = validation.validation_run_request(
        model=churn, version=logged.versions["good"], spec=spec_for(logged), incumbent=logged.versions["incumbent"],
        trigger="test", actor_name="system:test")
    # Task "t1" ran the model, stored the result with the tags, wrote them to MLflow, then its worker was killed.
    run.status, run.result = ValidationStatus.PASSED, {"status": "passed", "reason": "", "checks": []}
    tags = version_tags(run)
    ValidationRun.objects.filter(pk=run.pk).update(status=ValidationStatus.RUNNING, claimed_by="t1",
                                                   result=run.result, tags_written=tags)
    gateway.write_version_tags(churn.name, logged.versions["good"], tags)
    monkeypatch.setattr(runner, "run_job", lambda *a, **k: pytest.fail("the model ran a second time"))
    writes = []
    monkeypatch.setattr(gateway, "write_version_tags", lambda *a, **k: writes.append(a))

    assert validation.validation_run_execute(run_id=run.pk, claimant="t2").status == ValidationStatus.RUNNING
    finished = validation.validation_run_execute(run_id=run.pk, claimant="t1")  # the reaper requeued t1

    assert finished.status == ValidationStatus.PASSED and writes == []
    validation.validation_run_execute(run_id=run.pk, claimant="t1")  # once more: nothing
    assert AuditEvent.objects.filter(action="validation.finished", after__run=run.pk).count() == 1
