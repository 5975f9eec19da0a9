"""The auditor's pages: text search finds words inside an event's recorded details (SQLite FTS5 and
PostgreSQL full-text alike), the report's summary and sentences, and "Verify chain now", which only
auditors and staff may run and which is itself recorded."""

import pytest
from django.db import transaction
from django.urls import reverse

from governance import audit
from governance.audit.models import AuditEvent, AuditVerification
from governance.audit.reading import event_sentence, report_summary

pytestmark = pytest.mark.django_db


def seed():
    with transaction.atomic():
        audit.record(actor_name="ana", action="request.created", model="churn", version=7, request=3,
                     after={"target_alias": "champion", "state": "pending"}, comment="better recall")
        audit.record(actor_name="bob", action="request.approved", model="churn", version=7, request=3,
                     after={"approvals": 1, "quorum": 1, "override": True}, comment="ok")
        audit.record(actor_name="ops", action="deploy.succeeded", model="churn", version=7, request=3,
                     before={"alias": "champion", "version": 5}, after={"alias": "champion", "version": 7})
        audit.record(actor_name="system:sync", action="registry.tag_set", model="churn", version=7,
                     after={"key": "validation_status", "value": "passed"})


def test_search_finds_words_inside_event_details(client, auditor):
    seed()
    client.force_login(auditor)
    for word, actions in (("champion", {"request.created", "deploy.succeeded"}),
                          ("validation_status", {"registry.tag_set"}), ("recall", {"request.created"})):
        events = client.get(reverse("audit:search"), {"q": word}).context["events"]
        assert {e.action for e in events} == actions, word


def test_events_read_as_sentences_and_the_report_sums_them_up():
    seed()
    events = list(AuditEvent.objects.filter(model_name="churn").order_by("seq"))
    assert [event_sentence(e) for e in events[:3]] == [
        "ana requested v7 → @champion (request #3)", "bob approved v7 (request #3), overriding failing gates",
        "ops deployed v7 (request #3): alias champion → champion; version 5 → 7"]
    summary = report_summary(events)
    assert (summary["requests"], summary["approvals"], summary["deploys"], summary["overrides"]) == (1, 1, 1, 1)
    assert summary["people"] == [("requested", ["ana"]), ("approved", ["bob"]), ("deployed", ["ops"])]


def test_an_auditor_verifies_the_chain_from_the_page_and_it_is_recorded(client, auditor):
    seed()
    client.force_login(auditor)
    report = reverse("audit:model_report", args=["churn"])
    response = client.post(reverse("audit:verify"), {"next": report}, follow=True)
    assert response.redirect_chain[-1][0] == report
    page = response.content.decode()
    assert "Audit chain intact: 5 events verified" in page  # the 4 above and the auditor's sign-in
    event = AuditEvent.objects.order_by("-seq").first()
    assert event.action == "audit.verified" and event.actor_username == auditor.username
    assert event.after["ok"] is True and event.after["count"] == 5
    assert AuditVerification.objects.first().source == "page"


@pytest.mark.parametrize("role", ["scientist", "engineer", "ops_user", "outsider"])
def test_only_auditors_and_staff_verify(client, request, role):
    seed()
    client.force_login(request.getfixturevalue(role))
    before = AuditEvent.objects.count()
    response = client.post(reverse("audit:verify"))
    assert response.status_code == 403
    assert AuditEvent.objects.count() == before
    assert not AuditVerification.objects.exists()


def test_verify_goes_back_only_to_this_site(client, auditor):
    client.force_login(auditor)
    response = client.post(reverse("audit:verify"), {"next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == reverse("audit:search")
