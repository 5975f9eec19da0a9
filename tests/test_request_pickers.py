"""The request form's pickers: the target posted as one choice, the fragment htmx asks for (versions
with stage/aliases/metrics, targets, the gates preview), and a typo in the model name said in place."""

import pytest
from django.urls import reverse

from governance.workflow.models import PromotionRequest

pytestmark = [pytest.mark.django_db, pytest.mark.mlflow]


def test_a_target_choice_is_a_stage_or_an_alias(client, shared_promo, scientist):
    client.force_login(scientist)
    data = {"model": shared_promo.name, "version": 3, "target_choice": "stage:Staging", "justification": "try"}
    assert client.post(reverse("governance:request_create"), data).status_code == 302
    assert PromotionRequest.objects.get(model_name=shared_promo.name, version=3).target_stage == "Staging"
    data = {**data, "version": 2, "target_choice": "alias:champion"}
    assert client.post(reverse("governance:request_create"), data).status_code == 302
    assert PromotionRequest.objects.get(model_name=shared_promo.name, version=2).target_alias == "champion"
    response = client.post(reverse("governance:request_create"), {**data, "target_choice": "stage:Prod"})
    assert response.status_code == 400 and "Choose a stage or an alias from the list." in response.content.decode()


def test_the_fragment_lists_versions_targets_and_previews_the_gates(client, shared_promo, scientist):
    client.force_login(scientist)
    url = reverse("governance:request_create")
    body = client.get(url, {"model": shared_promo.name, "version": 3, "target_choice": "alias:champion"},
                      HTTP_HX_REQUEST="true").content.decode()
    assert body.startswith('<div id="pickers"')  # the fragment only
    assert "v1 · Production · @champion · accuracy 0.8" in body
    assert 'value="alias:champion" selected>@champion (now v1)' in body and 'value="new"' in body
    preview = body.split('id="gate-preview"')[1]
    assert "fails</span> tag:validation_status" in preview and "against v1" in preview
    typo = client.get(url, {"model": shared_promo.name + "x"}, HTTP_HX_REQUEST="true")
    assert typo.status_code == 200 and "No registered model named" in typo.content.decode()


def test_review_page_offers_what_the_viewer_may_do_and_greys_out_a_gate_blocked_approve(client, shared_promo,
                                                                                         scientist, engineer):
    from governance.workflow import services as workflow

    req = workflow.promotion_request_create(actor=scientist, model_name=shared_promo.name, version=3,
                                            target_alias="champion", justification="v3 anyway")
    url = reverse("governance:request_detail", args=[req.pk])
    client.force_login(engineer)
    page = client.get(url).content.decode()
    assert '<button type="button" disabled aria-describedby="why-approve">Approve</button>' in page
    reason = page.split('id="why-approve">')[1].split("</span>")[0]
    assert "Policy gates fail, so @champion cannot be approved" in reason and "validation_status" in reason
    assert 'data-dialog="dialog-reject"' in page and 'id="dialog-approve"' not in page
    assert "Cancel" not in page.split('id="actions"')[1].split("</section>")[0]  # not the requester
    client.force_login(scientist)
    page = client.get(url).content.decode()
    actions = page.split('id="actions"')[1].split("</section>")[0]
    assert 'data-dialog="dialog-cancel"' in actions and "Approve" not in actions and "Reject" not in actions
