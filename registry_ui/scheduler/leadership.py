"""Heartbeats and leases in the database, so that several machines agree without a coordinator.

- `beat(node_id=..., kind=...)`: a process says it is alive (one row per process, upserted).
- `hold(name, holder=..., seconds=...)`: claim or renew a named lease with one conditional UPDATE
  (free, expired, or already ours); True when `holder` holds it now. The scheduler calls it every tick:
  of any number of candidates exactly one leads, and when the leader dies (SIGKILL, power loss) its
  lease runs out and the next candidate's tick takes it. `release` gives it up at once on a clean stop.

Time is the nodes' clocks (timezone.now()); keep them in sync (NTP): a skew shortens or lengthens a
lease by as much.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from registry_ui.scheduler.models import Heartbeat, Lease, NodeKind

SCHEDULER_LEASE = "scheduler"


def node_id(kind: str) -> str:
    """An id for this process: kind, host, pid and a random suffix (a pid is reused after a restart)."""
    return f"{kind}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def beat(*, node_id: str, kind: str) -> None:
    now = timezone.now()
    if Heartbeat.objects.filter(node_id=node_id).update(last_beat_at=now):
        return
    try:
        with transaction.atomic():
            Heartbeat.objects.create(node_id=node_id, kind=kind, host=socket.gethostname()[:255], pid=os.getpid(),
                                     started_at=now, last_beat_at=now)
    except IntegrityError:  # created meanwhile by the same id (a retried task): a beat is a beat
        Heartbeat.objects.filter(node_id=node_id).update(last_beat_at=now)


def hold(name: str, *, holder: str, seconds: float) -> bool:
    """Claim or renew the lease `name` for `seconds`; True when `holder` holds it afterwards."""
    now = timezone.now()
    until = now + timedelta(seconds=seconds)
    free = Q(holder="") | Q(expires_at__isnull=True) | Q(expires_at__lt=now)
    if Lease.objects.filter(name=name, holder=holder).filter(expires_at__gte=now).update(expires_at=until):
        return True
    if Lease.objects.filter(name=name).filter(free).update(holder=holder, acquired_at=now, expires_at=until):
        return True
    try:
        with transaction.atomic():
            Lease.objects.create(name=name, holder=holder, acquired_at=now, expires_at=until)
        return True
    except IntegrityError:  # the row exists: someone else holds it (live)
        return False


def release(name: str, *, holder: str) -> None:
    Lease.objects.filter(name=name, holder=holder).update(holder="", expires_at=None)


def current_holder(name: str) -> Lease | None:
    """The lease row when someone holds it now, else None."""
    lease = Lease.objects.filter(name=name).first()
    if lease is None or not lease.holder or lease.expires_at is None or lease.expires_at < timezone.now():
        return None
    return lease


def newest_beat(kind: str) -> Heartbeat | None:
    return Heartbeat.objects.filter(kind=kind).order_by("-last_beat_at").first()


def forget_silent(*, older_than: timedelta) -> int:
    """Drop the rows of processes silent for longer than `older_than` (stopped or replaced nodes)."""
    deleted, _ = Heartbeat.objects.filter(last_beat_at__lt=timezone.now() - older_than).delete()
    return deleted


__all__ = ["SCHEDULER_LEASE", "NodeKind", "beat", "current_holder", "forget_silent", "hold", "newest_beat",
           "node_id", "release"]
