"""Search, export, reports, the API, visibility, and the auditor's read-only guarantee."""

import csv
import io
import json

import pytest
from django.db import transaction
from django.urls import reverse

from governance import audit
from governance.audit.models import AuditEvent
from registry_ui.mirror.models import ModelVersion, RegisteredModel
from tests.fixtures_audit import seed_events

pytestmark = pytest.mark.django_db


def rec(**kw):
    kw.setdefault("actor_name", "system:test")
    with transaction.atomic():
        return audit.record(**kw)


@pytest.fixture
def trail(db):
    """A small trail over two models, with a request, a deployment, a drift and a login."""
    fraud = RegisteredModel.objects.create(name="fraud-detector", description="Flags fraud")
    ModelVersion.objects.create(model=fraud, version=1, stage="Production", run_id="r1", source="s3://x")
    ModelVersion.objects.create(model=fraud, version=2, stage="Staging", run_id="r2", source="s3://y")
    RegisteredModel.objects.create(name="churn-classifier")
    events = {
        "created": rec(actor_name="alice", action="request.created", model="fraud-detector", version=2, request=7,
                       after={"target": "Production", "evidence": {"auc": 0.93}, "gates": [{"gate": "auc>0.9",
                                                                                          "passed": True}]},
                       comment="Please promote, recall improved"),
        "approved": rec(actor_name="bob", action="request.approved", model="fraud-detector", version=2, request=7,
                        comment="Looks good"),
        "deployed": rec(actor_name="carol", action="deploy.succeeded", model="fraud-detector", version=2,
                        request=7, before={"stage": "Staging"}, after={"stage": "Production"}),
        "drift": rec(actor_name="system:sync", action="registry.drift", model="fraud-detector", version=1,
                     before={"stage": "Production"}, after={"stage": "Archived"}, comment="changed outside"),
        "churn": rec(actor_name="alice", action="registry.synced", model="churn-classifier",
                     comment="quarterly retrain"),
        "login": rec(actor_name="bob", action="user.login", source_ip="10.1.2.3"),
    }
    return events


def seqs(response):
    return [row["seq"] for row in response.json()["results"]]


def test_api_lists_newest_first_with_filters(client, auditor, trail):
    client.force_login(auditor)
    url = reverse("audit_api:event_list")
    all_seqs = seqs(client.get(url, {"limit": 100}))
    assert all_seqs == sorted(all_seqs, reverse=True)
    assert seqs(client.get(url, {"actor": "bob"})) == [trail["login"].seq, trail["approved"].seq]
    assert seqs(client.get(url, {"action": "registry.drift"})) == [trail["drift"].seq]
    assert seqs(client.get(url, {"model": "fraud-detector", "version": 2})) == [
        trail["deployed"].seq, trail["approved"].seq, trail["created"].seq]
    assert seqs(client.get(url, {"request": 7})) == [trail["deployed"].seq, trail["approved"].seq,
                                                     trail["created"].seq]
    assert seqs(client.get(url, {"q": "recall"})) == [trail["created"].seq]
    assert seqs(client.get(url, {"q": "quarterly retr"})) == [trail["churn"].seq]   # prefix words, AND
    assert seqs(client.get(url, {"q": "churn"})) == [trail["churn"].seq]            # model name
    assert trail["login"].seq in seqs(client.get(url, {"q": "bob"}))               # actor


def test_api_date_filters(client, auditor, trail):
    client.force_login(auditor)
    url = reverse("audit_api:event_list")
    today = trail["login"].timestamp.date()
    got = seqs(client.get(url, {"since": today.isoformat(), "until": today.isoformat()}))
    assert len(got) == AuditEvent.objects.count() > len(trail)   # the trail plus the auditor's own login
    assert seqs(client.get(url, {"until": "2000-01-01"})) == []
    assert seqs(client.get(url, {"since": "2999-01-01"})) == []
    assert client.get(url, {"since": "yesterday"}).status_code == 400
    assert client.get(url, {"action": "no.such"}).json()["detail"]


def test_api_keyset_pagination(client, auditor):
    client.force_login(auditor)
    seed_events(25)
    url = reverse("audit_api:event_list")
    seen, nxt = [], f"{url}?limit=10"
    while nxt:
        body = client.get(nxt).json()
        seen += [r["seq"] for r in body["results"]]
        nxt = body["next"]
    total = AuditEvent.objects.count()   # 25 plus the auditor's login
    assert seen == list(range(total, 0, -1))


def test_api_pages_without_counting(client, auditor, django_assert_max_num_queries):
    client.force_login(auditor)
    seed_events(60)
    with django_assert_max_num_queries(6):
        body = client.get(reverse("audit_api:event_list"), {"limit": 20}).json()
    assert len(body["results"]) == 20 and "before=" in body["next"]


