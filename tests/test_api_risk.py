"""/api/v1/risk/: tiers and findings through the same services as the pages: the governed tier change,
the four-eyes closure of a finding, the error shape, roles and token scopes, one audit event per write."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from governance.audit.models import AuditEvent
from governance.risk.models import Finding, ModelRiskTier
from governance.tokens.services import api_token_create
from registry_ui.mirror.models import ModelVersion, RegisteredModel
from tests.conftest import make_user

pytestmark = pytest.mark.django_db
ERROR_KEYS = {"detail", "code", "fields"}


@pytest.fixture
def model(db):
    model = RegisteredModel.objects.create(name="credit-score")
    ModelVersion.objects.create(model=model, version=1, stage="Production")
    return model


def call(user, method, name, *args, data=None, scope=None):
    client = APIClient()
    if scope:
        _token, secret = api_token_create(actor=user, name=f"t-{scope}", scope=scope)
        client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    else:
        client.force_authenticate(user)
    url = reverse(f"risk_api:{name}", args=args)
    return client.get(url, data or {}) if method == "get" else client.post(url, data or {}, format="json")


def _events() -> int:
    """Events other than issuing the test's tokens."""
    return AuditEvent.objects.exclude(action__startswith="token.").count()


def test_tier_change_through_the_api_needs_a_second_person(model, scientist, engineer):
    asked = call(scientist, "post", "tier_change_request", data={"model": model.name, "tier": "tier1",
                                                                 "reason": "decides credit limits"}, scope="request")
    assert asked.status_code == 201, asked.json()
    change = asked.json()
    assert (change["state"], change["to_tier"], change["requester"]) == ("pending", "tier1", "scientist")
    # The same service as the page: one pending change per model, a reason, a known tier.
    again = call(scientist, "post", "tier_change_request", data={"model": model.name, "tier": "tier2", "reason": "x"})
    assert again.status_code == 409 and set(again.json()) == ERROR_KEYS
    bad = call(engineer, "post", "tier_change_request", data={"model": model.name, "tier": "tier9", "reason": "x"})
    assert bad.status_code == 400 and "tier9" in bad.json()["detail"]
    # A token of scope request may not decide; the requester may not approve their own change.
    narrow = call(engineer, "post", "tier_change_approve", change["id"], scope="request")
    assert narrow.status_code == 403 and "scope 'full'" in narrow.json()["detail"]
    own = call(scientist, "post", "tier_change_approve", change["id"])
    assert own.status_code == 403
    before = _events()
    approved = call(engineer, "post", "tier_change_approve", change["id"], data={"comment": "agreed"}, scope="full")
    assert approved.status_code == 200 and approved.json()["state"] == "approved"
    assert _events() == before + 1 and AuditEvent.objects.order_by("seq").last().action == "tier.changed"
    assert ModelRiskTier.objects.get(model=model).tier == "tier1"
    detail = call(scientist, "get", "tier_detail", model.name, scope="read").json()
    assert (detail["tier"], detail["label"], detail["policy"]["quorum"], detail["pending"]) == ("tier1", "Tier 1",
                                                                                               2, None)
    assert [h["state"] for h in detail["history"]] == ["approved"]
    listing = call(scientist, "get", "tier_list", data={"tier": "tier1"}).json()
    assert [t["key"] for t in listing["tiers"]] == ["tier1", "tier2", "tier3"]
    assert [(r["model"], r["tier"]) for r in listing["results"]] == [(model.name, "tier1")]
    assert call(scientist, "get", "tier_list", data={"tier": "none"}).json()["count"] == 0
    assert call(scientist, "get", "tier_list", data={"tier": "tier9"}).status_code == 400


def test_finding_raised_closed_by_owner_and_accepted_by_another(model, scientist, engineer):
    engineer2 = make_user("engineer2", "ml_engineer")
    due = (timezone.localdate() + timedelta(days=14)).isoformat()
    body = {"model": model.name, "version": 1, "severity": "blocking", "description": "drift unexplained",
            "owner": "engineer2", "due_date": due}
    assert call(scientist, "post", "finding_list", data=body).status_code == 403  # not an approver
    assert call(engineer, "post", "finding_list", data=body, scope="deploy").status_code == 403  # scope
    invalid = call(engineer, "post", "finding_list", data={**body, "severity": "huge", "due_date": "soon"})
    assert invalid.status_code == 400 and set(invalid.json()["fields"]) == {"severity", "due_date"}
    before = _events()
    raised = call(engineer, "post", "finding_list", data=body, scope="full")
    assert raised.status_code == 201 and _events() == before + 1
    pk = raised.json()["id"]
    # The owner proposes closure with a request-scope token; the owner may not accept it.
    proposed = call(engineer2, "post", "finding_propose", pk, data={"note": "re-validated: run 4312"},
                    scope="request")
    assert proposed.status_code == 200 and proposed.json()["state"] == "closure_proposed"
    own = call(engineer2, "post", "finding_accept", pk)
    # Separation of duties is a policy refusal (400, as on the page), not a missing role.
    assert own.status_code == 400 and "owner" in own.json()["detail"] and set(own.json()) == ERROR_KEYS
    assert Finding.objects.get(pk=pk).state == "closure_proposed"
    accepted = call(engineer, "post", "finding_accept", pk, data={"comment": "evidence checked"}, scope="full")
    assert accepted.status_code == 200 and accepted.json()["state"] == "closed"
    assert call(engineer, "post", "finding_decline", pk, data={"comment": "x"}).status_code == 409
    detail = call(scientist, "get", "finding_detail", pk).json()
    assert [h["action"] for h in detail["history"]] == ["finding.raised", "finding.closure_proposed",
                                                        "finding.closed"]
    listing = call(scientist, "get", "finding_list", data={"model": model.name, "open": "false"}).json()
    assert [f["id"] for f in listing["results"]] == [pk]
    assert call(scientist, "get", "finding_list", data={"open": "true"}).json()["count"] == 0
    assert call(scientist, "get", "finding_list", data={"severity": "nope"}).status_code == 400


def test_findings_and_tiers_of_models_out_of_scope_are_404(model, engineer, outsider):
    finding = call(engineer, "post", "finding_list", data={
        "model": model.name, "severity": "minor", "description": "d", "owner": "engineer",
        "due_date": timezone.localdate().isoformat()}).json()
    for name, args in (("finding_detail", [finding["id"]]), ("tier_detail", [model.name])):
        response = call(outsider, "get", name, *args)
        assert response.status_code == 404 and set(response.json()) == ERROR_KEYS
    assert call(outsider, "get", "finding_list").json()["count"] == 0
    refused = call(outsider, "post", "finding_propose", finding["id"], data={"note": "n"})
    assert refused.status_code == 404
    anonymous = APIClient().get(reverse("risk_api:finding_list"))
    assert anonymous.status_code == 401 and set(anonymous.json()) == ERROR_KEYS


def test_who_may_not_act_learns_that_before_what_is_missing(model, scientist, outsider):
    """As on the pages: the permission check comes before the required values."""
    assert call(scientist, "post", "finding_list", data={"model": model.name}).status_code == 403
    assert call(outsider, "post", "tier_change_request", data={"model": model.name}).status_code == 404
    missing = call(scientist, "post", "tier_change_request", data={"model": model.name})
    assert missing.status_code == 400 and "tier" in missing.json()["detail"]
