"""People and pipelines told, end to end with a real task worker process (`manage.py db_worker`): a
request made in the browser mails its approver and reaches a real local HTTP receiver signed per
Standard Webhooks; a receiver that fails twice gets the event exactly once after retries."""

import email
from pathlib import Path

import pytest
from playwright.sync_api import expect
from standardwebhooks.webhooks import Webhook

from governance.notify import services as notify
from governance.notify.models import Delivery, Notification, OutboxState
from governance.workflow import services as workflow
from tests.conftest import browser_login
from tests.fixtures_tasks import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.mlflow]


def _worker_env(mail_dir: Path, **extra) -> dict:
    # The worker is another process: settings reach it through the environment.
    return {"EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend", "EMAIL_FILE_PATH": str(mail_dir),
            "OUTBOUND_WEBHOOKS_ALLOW_PRIVATE": "1", **extra}


def _mails(mail_dir: Path) -> list:
    files = sorted(mail_dir.glob("*.log")) if mail_dir.exists() else []
    return [email.message_from_bytes(p.read_bytes()) for p in files]


def _subscribe(admin, url: str, **kwargs):
    return notify.subscription_create(actor=admin, name="ci", url=url, kinds=["request.created"], **kwargs)


@pytest.mark.browser
def test_a_request_made_in_the_browser_mails_the_approver_and_reaches_ci_signed(
        page, live_server, promo, scientist, engineer, admin_user, receiver, start_worker, settings, tmp_path):
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = True  # the receiver is on 127.0.0.1
    settings.CONSOLE_BASE_URL = live_server.url
    sub = _subscribe(admin_user, receiver.url)
    mail_dir = tmp_path / "mail"
    worker = start_worker(**_worker_env(mail_dir, CONSOLE_BASE_URL=live_server.url))

    browser_login(page, live_server, "scientist")
    page.goto(f"{live_server.url}/governance/requests/new/?model={promo.name}&version=2")
    page.get_by_label("Justification").fill("v2 beats v1")
    page.get_by_role("button", name="Submit request").click()
    expect(page.locator("#request-state")).to_have_text("pending")
    request_url = page.url

    wait_until(lambda: receiver.accepted(), timeout=30, what=f"the signed delivery ({worker.output()[-500:]})")
    got = receiver.accepted()[0]
    event = Webhook(sub.secret).verify(got.body, got.headers)  # raises unless signed with this secret
    assert event["type"] == "request.created"
    assert event["data"]["model"] == promo.name and event["data"]["version"] == 2
    assert event["data"]["target"] == "@champion" and event["data"]["actor"] == "scientist"
    assert event["data"]["url"] == request_url
    with pytest.raises(Exception, match="signature"):
        Webhook(notify.new_secret()).verify(got.body, got.headers)

    wait_until(lambda: not Notification.objects.filter(state=OutboxState.PENDING).exists()
               and not Notification.objects.filter(state=OutboxState.SENDING).exists(), timeout=30,
               what="the mails to be sent")
    mails = _mails(mail_dir)
    to = {m["To"] for m in mails}
    assert to == {"engineer@example.com", "admin@example.com"}  # whoever may approve it (admins may)
    assert "scientist@example.com" not in to  # the requester is not asked to approve their own request
    mail = next(m for m in mails if m["To"] == "engineer@example.com")
    assert promo.name in mail["Subject"] and request_url in mail.get_payload()
    assert Notification.objects.get(user=engineer).state == OutboxState.SUCCEEDED

    # The engineer's menu counts the request waiting for them; the inbox offers exactly that one.
    page.context.clear_cookies()
    browser_login(page, live_server, "engineer")
    page.goto(f"{live_server.url}/governance/inbox/")
    expect(page.locator("#awaiting-count")).to_have_text("1")
    expect(page.locator("section", has_text="Waiting for my approval")).to_contain_text(promo.name)


def test_a_receiver_failing_twice_gets_the_event_exactly_once_after_retries(
        promo, scientist, engineer, admin_user, receiver, start_worker, settings, tmp_path):
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = True
    receiver.statuses = [500, 500, 200]
    sub = _subscribe(admin_user, receiver.url)
    start_worker(**_worker_env(tmp_path / "mail", OUTBOUND_WEBHOOK_BACKOFF_SECONDS="0.2"))

    req = workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=2,
                                            target_alias="champion", justification="retry me")

    delivery = Delivery.objects.get(subscription=sub)
    wait_until(lambda: Delivery.objects.filter(pk=delivery.pk, state=OutboxState.SUCCEEDED).exists(), timeout=60,
               what="the delivery to succeed after two failures")
    delivery.refresh_from_db()
    assert [r.status for r in receiver.got] == [500, 500, 200]
    assert len(receiver.accepted()) == 1
    assert delivery.attempts == 3 and delivery.response_code == 200
    assert len({r.headers["webhook-id"] for r in receiver.got}) == 1  # the same message each time
    for attempt in receiver.got:
        assert Webhook(sub.secret).verify(attempt.body, attempt.headers)["data"]["request_id"] == req.pk


def test_the_sweep_re_enqueues_a_delivery_whose_task_was_lost(
        promo, scientist, admin_user, receiver, start_worker, settings, tmp_path):
    settings.OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = True
    settings.NOTIFY_SWEEP_GRACE_SECONDS = 0
    sub = _subscribe(admin_user, receiver.url)
    workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=2, target_alias="champion",
                                      justification="lost task")
    from django_tasks_db.models import DBTaskResult

    DBTaskResult.objects.all().delete()  # the queue lost every task
    from governance.notify.tasks import sweep_outbox

    counts = sweep_outbox.call()
    assert counts["deliveries"] == 1
    start_worker(**_worker_env(tmp_path / "mail"))
    wait_until(lambda: Delivery.objects.filter(subscription=sub, state=OutboxState.SUCCEEDED).exists(), timeout=30,
               what="the swept delivery")
    assert len(receiver.accepted()) == 1
