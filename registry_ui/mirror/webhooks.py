"""The MLflow webhook receiver: verify, de-duplicate, enqueue a targeted sync of the named model, answer 202.

MLflow signs Standard-Webhooks style: X-MLflow-Signature is `v1,<base64 HMAC-SHA256>` over
`<delivery id>.<timestamp>.<raw body>` with the shared secret. A delivery is a hint, never the truth:
the worker re-reads the model from MLflow (sync_model_task) rather than trusting the payload, and the
full reconciliation still runs (MLflow sends nothing for stage transitions or deletions). MLflow's
delivery never waits on our sync: the receiver only records the delivery and enqueues, in one
transaction (with the database task backend, the delivery is remembered exactly when its sync is queued).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from registry_ui.mirror.models import WebhookDelivery
from registry_ui.mirror.tasks import sync_model_task

log = logging.getLogger(__name__)


class WebhookRejected(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


def signature(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()


def verify(*, secret: str, delivery_id: str, timestamp: str, signature_header: str, body: bytes,
           now: float | None = None, tolerance: int = 300) -> None:
    """Raise WebhookRejected unless the delivery is signed with `secret` and fresh."""
    if not secret:
        raise WebhookRejected(503, "webhook secret not configured (MLFLOW_WEBHOOK_SECRET)")
    if not (delivery_id and timestamp and signature_header):
        raise WebhookRejected(401, "missing signature headers")
    expected = signature(secret, delivery_id, timestamp, body)
    # The header may carry several space-separated signatures (secret rotation).
    if not any(hmac.compare_digest(expected, candidate) for candidate in signature_header.split()):
        raise WebhookRejected(401, "bad signature")
    try:
        sent = int(timestamp)
    except ValueError:
        raise WebhookRejected(400, "bad timestamp") from None
    if abs((now if now is not None else time.time()) - sent) > tolerance:
        raise WebhookRejected(400, "stale timestamp")


@csrf_exempt  # authenticated by the HMAC signature, not a session
@require_POST
def mlflow_webhook(request):
    body = request.body
    try:
        verify(secret=settings.MLFLOW_WEBHOOK_SECRET,
               delivery_id=request.headers.get("X-MLflow-Delivery-Id", ""),
               timestamp=request.headers.get("X-MLflow-Timestamp", ""),
               signature_header=request.headers.get("X-MLflow-Signature", ""), body=body,
               tolerance=settings.MLFLOW_WEBHOOK_TOLERANCE_SECONDS)
        payload = json.loads(body)
        event = f"{payload.get('entity', '')}.{payload.get('action', '')}"
        name = (payload.get("data") or {}).get("name") or ""
        if not isinstance(name, str) or not name:
            raise WebhookRejected(400, "payload names no model")
    except WebhookRejected as exc:
        return JsonResponse({"detail": exc.detail}, status=exc.status)
    except (ValueError, AttributeError):
        return JsonResponse({"detail": "body is not a webhook payload"}, status=400)

    delivery_id = request.headers["X-MLflow-Delivery-Id"][:128]
    try:
        with transaction.atomic():
            WebhookDelivery.objects.create(delivery_id=delivery_id, received_at=timezone.now(),
                                           event=event[:64], model_name=name[:256])
            result = sync_model_task.enqueue(name)
    except IntegrityError:
        return JsonResponse({"detail": "duplicate delivery ignored", "delivery_id": delivery_id})
    except Exception as exc:  # noqa: BLE001 - the queue is down (e.g. Redis): MLflow retries the same id
        log.warning("webhook %s: could not enqueue the sync of %r: %s", delivery_id, name, exc)
        return JsonResponse({"detail": "task queue unavailable, retry later"}, status=503)
    return JsonResponse({"detail": "sync enqueued", "model": name, "delivery_id": delivery_id,
                         "task_id": str(result.id)}, status=202)
