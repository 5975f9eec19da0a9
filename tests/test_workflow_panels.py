"""Governance content on the registry pages: who may act, open requests, entry points, and the
catalogue's open-request counts in one query."""

import pytest
from django.test import RequestFactory

from governance.workflow import services as workflow
from governance.workflow.panels import catalogue_annotations, workflow_panels
from registry_ui import extensions
from registry_ui.mirror.models import ModelVersion, RegisteredModel

pytestmark = [pytest.mark.django_db, pytest.mark.mlflow]


def rendered(kind, user, obj):
    request = RequestFactory().get("/")
    request.user = user
    return "".join(extensions.panels(kind, request, obj))


def test_model_panel_shows_who_may_act_open_requests_and_entry_points(promo, scientist, ops_user, auditor):
    req = workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=2,
                                            target_alias="champion", justification="x")
    html = rendered("model", scientist, promo.model)
    assert "Who may approve" in html and "group:ml_engineer" in html
    assert f"#{req.pk} v2" in html
    assert "Request promotion" in html
    assert "Request rollback" in rendered("model", ops_user, promo.model)
    auditor_html = rendered("model", auditor, promo.model)
    assert "Request promotion" not in auditor_html and "Request rollback" not in auditor_html


def test_version_panel_links_to_the_request_form(promo, scientist, engineer):
    version = ModelVersion.objects.get(model=promo.model, version=2)
    workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=2, target_alias="champion",
                                      justification="x")
    html = rendered("version", engineer, version)
    assert "you may: approve, reject" in html
    assert "Request promotion of v2" not in html
    assert f"model={promo.name}&amp;version=2" in rendered("version", scientist, version)


def test_panels_are_empty_for_users_who_cannot_see_the_model(promo, outsider):
    request = RequestFactory().get("/")
    request.user = outsider
    assert workflow_panels("model", request, promo.model) == []


def test_catalogue_annotations_in_one_query(promo, scientist, django_assert_num_queries):
    for alias in ("a", "b", "c"):
        workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=2, target_alias=alias,
                                          justification="x")
    other = RegisteredModel.objects.create(name="other-model")
    models = list(RegisteredModel.objects.filter(pk__in=[promo.model.pk, other.pk]))
    with django_assert_num_queries(1):
        result = catalogue_annotations(scientist, models)
    assert result == {promo.model.pk: {"open_requests": 3}, other.pk: {"open_requests": 0}}
