"""A change seen in MLflow is explained only by the deploy that caused it (its mark, its target, the
before/after it expected, once); anything else is drift, including a move back to what a deploy set."""

import pytest

from governance.audit.models import AuditEvent
from governance.workflow import services as workflow

pytestmark = [pytest.mark.django_db, pytest.mark.mlflow]


def drift(name):
    return [(e.version, e.before, e.after) for e in AuditEvent.objects.filter(action="registry.drift", model_name=name)
            .order_by("seq")]


def deploy(promo, scientist, engineer, ops_user, **target):
    req = workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=2,
                                            justification="better", **target)
    workflow.promotion_request_approve(request_id=req.pk, actor=engineer, comment="ok")
    return workflow.promotion_request_deploy(request_id=req.pk, actor=ops_user, comment="go")


def test_a_manual_archive_is_not_explained_by_an_earlier_deploy_that_archived_others(
        promo, synced, scientist, engineer, ops_user):
    synced(promo.name)
    # v2 -> Production with archive_existing: the deploy archives v1 itself.
    assert deploy(promo, scientist, engineer, ops_user, target_stage="Production",
                  archive_existing=True).state == "deployed"
    synced(promo.name)
    assert drift(promo.name) == []
    # Later someone puts v3 in Production by hand, then archives it by hand: two changes nobody governed,
    # although the earlier deploy once archived a Production holder too.
    promo.factory.stage(promo.name, 3, "Production")
    synced(promo.name)
    promo.factory.stage(promo.name, 3, "Archived")
    synced(promo.name)
    assert drift(promo.name) == [(3, {"stage": "None"}, {"stage": "Production"}),
                                 (3, {"stage": "Production"}, {"stage": "Archived"})]


def test_moving_an_alias_back_to_what_a_deploy_set_is_drift(promo, synced, scientist, engineer, ops_user):
    synced(promo.name)
    assert deploy(promo, scientist, engineer, ops_user, target_alias="champion").state == "deployed"
    synced(promo.name)
    assert drift(promo.name) == []
    promo.factory.alias(promo.name, "champion", 1)  # by hand, away...
    synced(promo.name)
    promo.factory.alias(promo.name, "champion", 2)  # ...and back to the version the deploy set
    synced(promo.name)
    assert drift(promo.name) == [
        (1, {"alias": "champion", "version": 2}, {"alias": "champion", "version": 1}),
        (2, {"alias": "champion", "version": 1}, {"alias": "champion", "version": 2}),
    ]


def test_moving_a_stage_back_to_what_a_deploy_set_is_drift(promo, synced, scientist, engineer, ops_user):
    synced(promo.name)
    assert deploy(promo, scientist, engineer, ops_user, target_stage="Staging").state == "deployed"
    synced(promo.name)
    promo.factory.stage(promo.name, 2, "None")
    synced(promo.name)
    promo.factory.stage(promo.name, 2, "Staging")
    synced(promo.name)
    assert drift(promo.name) == [
        (2, {"stage": "Staging"}, {"stage": "None"}),
        (2, {"stage": "None"}, {"stage": "Staging"}),
    ]