def test_others_see_only_events_of_models_they_may_view(client, outsider, scientist, trail, monkeypatch):
    url = reverse("audit_api:event_list")
    client.force_login(outsider)   # sees no model
    assert seqs(client.get(url)) == []
    client.force_login(scientist)   # sees every model, but not model-less events such as logins
    visible = seqs(client.get(url, {"limit": 100}))
    assert trail["drift"].seq in visible and trail["login"].seq not in visible
    # Scope the scientist to churn-classifier only (what the policy module decides).
    monkeypatch.setattr("governance.audit.search.visible_models",
                        lambda user, qs: qs.filter(name="churn-classifier"))
    assert seqs(client.get(url)) == [trail["churn"].seq]
    assert client.get(reverse("audit:model_report", args=["fraud-detector"])).status_code == 404
    assert client.get(reverse("audit:model_report", args=["churn-classifier"])).status_code == 200


def test_search_page_filters_and_escapes(client, auditor, trail):
    rec(actor_name="mallory", action="registry.synced", model="fraud-detector", comment="<script>alert(1)</script>")
    client.force_login(auditor)
    page = client.get(reverse("audit:search"), {"q": "recall"}).content.decode()
    assert "Please promote, recall improved" in page and "quarterly retrain" not in page
    page = client.get(reverse("audit:search")).content.decode()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert client.get(reverse("audit:search"), {"version": "x"}).status_code == 400


def test_search_page_keyset_next_link(client, auditor, settings):
    settings.AUDIT_PAGE_SIZE = 5
    client.force_login(auditor)   # seq 1: the login itself
    seed_events(11)
    first = client.get(reverse("audit:search"))
    assert first.context["next_url"] == "?before=8"
    second = client.get(reverse("audit:search") + first.context["next_url"])
    assert [e.seq for e in second.context["events"]] == [7, 6, 5, 4, 3]


def read_stream(response) -> str:
    return b"".join(response.streaming_content).decode()


def test_export_csv_is_streamed_filtered_and_audited(client, auditor, trail, settings):
    settings.AUDIT_EXPORT_CHUNK = 2  # several chunks
    client.force_login(auditor)
    before = AuditEvent.objects.count()
    response = client.get(reverse("audit:export"), {"model": "fraud-detector", "format": "csv"})
    assert response.streaming
    rows = list(csv.DictReader(io.StringIO(read_stream(response))))
    assert [int(r["seq"]) for r in rows] == [trail[k].seq for k in ("created", "approved", "deployed", "drift")]
    assert rows[0]["comment"] == "Please promote, recall improved"
    assert json.loads(rows[2]["after"]) == {"stage": "Production"}
    exported = AuditEvent.objects.order_by("-seq").first()
    assert AuditEvent.objects.count() == before + 1
    assert exported.action == "report.exported" and exported.actor_username == "auditor"
    assert exported.after["filters"] == {"model": "fraud-detector"} and exported.after["format"] == "csv"


def test_export_json_contents(client, auditor, trail):
    client.force_login(auditor)
    response = client.get(reverse("audit:export"), {"action": "registry.drift", "format": "json"})
    data = json.loads(read_stream(response))
    assert len(data) == 1
    assert data[0]["before"] == {"stage": "Production"} and data[0]["hash"] == trail["drift"].hash
    assert client.get(reverse("audit:export"), {"format": "xml"}).status_code == 400


def test_model_report_has_versions_requests_drift_and_chain(client, auditor, trail, signing_key):
    from django.core.management import call_command

    call_command("verify_audit", "--checkpoint", stdout=io.StringIO())
    client.force_login(auditor)
    response = client.get(reverse("audit:model_report", args=["fraud-detector"]))
    page = response.content.decode()
    assert response.status_code == 200
    for text in ("Request #7", "Please promote, recall improved", "requested</strong>: alice",
                 "approved</strong>: bob", "deployed</strong>: carol", "changed outside", "Flags fraud",
                 "auc&gt;0.9", audit.chain_head()[1], "intact", "latest signed checkpoint"):
        assert text in page, text
    # The one form that posts is "Verify chain now" (auditors and staff): nothing else changes anything here.
    assert page.split("<main")[1].count('<form method="post"') == 1
    assert f'<form method="post" action="{reverse("audit:verify")}"' in page
    csv_text = client.get(reverse("audit:model_report", args=["fraud-detector"]), {"format": "csv"}).content.decode()
    assert "drift" in csv_text and "request.approved" in csv_text
    html = client.get(reverse("audit:model_report", args=["fraud-detector"]), {"format": "html"})
    assert html["Content-Disposition"].startswith("attachment") and b"Request #7" in html.content
    download = client.get(reverse("audit:checkpoint_download"))
    assert json.loads(b"".join(download.streaming_content))["seq"] >= trail["login"].seq


def test_model_report_period(client, auditor, trail):
    client.force_login(auditor)
    page = client.get(reverse("audit:model_report", args=["fraud-detector"]), {"until": "2000-01-01"})
    assert "Request #7" not in page.content.decode()


