"""People and pipelines told (governance.notify), in process: what emit() writes and when, who gets mail,
the SSRF guard, the event feed, the count of requests awaiting me, and the admin pages' audit."""

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.db import transaction
from django.test import Client
from django.urls import reverse
from guardian.shortcuts import assign_perm
from standardwebhooks.webhooks import Webhook

from governance import audit
from governance.audit.models import AuditEvent
from governance.notify import services as notify
from governance.notify.models import Delivery, MailPreference, ModelWatch, Notification, OutboundEvent, OutboxState
from governance.notify.outbox import emit
from governance.notify.safety import destination_problem
from governance.notify.tasks import deliver_webhook, send_notification
from governance.workflow import services as workflow
from governance.workflow.inbox import awaiting_count, awaiting_my_action
from governance.workflow.models import ModelPolicy, PromotionRequest
from registry_ui.mirror.models import RegisteredModel
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def _drift(model_name: str):
    """A drift event as the sync handler records it, with its outbound event."""
    with transaction.atomic():
        event = audit.record(actor_name="system:sync", action="registry.drift", model=model_name, version=1,
                             before={"aliases": {}}, after={"aliases": {"champion": 1}}, comment="moved in MLflow")
        return emit(event)


# --------------------------------------------------------------------------------------------------
# The outbox is written with the audit event
# --------------------------------------------------------------------------------------------------


@pytest.mark.mlflow
def test_a_request_writes_its_event_delivery_and_the_approvers_mail_with_its_audit_event(
        promo, scientist, engineer, ops_user, admin_user, settings):
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = True
    sub = notify.subscription_create(actor=admin_user, name="ci", url="http://127.0.0.1:9/x", kinds=[])
    MailPreference.objects.create(user=admin_user, muted=["approval_needed"])

    req = workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=2,
                                            target_alias="champion", justification="better")

    created = AuditEvent.objects.get(action="request.created", request_id=req.pk)
    event = OutboundEvent.objects.get(audit_seq=created.seq)
    assert event.kind == "request.created" and event.payload["data"]["target"] == "@champion"
    assert Delivery.objects.get(event=event).subscription == sub
    # Whose turn it is (the engineer); not the requester, not ops, not the admin who turned this mail off.
    assert [(n.user.username, n.kind) for n in Notification.objects.filter(event=event)] == [
        ("engineer", "approval_needed")]

    workflow.promotion_request_approve(request_id=req.pk, actor=engineer, comment="ok")
    approved = OutboundEvent.objects.get(kind="request.approved")
    assert sorted((n.user.username, n.kind) for n in Notification.objects.filter(event=approved)) == [
        ("admin", "deploy_needed"), ("ops", "deploy_needed"), ("scientist", "my_request")]


@pytest.fixture(scope="module")
def fault_proxy(mlflow_server):
    """A real proxy process in front of the session's MLflow server that can break one kind of write."""
    from tests.test_deploy_faults import FaultProxy

    proxy = FaultProxy(mlflow_server.url)
    yield proxy
    proxy.stop()


def _my_request_mails(kind: str) -> list[tuple[str, str]]:
    event = OutboundEvent.objects.get(kind=kind)
    return sorted((n.user.username, n.kind) for n in Notification.objects.filter(event=event))


@pytest.mark.mlflow
def test_the_requester_is_told_of_rejection_deploy_failure_and_deploy(promo, fault_proxy, scientist, engineer,
                                                                     ops_user, admin_user, settings):
    from governance.errors import DeployFailed
    from tests.test_deploy_faults import ALIAS_WRITE

    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = True
    sub = notify.subscription_create(actor=admin_user, name="ci", url="http://127.0.0.1:9/x", kinds=[])
    rejected = workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=3,
                                                 target_alias="champion", justification="try it")
    workflow.promotion_request_reject(request_id=rejected.pk, actor=engineer, comment="not validated")
    assert _my_request_mails("request.rejected") == [("scientist", "my_request")]

    # The deploy reaches MLflow through a real proxy that resets the connection of the alias write.
    fault_proxy.clear()
    settings.MLFLOW_TRACKING_URI = fault_proxy.url
    settings.MLFLOW_WEB_TIMEOUT = 1.5
    req = workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=2,
                                            target_alias="champion", justification="better")
    workflow.promotion_request_approve(request_id=req.pk, actor=engineer, comment="ok")
    fault_proxy.rule(ALIAS_WRITE, "reset", body={"alias": "champion"})
    try:
        with pytest.raises(DeployFailed):
            workflow.promotion_request_deploy(request_id=req.pk, actor=ops_user)
    finally:
        fault_proxy.clear()
    assert PromotionRequest.objects.get(pk=req.pk).state == "failed"
    assert _my_request_mails("deploy.failed") == [("scientist", "my_request")]
    failed_mail = Notification.objects.get(event__kind="deploy.failed")
    assert send_notification.call(failed_mail.pk) == "sent"
    assert mail.outbox[-1].to == ["scientist@example.com"] and "Error:" in mail.outbox[-1].body

    assert workflow.promotion_request_deploy(request_id=req.pk, actor=ops_user, comment="retry").state == "deployed"
    assert _my_request_mails("deploy.succeeded") == [("scientist", "my_request")]
    # CI is told of each of them too.
    kinds = set(Delivery.objects.filter(subscription=sub).values_list("event__kind", flat=True))
    assert kinds >= {"request.rejected", "request.approved", "deploy.failed", "deploy.succeeded"}


