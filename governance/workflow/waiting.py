"""Long-poll of a promotion request: a pipeline asks "tell me when request 12 is no longer pending" and
the answer comes as soon as the state changes, or after a bounded wait. Reads only; one indexed query per
poll interval. A waiting call holds a web worker: size the server for the pipelines that wait (or use the
event feed)."""

from __future__ import annotations

import time

from django.conf import settings

from governance.workflow.models import PromotionRequest
from governance.workflow.services import get_request_for


def request_wait(*, user, request_id: int, while_state: str, timeout: float,
                 interval: float | None = None) -> PromotionRequest:
    """The request, once its state is no longer `while_state` or `timeout` seconds have passed
    (capped by API_WAIT_MAX_SECONDS). Visibility as for a plain read (NotFound otherwise)."""
    timeout = max(0.0, min(float(timeout), float(settings.API_WAIT_MAX_SECONDS)))
    interval = interval if interval is not None else settings.API_WAIT_POLL_SECONDS
    deadline = time.monotonic() + timeout
    req = get_request_for(user, request_id)
    while req.state == while_state and time.monotonic() < deadline:
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        current = PromotionRequest.objects.filter(pk=req.pk).values_list("state", flat=True).first()
        if current != req.state:
            req = get_request_for(user, request_id)
    return req
