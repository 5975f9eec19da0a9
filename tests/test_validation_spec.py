"""A policy's validation spec is checked when it is saved, through every door: a misspelt key or a
number written as text is refused with the problem named, and nothing is changed or recorded."""

import json

import pytest
from rest_framework.test import APIClient

from governance.audit.models import AuditEvent
from governance.validation.spec import spec_problems
from governance.workflow.models import ModelPolicy
from registry_ui.mirror.models import RegisteredModel
from tests.test_audit_policy_changes import post_policy

GOOD = {"dataset": "runs:/abc123/eval/holdout.csv", "target": "churned", "model_type": "classifier",
        "thresholds": {"roc_auc": {"min": 0.85}}, "relative": {"roc_auc": {"max_drop": 0.01}},
        "latency": {"batch_size": 32, "warmup": 5, "repeats": 50}, "max_latency_p95_ms": 100, "max_psi": 0.2,
        "max_ks": 0.3, "class_rate": {"min": 0.1, "max": 0.2}, "require_pinned": True,
        "require_signature": False, "targets": ["Production", "@champion"], "timeout_seconds": 120,
        "memory_mb": 4096}


def test_a_complete_spec_and_no_spec_are_good():
    assert spec_problems(GOOD) == []
    assert spec_problems({"dataset": "dataset:abc123/churn-holdout"}) == []
    assert spec_problems(None) == []


@pytest.mark.parametrize(("change", "problem"), [
    ({"max_pis": 0.2}, "unknown key 'max_pis'"),
    ({"dataset": None}, "dataset: required"),
    ({"dataset": "https://example.com/holdout.csv"}, "neither runs:/"),
    ({"dataset": "/etc/passwd"}, "neither runs:/"),
    ({"dataset": "runs:/abc123"}, "names no run and no path"),
    ({"thresholds": {"roc_auc": {"min": "0.85"}}}, "thresholds.roc_auc.min: a number"),
    ({"thresholds": {"roc_auc": {"minimum": 0.85}}}, "unknown rule 'minimum'"),
    ({"thresholds": {"roc_auc": {"min": 0.9, "max": 0.8}}}, "min is above max"),
    ({"relative": {"roc_auc": {"max_drop": 0.01, "min_gain": 0.01}}}, "not both"),
    ({"relative": {"roc_auc": {"max_drop": -0.01}}}, "not negative"),
    ({"max_latency_p95_ms": "100"}, "max_latency_p95_ms: a number"),
    ({"max_psi": True}, "max_psi: a number"),
    ({"latency": {"repeats": 0}}, "latency.repeats: a whole number, 1 or more"),
    ({"latency": {"batchsize": 8}}, "unknown key 'batchsize'"),
    ({"class_rate": {"min": 15, "max": 20}}, "between 0 and 1"),
    ({"class_rate": {"min": 0.3, "max": 0.2}}, "class_rate: min is above max"),
    ({"model_type": "ranker"}, "model_type: one of"),
    ({"require_pinned": "yes"}, "require_pinned: true or false"),
    ({"targets": "Production"}, "targets: a non-empty list"),
    ({"memory_mb": 0}, "memory_mb: a number above 0"),
])
def test_each_problem_is_named(change, problem):
    found = spec_problems({**GOOD, **change})
    assert len(found) == 1 and problem in found[0], found


def test_a_spec_that_is_not_an_object_is_refused():
    assert spec_problems(["runs:/abc/x.csv"]) and spec_problems("runs:/abc/x.csv")


@pytest.mark.django_db
def test_the_api_refuses_a_misspelt_spec_with_400_and_changes_nothing(admin_user):
    RegisteredModel.objects.create(name="fraud-detector")
    api = APIClient()
    api.force_authenticate(admin_user)
    bad = api.patch("/api/v1/policies/fraud-detector/", {"validation": {**GOOD, "max_pis": 0.2}}, format="json")
    assert bad.status_code == 400, bad.content
    body = bad.json()
    assert "max_pis" in " ".join(body["fields"]["validation"]) and body["detail"]
    assert not ModelPolicy.objects.exists() and not AuditEvent.objects.filter(action__startswith="policy.").exists()
    good = api.patch("/api/v1/policies/fraud-detector/", {"validation": GOOD}, format="json")
    assert good.status_code == 200, good.content
    assert ModelPolicy.objects.get().validation == GOOD


@pytest.mark.django_db
def test_the_admin_refuses_a_misspelt_spec_on_the_page(client, admin_user):
    model = RegisteredModel.objects.create(name="fraud-detector")
    client.force_login(admin_user)
    with pytest.raises(AssertionError) as refused:
        post_policy(client, model, validation={**GOOD, "thresholds": {"roc_auc": {"min": "high"}}})
    assert "thresholds.roc_auc.min: a number" in str(refused.value)
    assert not ModelPolicy.objects.exists() and not AuditEvent.objects.filter(action__startswith="policy.").exists()
    post_policy(client, model, validation=GOOD)
    assert json.dumps(ModelPolicy.objects.get().validation, sort_keys=True) == json.dumps(GOOD, sort_keys=True)