@pytest.mark.mlflow
def test_nothing_is_written_when_the_transaction_rolls_back(promo, scientist, engineer):
    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=2, target_alias="champion",
                                          justification="rolled back")
        raise Boom
    assert not PromotionRequest.objects.exists()
    assert not OutboundEvent.objects.exists() and not Notification.objects.exists()


def test_drift_mails_the_watchers_who_may_still_see_the_model(role_perms, auditor, engineer, outsider):
    model = RegisteredModel.objects.create(name="fraud")
    notify.model_watch_set(actor=auditor, model_name="fraud", watch=True)
    notify.model_watch_set(actor=engineer, model_name="fraud", watch=True)
    with pytest.raises(Exception, match="No registered model"):
        notify.model_watch_set(actor=outsider, model_name="fraud", watch=True)  # may not see it

    event = _drift("fraud")

    mails = {n.user.username: n for n in Notification.objects.filter(event=event)}
    assert set(mails) == {"auditor", "engineer"} and {n.kind for n in mails.values()} == {"watched_drift"}
    engineer.groups.clear()  # loses sight of every model before the worker sends
    assert send_notification.call(mails["engineer"].pk).startswith("skipped")
    assert send_notification.call(mails["auditor"].pk) == "sent"
    assert [m.to for m in mail.outbox] == [["auditor@example.com"]]
    assert "fraud" in mail.outbox[0].subject
    assert send_notification.call(mails["auditor"].pk) == "not claimed"  # never twice
    assert ModelWatch.objects.filter(model=model).count() == 2


# --------------------------------------------------------------------------------------------------
# Webhooks: SSRF guard, signing, retries
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://127.0.0.1/hook", "http://localhost:8080/", "http://10.1.2.3/",
                                 "http://192.168.0.10/", "http://169.254.169.254/latest/meta-data/",
                                 "http://[::1]/", "http://0.0.0.0/", "ftp://example.com/",
                                 "http://user:pw@example.com/"])
def test_a_private_or_odd_destination_is_refused_at_save(admin_user, settings, url):
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = False
    with pytest.raises(Exception) as refused:
        notify.subscription_create(actor=admin_user, name="evil", url=url, kinds=[])
    assert "refused" in str(refused.value) or "allowed" in str(refused.value)
    assert not AuditEvent.objects.filter(action="subscription.created").exists()


def test_a_name_is_judged_by_every_address_it_resolves_to(settings):
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = False

    def resolver(*addresses):
        return lambda host, port, **kw: [(2, 1, 6, "", (a, port)) for a in addresses]

    assert destination_problem("https://ci.example.com/h", resolve=resolver("93.184.216.34")) == ""
    assert "10.0.0.5" in destination_problem("https://ci.example.com/h", resolve=resolver("93.184.216.34", "10.0.0.5"))
    assert "private" in destination_problem("https://x.example/", resolve=resolver("::ffff:127.0.0.1"))


def test_a_destination_that_turned_private_is_refused_at_send(admin_user, receiver, settings):
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = True
    sub = notify.subscription_create(actor=admin_user, name="ci", url=receiver.url, kinds=[])
    RegisteredModel.objects.create(name="fraud")
    event = _drift("fraud")
    delivery = Delivery.objects.get(event=event, subscription=sub)
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = False  # as if its DNS now pointed inward

    assert deliver_webhook.call(delivery.pk, 1) == "failed"
    delivery.refresh_from_db()
    assert delivery.state == OutboxState.FAILED and delivery.last_error.startswith("refused")
    assert receiver.got == []


