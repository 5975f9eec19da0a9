"""The two ways out: a signed HTTP POST (Standard Webhooks) and an email (Django's email framework)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import requests
from django.conf import settings
from django.core.mail import EmailMessage
from standardwebhooks.webhooks import Webhook

from governance.notify.safety import destination_problem
from governance.notify.text import slack_text


@dataclass
class Outcome:
    ok: bool
    status: int | None = None
    error: str = ""


def body_for(subscription, payload: dict) -> str:
    """The exact bytes signed and sent: the event document, or a Slack-compatible {"text": ...}."""
    if subscription.slack:
        return json.dumps({"text": slack_text(payload)})
    return json.dumps(payload, separators=(",", ":"), sort_keys=True)


def signed_headers(*, secret: str, msg_id: str, body: str, now: datetime | None = None) -> dict[str, str]:
    now = now or datetime.now(tz=UTC)
    return {
        "content-type": "application/json",
        "user-agent": "model-governance-console",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id=msg_id, timestamp=now, data=body),
    }


def post_signed(*, url: str, secret: str, msg_id: str, body: str) -> Outcome:
    """One attempt. The destination is checked again now (DNS may have changed since it was saved);
    redirects are not followed (a 3xx is a failure); the timeouts are short."""
    problem = destination_problem(url)
    if problem:
        return Outcome(ok=False, error=f"refused: {problem}")
    try:
        headers = signed_headers(secret=secret, msg_id=msg_id, body=body)
        response = requests.post(url, data=body.encode(), headers=headers,
                                 timeout=(settings.OUTBOUND_WEBHOOK_CONNECT_TIMEOUT, settings.OUTBOUND_WEBHOOK_TIMEOUT),
                                 allow_redirects=False)
    except requests.RequestException as exc:
        return Outcome(ok=False, error=f"{type(exc).__name__}: {exc}"[:1000])
    if 200 <= response.status_code < 300:
        return Outcome(ok=True, status=response.status_code)
    return Outcome(ok=False, status=response.status_code,
                   error=f"HTTP {response.status_code}: {response.text[:300]}")


def backoff(attempt: int) -> timedelta:
    """The wait after failed attempt `attempt` (1, 2, ...): base * 2**(attempt-1), capped."""
    base = settings.OUTBOUND_WEBHOOK_BACKOFF_SECONDS
    return timedelta(seconds=min(base * (2 ** max(attempt - 1, 0)), settings.OUTBOUND_WEBHOOK_BACKOFF_MAX_SECONDS))


def send_mail(*, to: str, subject: str, body: str) -> None:
    EmailMessage(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=[to]).send()
