"""A read replica for pages and reports (DATABASE_REPLICA_URL): the router over a second alias, "replica",
which the test settings point at the test database (a TEST MIRROR), so what each request read from
which alias is seen by capturing the queries of both connections."""

import pytest
from django.db import connections, router, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from governance.audit.models import AuditEvent
from governance.workflow.models import PromotionRequest
from registry_ui.mirror.models import RegisteredModel
from registry_ui.replica import PIN_COOKIE, primary_reads, replica_reads
from tests.fixtures_audit import seed_events

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])


@pytest.fixture
def replica_on(settings):
    settings.DATABASE_ROUTERS = ["registry_ui.replica.ReplicaRouter"]
    settings.MIDDLEWARE = [settings.MIDDLEWARE[0], "registry_ui.replica.ReplicaReadsMiddleware",
                           *settings.MIDDLEWARE[1:]]


def _get(client, url):
    """(response, tables read through the primary, tables read through the replica): each query's main
    table, the first after FROM (a workflow query may hold a subquery on the mirror: it runs where the
    workflow's reads run, the primary)."""
    with CaptureQueriesContext(connections["default"]) as primary, \
            CaptureQueriesContext(connections["replica"]) as replica:
        response = client.get(url)
    return response, _tables(primary), _tables(replica)


def _tables(captured) -> set[str]:
    return {q["sql"].split(" FROM ", 1)[1].split()[0].strip('"') for q in captured if " FROM " in q["sql"]}


def test_pages_read_the_mirror_from_the_replica_until_the_browser_writes(replica_on, client, mirror, ops_user):
    mirror.model("fraud-replica")
    client.force_login(ops_user)

    page, primary, replica = _get(client, reverse("registry:catalogue"))
    assert page.status_code == 200 and "fraud-replica" in page.content.decode()
    models = "registry_ui_registeredmodel"
    assert models in replica and models not in primary
    assert "django_session" in primary and "django_session" not in replica  # sessions, users: the primary
    assert "governance_promotionrequest" in primary  # the workflow (the menu's count): the primary

    client.post(reverse("registry:catalogue"))  # any write (here refused) pins this browser to the primary
    assert client.cookies[PIN_COOKIE]["max-age"] == 10
    page, primary, replica = _get(client, reverse("registry:catalogue"))
    assert "fraud-replica" in page.content.decode()
    assert replica == set() and models in primary


def test_the_audit_chain_is_verified_on_the_primary_even_from_a_get(replica_on, client, auditor, signing_key):
    seed_events(3)
    client.force_login(auditor)
    search, _, replica = _get(client, reverse("audit:search"))
    assert search.status_code == 200 and "governance_auditevent" in replica  # search and reports: replica
    verify, primary, replica = _get(client, reverse("audit_api:verify"))
    assert verify.status_code == 200 and verify.json()["ok"] is True
    assert "governance_auditevent" in primary and "governance_auditevent" not in replica


def test_the_router_sends_writes_transactions_and_the_workflow_to_the_primary(replica_on):
    assert router.db_for_read(RegisteredModel) == "default"  # no request asked for the replica
    with replica_reads():
        assert router.db_for_read(RegisteredModel) == "replica"
        assert router.db_for_read(AuditEvent) == "replica"
        assert router.db_for_read(PromotionRequest) == "default"  # decisions never on a lagging copy
        assert router.db_for_write(RegisteredModel) == "default"
        with transaction.atomic():
            assert router.db_for_read(RegisteredModel) == "default"  # read-your-writes in a transaction
        with primary_reads():
            assert router.db_for_read(AuditEvent) == "default"
    assert not router.allow_migrate("replica", "registry_ui") and router.allow_migrate("default", "registry_ui")