def test_retries_back_off_doubling_to_a_cap_and_the_last_attempt_fails_the_delivery(
        admin_user, receiver, settings, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = True
    settings.OUTBOUND_WEBHOOK_BACKOFF_SECONDS = 30
    settings.OUTBOUND_WEBHOOK_BACKOFF_MAX_SECONDS = 100
    settings.OUTBOUND_WEBHOOK_MAX_ATTEMPTS = 4
    sub = notify.subscription_create(actor=admin_user, name="ci", url=receiver.url, kinds=[])
    RegisteredModel.objects.create(name="fraud")
    delivery = Delivery.objects.get(event=_drift("fraud"), subscription=sub)
    receiver.statuses = [500, 503, 500, 502]

    waits = []
    for attempt in (1, 2, 3):
        with django_capture_on_commit_callbacks(execute=True):
            assert deliver_webhook.call(delivery.pk, attempt).startswith("retry at")
        delivery.refresh_from_db()
        assert delivery.state == OutboxState.PENDING and delivery.attempts == attempt
        waits.append(round((delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()))
        # The next attempt is on the queue, to run no earlier than the row says.
        queued = [r for r in DBTaskResult.objects.filter(task_path__endswith="deliver_webhook")
                  if r.args_kwargs["args"] == [delivery.pk, attempt + 1]]
        assert len(queued) == 1 and queued[0].run_after == delivery.next_attempt_at
        Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert waits == [30, 60, 100]  # 30 * 2**(n-1), capped at 100 (120 would be next)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert deliver_webhook.call(delivery.pk, 4) == "failed"
    assert callbacks == []  # nothing more is enqueued
    delivery.refresh_from_db()
    assert delivery.state == OutboxState.FAILED and delivery.attempts == 4
    assert delivery.response_code == 502 and delivery.last_error.startswith("HTTP 502")
    assert [r.status for r in receiver.got] == [500, 503, 500, 502]
    assert len({r.headers["webhook-id"] for r in receiver.got}) == 1
    client = Client()
    client.force_login(admin_user)
    log = client.get(reverse("notify:delivery_list")).content.decode()
    assert "HTTP 502" in log and "failed" in log.lower()


def test_a_slack_subscription_gets_a_signed_text_body_and_no_redirect_is_followed(admin_user, receiver, settings):
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = True
    sub = notify.subscription_create(actor=admin_user, name="slack", url=receiver.url, kinds=["registry.drift"],
                                     slack=True)
    RegisteredModel.objects.create(name="fraud")
    delivery = Delivery.objects.get(event=_drift("fraud"), subscription=sub)

    assert deliver_webhook.call(delivery.pk, 1) == "delivered"
    body = Webhook(sub.secret).verify(receiver.got[0].body, receiver.got[0].headers)
    assert set(body) == {"text"} and "Drift on fraud" in body["text"]
    assert deliver_webhook.call(delivery.pk, 1) == "not claimed (already sent, or another attempt holds it)"

    receiver.statuses = [302]
    other = Delivery.objects.get(event=_drift("fraud"), subscription=sub)
    assert deliver_webhook.call(other.pk, 1).startswith("retry")  # a redirect is a failure, not followed
    assert len(receiver.got) == 2
    other.refresh_from_db()
    assert other.response_code == 302 and other.state == OutboxState.PENDING


def test_a_subscription_for_one_model_gets_only_that_models_events(admin_user, settings):
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = True
    sub = notify.subscription_create(actor=admin_user, name="fraud only", url="http://127.0.0.1:9/", kinds=[],
                                     model_name="fraud")
    RegisteredModel.objects.create(name="fraud")
    RegisteredModel.objects.create(name="churn")
    _drift("fraud")
    _drift("churn")
    assert [d.event.model_name for d in Delivery.objects.filter(subscription=sub)] == ["fraud"]


# --------------------------------------------------------------------------------------------------
# The event feed
# --------------------------------------------------------------------------------------------------


def test_the_feed_pages_events_in_order_with_a_cursor_and_only_visible_models(role_perms, auditor, client):
    RegisteredModel.objects.create(name="open model")
    team_model = RegisteredModel.objects.create(name="team model")
    ModelPolicy.objects.create(model=team_model, scoped=True)
    team = Group.objects.create(name="team")
    assign_perm("registry_ui.view_registeredmodel", team, team_model)
    member = make_user("member")
    member.groups.add(team)
    ids = [_drift(name).pk for name in ("open model", "team model", "open model", "team model")]
    url = reverse("events_api:event_list")

    client.force_login(auditor)
    first = client.get(url, {"limit": 3}).json()
    assert [e["id"] for e in first["events"]] == [str(i) for i in ids[:3]]
    assert first["events"][0]["type"] == "registry.drift" and first["events"][0]["data"]["model"] == "open model"
    rest = client.get(url, {"after": first["next"]}).json()
    assert [e["id"] for e in rest["events"]] == [str(ids[3])]
    empty = client.get(url, {"after": rest["next"]}).json()
    assert empty == {"events": [], "next": rest["next"]}  # poll again with the same cursor

    client.force_login(member)
    assert [e["data"]["model"] for e in client.get(url).json()["events"]] == ["team model", "team model"]

    for bad in ("abc", "-1", "1.5", "9" * 30):
        response = client.get(url, {"after": bad})
        assert response.status_code == 400 and "cursor" in response.json()["detail"]
    assert client.get(url, {"limit": "0"}).status_code == 400
    assert Client().get(url).status_code == 401


def test_the_feed_takes_a_read_only_token(role_perms, auditor):
    from governance.tokens.services import api_token_create

    RegisteredModel.objects.create(name="fraud")
    _drift("fraud")
    _token, secret = api_token_create(actor=auditor, name="pipeline", scope="read")
    client = Client()
    assert client.get(reverse("events_api:event_list")).status_code == 401
    response = client.get(reverse("events_api:event_list"), HTTP_AUTHORIZATION=f"Token {secret}")
    assert response.status_code == 200 and len(response.json()["events"]) == 1


# --------------------------------------------------------------------------------------------------
# Awaiting my action: the inbox's count, in constant queries
# --------------------------------------------------------------------------------------------------


def _pending(model, requester, n):
    for i in range(n):
        PromotionRequest.objects.create(model=model, model_name=model.name, version=i + 1, target_alias=f"a{i}",
                                        justification="x", requester=requester, requester_username=requester.username)


def test_the_count_awaiting_me_is_what_the_inbox_offers_in_constant_queries(
        role_perms, scientist, engineer, django_assert_max_num_queries):
    model = RegisteredModel.objects.create(name="fraud")
    _pending(model, scientist, 1)
    engineer = type(engineer).objects.get(pk=engineer.pk)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        assert awaiting_count(engineer) == 1
    _pending(RegisteredModel.objects.create(name="churn"), scientist, 6)
    engineer = type(engineer).objects.get(pk=engineer.pk)
    with django_assert_max_num_queries(len(one.captured_queries)):
        assert awaiting_count(engineer) == 7
    assert awaiting_count(scientist) == 0  # nobody approves their own request
    to_approve, to_deploy = awaiting_my_action(engineer)
    assert len(to_approve) == 7 and to_deploy == []


def test_without_any_approve_or_deploy_grant_the_count_costs_one_query(role_perms, scientist,
                                                                       django_assert_num_queries):
    """An auditor (no approve/deploy permission at all) is counted 0 without the lists' queries; a member of
    a team holding an approve grant on one model alone is counted like an approver of that model."""
    fraud, churn = RegisteredModel.objects.create(name="fraud"), RegisteredModel.objects.create(name="churn")
    _pending(fraud, scientist, 2)
    _pending(churn, scientist, 3)
    auditor = make_user("aud", "auditor")
    auditor.get_all_permissions()  # role permissions: cached on the user once per request
    with django_assert_num_queries(1):  # the object-grants lookup, and no list
        assert awaiting_count(auditor) == 0
    member = make_user("team-member")
    team = Group.objects.create(name="team-fraud")
    member.groups.add(team)
    assign_perm("registry_ui.view_registeredmodel", team, fraud)
    assign_perm("registry_ui.approve_promotion", team, fraud)
    ModelPolicy.objects.create(model=fraud, scoped=True)
    member = type(member).objects.get(pk=member.pk)
    to_approve, to_deploy = awaiting_my_action(member)
    assert sorted(r.model_name for r in to_approve) == ["fraud", "fraud"] and to_deploy == []


def test_the_menu_shows_the_count(role_perms, scientist, engineer, client):
    _pending(RegisteredModel.objects.create(name="fraud"), scientist, 2)
    client.force_login(engineer)
    body = client.get(reverse("governance:inbox")).content.decode()
    assert 'id="awaiting-count"' in body and ">2</span>" in body
    client.force_login(scientist)
    assert 'id="awaiting-count"' not in client.get(reverse("governance:inbox")).content.decode()


# --------------------------------------------------------------------------------------------------
# Pages: profile, subscriptions (audited), deliveries (re-send audited)
# --------------------------------------------------------------------------------------------------


def test_a_person_turns_kinds_of_mail_off_and_watches_a_model(role_perms, engineer, client):
    RegisteredModel.objects.create(name="fraud")
    client.force_login(engineer)
    response = client.post(reverse("notify:profile"), {"enabled": ["my_request", "watched_drift"]})
    assert response.status_code == 302
    assert MailPreference.objects.get(user=engineer).muted == ["approval_needed", "deploy_needed", "emergency",
                                                               "findings", "recertification"]
    assert client.post(reverse("notify:profile"), {"enabled": ["nonsense"]}).status_code == 400
    model_page = reverse("registry:model_detail", args=["fraud"])
    assert "Watch this model" in client.get(model_page).content.decode()
    assert client.post(reverse("notify:watch"), {"model": "fraud", "watch": "1", "next": model_page})["Location"] == (
        model_page)
    assert "Stop watching" in client.get(model_page).content.decode()
    assert "fraud" in client.get(reverse("notify:profile")).content.decode()
    client.post(reverse("notify:watch"), {"model": "fraud", "watch": "0"})
    assert not ModelWatch.objects.exists()
    assert client.post(reverse("notify:watch"), {"model": "nope", "watch": "1"}).status_code == 404


def test_subscriptions_are_audited_and_the_secret_is_shown_once(admin_user, client, settings):
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = False
    client.force_login(admin_user)
    url = reverse("notify:subscription_list")
    refused = client.post(url, {"name": "ci", "url": "http://127.0.0.1/hook", "active": "on"})
    assert refused.status_code == 400 and "refused" in refused.content.decode()
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = True
    created = client.post(url, {"name": "ci", "url": "http://127.0.0.1/hook", "kinds": ["deploy.succeeded"],
                                "active": "on"})
    sub = notify.Subscription.objects.get()
    assert created.status_code == 200 and sub.secret.startswith("whsec_") and sub.secret in created.content.decode()
    assert sub.secret not in client.get(url).content.decode()
    edit = reverse("notify:subscription_edit", args=[sub.pk])
    assert sub.secret not in client.get(edit).content.decode()
    client.post(edit, {"name": "ci", "url": "http://127.0.0.1/other", "kinds": ["deploy.failed"], "active": "on"})
    client.post(reverse("notify:subscription_delete", args=[sub.pk]))
    events = list(AuditEvent.objects.filter(action__startswith="subscription.").order_by("seq"))
    assert [e.action for e in events] == ["subscription.created", "subscription.changed", "subscription.deleted"]
    assert events[1].before["url"] == "http://127.0.0.1/hook" and events[1].after["url"] == "http://127.0.0.1/other"
    assert all(sub.secret not in str(e.before) + str(e.after) for e in events)


def test_an_admin_re_sends_a_failed_delivery_and_it_is_audited(admin_user, client, settings):
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = True
    sub = notify.subscription_create(actor=admin_user, name="ci", url="http://127.0.0.1:9/", kinds=[])
    RegisteredModel.objects.create(name="fraud")
    delivery = Delivery.objects.get(event=_drift("fraud"), subscription=sub)
    client.force_login(admin_user)
    resend = reverse("notify:delivery_resend", args=[delivery.pk])
    client.post(resend)  # still pending: refused
    assert not AuditEvent.objects.filter(action="delivery.resent").exists()
    Delivery.objects.filter(pk=delivery.pk).update(state=OutboxState.FAILED, attempts=8, last_error="HTTP 500")
    assert "HTTP 500" in client.get(reverse("notify:delivery_list")).content.decode()
    assert client.post(resend).status_code == 302
    delivery.refresh_from_db()
    assert delivery.state == OutboxState.PENDING and delivery.attempts == 0
    event = AuditEvent.objects.get(action="delivery.resent")
    assert event.after["webhook_id"] == delivery.webhook_id and event.actor_username == "admin"


def test_the_admin_saves_subscriptions_through_the_audited_services(admin_user, client, settings):
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = False
    client.force_login(admin_user)
    add = reverse("admin:governance_subscription_add")
    data = {"name": "ci", "url": "http://10.0.0.7/hook", "kinds": ["deploy.failed"], "model_name": "", "active": "on"}
    assert "refused" in client.post(add, data).content.decode()
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = True
    response = client.post(add, data, follow=True)
    sub = notify.Subscription.objects.get()
    assert sub.kinds == ["deploy.failed"] and sub.secret in response.content.decode()  # shown once, as a message
    client.post(reverse("admin:governance_subscription_delete", args=[sub.pk]), {"post": "yes"})
    assert not notify.Subscription.objects.exists()
    assert list(AuditEvent.objects.filter(action__startswith="subscription.").values_list("action", flat=True)) == [
        "subscription.created", "subscription.deleted"]