def test_verify_api(client, auditor, scientist):  # 3 events + the login
    seed_events(3)
    client.force_login(auditor)
    body = client.get(reverse("audit_api:verify")).json()
    assert body["ok"] is True and body["count"] == 4 and body["head_hash"] == audit.chain_head()[1]
    client.force_login(scientist)
    assert client.get(reverse("audit_api:verify")).status_code == 403


def test_checkpoint_download_only_for_auditors(client, scientist, signing_key):
    client.force_login(scientist)
    assert client.get(reverse("audit:checkpoint_download")).status_code == 404


def test_timeline_panel_on_model_page(rf, scientist, trail):
    from governance.audit.panels import timeline_panels

    request = rf.get("/")
    request.user = scientist
    [(template, context)] = timeline_panels("model", request, RegisteredModel.objects.get(name="fraud-detector"))
    assert template == "audit/_timeline.html"
    assert [e["action"] for e in context["events"]] == ["registry.drift", "deploy.succeeded"]
    assert context["events"][0]["change"] == "stage: Production → Archived"
    assert timeline_panels("version", request, None) == []


# Every audit URL x role, and that a write by an auditor changes nothing: tests/test_url_matrix.py.


def test_auditor_cannot_change_in_the_admin(client, auditor, trail):
    client.force_login(auditor)
    before = AuditEvent.objects.count()
    response = client.post(reverse("admin:governance_auditevent_change", args=[trail["login"].pk]),
                           {"comment": "x"})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize("window", [20_000, 3])
def test_text_search_pages_through_every_match(client, auditor, monkeypatch, window):
    # window=3: on PostgreSQL the page is completed from the GIN index (the rare-word path).
    monkeypatch.setattr("governance.audit.search.PG_TEXT_WINDOW", window)
    client.force_login(auditor)
    seed_events(9, comment="holdout review passed")
    seed_events(4, comment="unrelated")
    seed_events(3, comment="second holdout")
    url = reverse("audit_api:event_list")
    seen, nxt = [], f"{url}?q=holdout&limit=4"
    while nxt:
        body = client.get(nxt).json()
        seen += [r["seq"] for r in body["results"]]
        nxt = body["next"]
    expected = list(AuditEvent.objects.filter(comment__contains="holdout").order_by("-seq").values_list("seq",
                                                                                                      flat=True))
    assert seen == expected and len(seen) == 12


def test_text_and_date_filters_combine(client, auditor):
    from datetime import timedelta

    client.force_login(auditor)
    seed_events(3, comment="canary rollout")
    today = AuditEvent.objects.order_by("-seq").first().timestamp.date()
    url = reverse("audit_api:event_list")
    assert len(seqs(client.get(url, {"q": "canary", "since": today.isoformat()}))) == 3
    assert seqs(client.get(url, {"q": "canary", "until": (today - timedelta(days=1)).isoformat()})) == []
    assert seqs(client.get(url, {"q": "canary", "since": (today + timedelta(days=1)).isoformat()})) == []


def test_report_index_lists_models_once_including_deleted_ones(client, auditor, trail):
    # The sync's record of a model that left MLflow: its trail stays, and so does its report.
    rec(actor_name="system:sync", action="registry.model_deleted", model="retired-model",
        before={"name": "retired-model"}, comment="deleted in MLflow")
    rec(actor_name="system:sync", action="registry.model_deleted", model="retired-model", comment="seen twice")
    client.force_login(auditor)
    page = client.get(reverse("audit:report_index"))
    assert page.context["names"] == ["churn-classifier", "fraud-detector", "retired-model"]
    assert "3 models." in page.content.decode()
    # The name filter (any case) finds a model among thousands, deleted ones included.
    page = client.get(reverse("audit:report_index"), {"model": "RETIRED"})
    assert page.context["names"] == ["retired-model"]
    page = client.get(reverse("audit:report_index"), {"model": "<b>nothing</b>"})
    assert page.context["names"] == []
    assert "No model you may view has a name containing “&lt;b&gt;nothing&lt;/b&gt;”" in page.content.decode()


def test_report_index_lists_the_first_names_and_says_how_many_there_are(client, auditor, trail, monkeypatch):
    from governance.audit import search

    monkeypatch.setattr(search, "REPORT_INDEX_NAMES", 2)
    RegisteredModel.objects.bulk_create(RegisteredModel(name=f"bulk-{i}") for i in range(3))
    client.force_login(auditor)
    page = client.get(reverse("audit:report_index"))
    assert page.context["names"] == ["bulk-0", "bulk-1"]
    assert "The first 2 of 5 models: narrow the list with the name filter." in page.content.decode()
    page = client.get(reverse("audit:report_index"), {"model": "fraud"})
    assert page.context["names"] == ["fraud-detector"]
