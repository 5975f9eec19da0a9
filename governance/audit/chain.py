"""The one way to write the audit trail, and the one way to check it.

Every state change calls record() inside its own transaction, so an event exists if and only if the
change it records was committed. Each row carries the SHA-256 of a canonical JSON of its content plus
the previous row's hash. Writers are serialised so the chain never forks: on PostgreSQL a
transaction-scoped advisory lock; on SQLite the IMMEDIATE transaction (see settings) already holds
the database's single write lock from BEGIN.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from governance.audit.models import AuditEvent
from registry_ui.client_ip import normalise_ip

GENESIS_HASH = "0" * 64
# Arbitrary constant key of the advisory lock that serialises audit writers on PostgreSQL.
PG_LOCK_KEY = 0x4D4743_4155  # "MGC" "AU"

# The fixed, namespaced vocabulary. Extend it here, nowhere else.
ACTIONS = frozenset(
    {
        "request.created",
        "request.approved",
        "request.rejected",
        "request.cancelled",
        # A deploy found that a gate which passed at approval now fails on evidence read from MLflow:
        # the request went back to pending, its approvals superseded; before/after hold the difference.
        "request.reapproval_required",
        # Request, approve or deploy refused because MLflow could not be read (nothing changed).
        "request.evidence_unavailable",
        # Break-glass: an ops user with the break-glass permission approved their own emergency request
        # (reason mandatory); the review of it by an approver, after the fact.
        "request.break_glass",
        "emergency.review_closed",
        # Re-certification: an approver confirmed a protected holder again; the reminder run's summary.
        "recertification.confirmed",
        "recertification.reminded",
        # Model risk (governance.risk): a tier change requested, approved (the tier takes effect) or
        # rejected by a second person; findings raised, proposed for closure, closed (accepted by someone
        # other than the owner) or sent back open; the overdue reminder's summary per model.
        "tier.change_requested",
        "tier.changed",
        "tier.change_rejected",
        "finding.raised",
        "finding.closure_proposed",
        "finding.closed",
        "finding.closure_declined",
        "finding.overdue",
        # Model cards (governance.cards): an edit applied directly or proposed for a second approver,
        # approved or rejected; the card written to MLflow (or not); a tier's card template changed or
        # set back to the built-in one.
        "model_card.edited",
        "model_card.proposed",
        "model_card.approved",
        "model_card.rejected",
        "model_card.published",
        "model_card.publish_failed",
        "card_template.changed",
        "card_template.reset",
        "deploy.started",
        "deploy.succeeded",
        "deploy.failed",
        # The outbox resolver's decisions on a write of unknown outcome, with what it read from MLflow
        # (an "applied" decision is the deploy.succeeded event it records).
        "deploy.not_applied",
        "deploy.outcome_unknown",
        # A retention batch left a listed version alone: MLflow showed it protected at the deploy.
        "deploy.skipped",
        # The write-back tags of a deploy the sync credited (its write landed late), written afterwards.
        "deploy.tags_written",
        # A retention batch finished: which versions it archived or deleted, which it skipped.
        "retention.applied",
        # A validation queued (by a request, a re-run, a deploy) and finished (passed or failed, with why).
        "validation.requested",
        "validation.finished",
        "registry.drift",
        "registry.synced",
        "sync.requested",
        "registry.model_created",
        "registry.model_deleted",
        "registry.model_renamed",
        "registry.version_created",
        "registry.version_deleted",
        "registry.tag_set",
        "registry.tag_changed",
        "registry.tag_removed",
        "registry.description_changed",
        "registry.run_deleted",
        "registry.run_restored",
        "registry.metrics_changed",
        "permission.granted",
        "permission.revoked",
        "group.member_added",
        "group.member_removed",
        "group.created",
        "group.changed",
        "group.deleted",
        "policy.created",
        "policy.changed",
        "policy.deleted",
        "user.created",
        "user.changed",
        "user.privileges_changed",
        "user.activated",
        "user.deactivated",
        "user.deleted",
        "user.login",
        "user.login_failed",
        "user.logout",
        "report.exported",
        "audit.checkpoint",
        # Outbound webhooks (governance.notify): subscriptions are configuration, a re-send is a decision.
        "subscription.created",
        "subscription.changed",
        "subscription.deleted",
        "delivery.resent",
        # API tokens (governance/tokens/services.py): the name, scope, first characters and expiry, never
        # the secret.
        "token.issued",
        "token.revoked",
        "audit.verified",
    }
)


class UnknownAuditAction(ValueError):
    pass


# --------------------------------------------------------------------------------------------------
# Canonical form
# --------------------------------------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    """What JSONField stores and returns unchanged: no NaN/inf (PostgreSQL jsonb refuses them), no
    Decimal/datetime/UUID objects (encoded as strings once, so the stored value is the hashed one)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def format_timestamp(ts: datetime) -> str:
    """Canonical UTC time with microseconds: 2026-01-31T12:00:00.000000Z."""
    if ts.utcoffset():
        ts = ts.astimezone(UTC)
    text = ts.replace(tzinfo=None).isoformat()  # isoformat is several times faster than strftime
    return text + ("Z" if ts.microsecond else ".000000Z")


def _canon(value: Any) -> Any:
    # PostgreSQL jsonb returns an integral float such as 1e20 as an integer: hash both the same way.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _canon(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canon(v) for v in value]
    return value


def canonical_json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def hash_fields(*, seq, timestamp, actor_username, action, model_name, version, request_id, before, after,
                comment, source_ip, prev_hash) -> str:
    """SHA-256 over the canonical JSON of one row's content plus the previous row's hash."""
    payload = {
        "seq": seq,
        "timestamp": format_timestamp(timestamp),
        "actor": actor_username,
        "action": action,
        "model": model_name,
        "version": version,
        "request": request_id,
        "before": _canon(before),
        "after": _canon(after),
        "comment": comment,
        "source_ip": source_ip,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


# Field order used by hash_fields, the verifier and the bulk seeder.
HASHED_FIELDS = ("seq", "timestamp", "actor_username", "action", "model_name", "version", "request_id",
                 "before", "after", "comment", "source_ip", "prev_hash")


def compute_hash(event: AuditEvent) -> str:
    return hash_fields(**{name: getattr(event, name) for name in HASHED_FIELDS})


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------


def lock_chain() -> None:
    """Hold the chain's writer lock until the caller's transaction ends (a checkpoint reads the head
    and appends its own event under it, so nothing slips in between)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PG_LOCK_KEY])
    # SQLite: the IMMEDIATE transaction already holds the database write lock.


def record(
    *,
    actor=None,
    actor_name: str | None = None,
    action: str,
    model: str | Any = "",
    version: int | None = None,
    request: int | Any | None = None,
    before: Any = None,
    after: Any = None,
    comment: str = "",
    source_ip: str | None = None,
) -> AuditEvent:
    """Append one event. `actor` is a User or None (then `actor_name`, e.g. "system:sync", names it).

    `model` may be a RegisteredModel or a name; `request` an object with a pk or an id.
    Must be called inside the caller's transaction.atomic() block.
    """
    if action not in ACTIONS:
        raise UnknownAuditAction(action)
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    name = actor.get_username() if actor is not None else (actor_name or "anonymous")
    model_name = getattr(model, "name", model) or ""
    request_id = getattr(request, "pk", request)
    with transaction.atomic():
        lock_chain()
        last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash", "timestamp").first()
        now = timezone.now()
        event = AuditEvent(
            seq=(last[0] + 1) if last else 1,
            # Never earlier than the previous event (a wall clock may step back): time order is seq
            # order, which lets date filters become seq ranges and makes a reordered row visible.
            timestamp=max(now, last[2]) if last else now,
            actor=actor,
            actor_username=name[:150],
            action=action,
            model_name=str(model_name)[:256],
            version=int(version) if version is not None else None,
            request_id=int(request_id) if request_id is not None else None,
            before=_json_safe(before),
            after=_json_safe(after),
            comment=comment or "",
            source_ip=normalise_ip(source_ip),
            prev_hash=last[1] if last else GENESIS_HASH,
        )
        event.hash = compute_hash(event)
        event.save(force_insert=True)
    return event


# --------------------------------------------------------------------------------------------------
# Verifying
# --------------------------------------------------------------------------------------------------


@dataclass
class Verification:
    ok: bool
    count: int
    head_seq: int | None
    head_hash: str
    broken_seq: int | None = None
    reason: str = ""
    checkpoints_checked: int = 0
    notes: list[str] = field(default_factory=list)
    verified_at: str = ""
    # "whole": every event from seq 1. "incremental": the events after the newest signed checkpoint,
    # which was checked against the chain at `from_seq` (its own audit.checkpoint event).
    scope: str = "whole"
    from_seq: int | None = None
    checkpoint_file: str = ""

    def summary(self) -> str:
        if self.ok:
            extra = f", {self.checkpoints_checked} signed checkpoint(s) matched" if self.checkpoints_checked else ""
            if self.scope == "incremental":
                return (f"audit chain intact since signed checkpoint {self.checkpoint_file} (seq {self.from_seq}): "
                        f"{self.count} later events verified, head seq {self.head_seq}; events up to seq "
                        f"{self.from_seq} are vouched for by that checkpoint (verify the whole chain to re-hash "
                        "them)")
            return f"audit chain intact: {self.count} events, head seq {self.head_seq}{extra}"
        if self.broken_seq is None:
            return f"audit verification FAILED: {self.reason}"
        return f"audit chain BROKEN at seq {self.broken_seq}: {self.reason}"

    def as_dict(self) -> dict:
        return {**asdict(self), "summary": self.summary()}


def _parse_float(text: str):
    value = float(text)
    return int(value) if value.is_integer() else value


# One decoder for every row: json.loads(..., parse_float=...) builds a new decoder per call, which was
# a fifth of the verifier's time.
_decode_json = json.JSONDecoder(parse_float=_parse_float).decode


def _json_from_db(value):
    """A JSON column as the canonical form hashes it (integral floats as ints, like _canon)."""
    if value is None:
        return None
    if isinstance(value, str):
        return _decode_json(value)  # JSONField stored a JSON document; SQL NULL vs JSON null are both None here
    return _canon(value)


def _timestamp_from_db(value) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:  # SQLite: naive UTC
            return value.isoformat() + ("Z" if value.microsecond else ".000000Z")
        return format_timestamp(value)
    # SQLite text (read with CAST AS TEXT). Django writes "YYYY-MM-DD HH:MM:SS[.ffffff]" in UTC; any other
    # spelling (an offset, a "T") is parsed the way the driver's converter would have.
    text = str(value)
    if len(text) in (19, 26) and text[10] == " " and text[4] == "-":
        return text.replace(" ", "T") + ("Z" if len(text) == 26 else ".000000Z")
    if len(text) == 27 and text[10] == "T" and text[26] == "Z" and text[4] == "-":
        return text  # already canonical (PostgreSQL's to_char above)
    parsed = parse_datetime(text)
    if parsed is None:
        return text  # not a time at all: hashes as itself, so the row is reported as edited
    return _timestamp_from_db(parsed)


def _raw_rows(after: int = -(2**62), chunk: int = 20000) -> Iterator[tuple]:
    """Every row after seq `after` in seq order by keyset pages, straight from the cursor (no ORM
    conversion: the verifier handles 1,000,000 rows, and model instances would triple the per-row cost)."""
    table = AuditEvent._meta.db_table
    quote = connection.ops.quote_name
    # Read the timestamp as text instead of letting the driver build a datetime only for us to format it
    # back (on PostgreSQL that was 40% of the verifier's time). SQLite: its stored text
    # ("YYYY-MM-DD HH:MM:SS[.ffffff]", UTC). PostgreSQL: the canonical form itself (format_timestamp).
    # The JSON details as text too: psycopg would parse jsonb into dicts and _canon() would then walk
    # them in Python; one C decode of the text (integral floats as ints) gives the same values.
    if connection.vendor == "postgresql":
        timestamp = f"""to_char({quote('timestamp')} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
        columns = {"timestamp": timestamp, "before": f"{quote('before')}::text", "after": f"{quote('after')}::text"}
    else:
        columns = {"timestamp": f"CAST({quote('timestamp')} AS TEXT)"}
    select = ", ".join(columns.get(c, quote(c)) for c in (*HASHED_FIELDS, "hash"))
    sql = f"SELECT {select} FROM {table} WHERE seq > %s ORDER BY seq LIMIT %s"  # noqa: S608 - constants only
    while True:
        with connection.cursor() as cursor:
            cursor.execute(sql, [after, chunk])
            page = cursor.fetchall()
        if not page:
            return
        yield from page
        after = page[-1][0]


# A signed checkpoint keeps, for the events since the previous checkpoint, one short digest per span of
# `step` events (one per event unless the range is very long). After an edit followed by recomputing
# every later hash, the chain is self-consistent again; these digests still remember what each stored
# hash was, so the verifier can name the first event that changed instead of the checkpoint that
# noticed.
DIGEST_CHARS = 16  # 64 bits per span: enough that nobody grinds an edited row to the same prefix


def _stored_hashes(first: int, last: int, chunk: int = 50000) -> Iterator[tuple[int, str]]:
    table = AuditEvent._meta.db_table
    sql = f"SELECT seq, hash FROM {table} WHERE seq >= %s AND seq <= %s ORDER BY seq LIMIT %s"  # noqa: S608
    start = first
    while start <= last:
        with connection.cursor() as cursor:
            cursor.execute(sql, [start, last, chunk])
            page = cursor.fetchall()
        if not page:
            return
        yield from page
        start = page[-1][0] + 1


def span_digests(first: int, last: int, step: int) -> list[str]:
    """One digest per span [first + i*step, first + (i+1)*step - 1] (the last span ends at `last`) over
    the stored hashes of the rows there; a missing row changes its span's digest too."""
    spans = (last - first) // step + 1 if last >= first else 0
    parts: list[list[str]] = [[] for _ in range(spans)]
    for seq, stored in _stored_hashes(first, last):
        parts[(seq - first) // step].append(f"{seq}:{stored};")
    return [hashlib.sha256("".join(p).encode("ascii")).hexdigest()[:DIGEST_CHARS] for p in parts]


def first_divergence(digests: dict | None, upto: int) -> tuple[int, int] | None:
    """The first span (first seq, last seq) up to `upto` whose rows no longer have the stored hashes
    the checkpoint recorded; None when they all match (or the checkpoint keeps no digests).

    `digests` is {"from", "to", "step", "values"}: the concatenated per-span digests over [from, to]."""
    if not digests:
        return None
    first, last, step = int(digests["from"]), int(digests["to"]), int(digests["step"])
    values = str(digests["values"])
    recorded = [values[i:i + DIGEST_CHARS] for i in range(0, len(values), DIGEST_CHARS)]
    upto = min(upto, last)
    if upto < first:
        return None
    # Whole spans only: a span compares only when read over the same seqs the checkpoint read.
    end = min(first + ((upto - first) // step + 1) * step - 1, last)
    for i, now in enumerate(span_digests(first, end, step)):
        if i >= len(recorded) or now != recorded[i]:
            start = first + i * step
            return start, min(start + step - 1, end)
    return None


def _span_text(span: tuple[int, int]) -> str:
    return f"seq {span[0]}" if span[0] == span[1] else f"seq {span[0]}..{span[1]}"


def verify_chain(checkpoints: list[dict] | None = None, *, start: tuple[int, str, str] | None = None) -> Verification:
    """Walk the chain in seq order; name the first broken link and why.

    `start` (seq, stored hash, canonical timestamp) of a row already vouched for (by a signed
    checkpoint): the walk begins after it instead of at seq 1, linking the first row to that hash.

    `checkpoints` are verified, signed checkpoints ({"seq", "head_hash", "count", "file"}, and for
    newer ones "event_seq"/"event_hash" of their own audit.checkpoint event plus "digests"). Each pins
    the hash the chain had at its seq, so an edit followed by recomputing every later hash is still
    caught; its digests then name the first event that changed; its pinned event makes deleting or
    altering the audit.checkpoint event visible.
    """
    pinned: dict[int, list[tuple[dict, str, str]]] = {}
    for cp in checkpoints or []:
        pinned.setdefault(cp["seq"], []).append((cp, cp["head_hash"], "head"))
        if cp.get("event_seq") is not None:
            pinned.setdefault(cp["event_seq"], []).append((cp, cp.get("event_hash", ""), "event"))
    expected_seq, prev_hash, count, head_hash, prev_ts = 1, GENESIS_HASH, 0, GENESIS_HASH, ""
    if start is not None:
        expected_seq, prev_hash, head_hash, prev_ts = start[0] + 1, start[1], start[1], start[2]
    matched = 0
    sha256 = hashlib.sha256
    encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
    encode_str = json.encoder.encode_basestring  # what that encoder does to a str (ensure_ascii=False)

    def enc(value) -> str:  # one scalar exactly as `encode` writes it; the common types without calling it
        kind = value.__class__
        if kind is str:
            return encode_str(value)
        if value is None:
            return "null"
        return str(value) if kind is int else encode(value)

    # Stored JSON text -> its canonical text. Recorded details repeat a lot ({"stage": ...}, {"ok": true}),
    # and decoding and re-encoding them was the biggest part of each row's cost; bounded so a trail of
    # unique details costs one dict lookup more per value, never memory.
    memo: dict[str, str] = {}

    def enc_json(value) -> str:
        if value is None:
            return "null"
        if value.__class__ is not str:
            return encode(_json_from_db(value))
        text = memo.get(value)
        if text is None:
            if len(memo) >= 4096:
                memo.clear()
            text = memo[value] = encode(_decode_json(value))
        return text

    def generic_text(seq, timestamp, actor, action, model, version, request_id, before, after, comment, ip,
                     row_prev) -> str:
        # canonical_json() of hash_fields' payload, written out field by field in sorted key order: the
        # same text (tests/test_audit_chain.py verifies odd content both ways), without building and
        # sorting a dict and walking it in the generic encoder for each of a million rows.
        return (f'{{"action":{enc(action)},"actor":{enc(actor)},"after":{enc_json(after)},'
                f'"before":{enc_json(before)},"comment":{enc(comment)},"model":{enc(model)},'
                f'"prev_hash":{enc(row_prev)},"request":{enc(request_id)},"seq":{enc(seq)},'
                f'"source_ip":{enc(ip)},"timestamp":{enc(timestamp)},"version":{enc(version)}}}')

    def result(seq, reason):
        return Verification(ok=False, count=count, head_seq=expected_seq - 1 or None, head_hash=head_hash,
                            broken_seq=seq, reason=reason, checkpoints_checked=matched,
                            verified_at=format_timestamp(timezone.now()))

    def broken(seq, reason):
        # A break the walk sees may be the second symptom of an earlier edit (an edited row re-hashed in
        # place breaks the NEXT link): the checkpoint covering this stretch knows which row changed first.
        for cp in checkpoints or []:
            digests = cp.get("digests")
            if digests and int(digests["from"]) <= seq <= int(cp.get("event_seq") or cp["seq"]):
                span = first_divergence(digests, seq)
                if span is not None and span[0] < seq:
                    return result(span[0], f"{_span_text(span)} no longer has the hash signed checkpoint "
                                           f"{cp.get('file', '')} recorded (edited and re-hashed); the chain "
                                           f"then breaks at seq {seq}: {reason}")
        return result(seq, reason)

    def checkpoint_mismatch(seq, cp, kind):
        where = f"signed checkpoint {cp.get('file', '')} (which pins seq {cp['seq']})"
        span = first_divergence(cp.get("digests"), seq)
        if kind == "event" and (span is None or span[0] >= seq):
            return result(seq, f"seq {seq} should be the audit.checkpoint event of {where} but its content "
                               "differs (checkpoint event deleted, replaced or altered)")
        if span is not None:
            return result(span[0], f"{_span_text(span)}: content no longer matches {where}; it was edited "
                                   "and every later hash recomputed (chain rewritten)")
        return result(seq, f"hash differs from {where} (chain rewritten after the checkpoint)")

    rows = _raw_rows(start[0]) if start is not None else _raw_rows()
    for seq, ts, actor, action, model, version, request_id, before, after, comment, ip, row_prev, stored in rows:
        if seq != expected_seq:
            if seq > expected_seq:
                missing = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq}..{seq - 1}"
                return broken(expected_seq, f"row missing (deleted row): seq {missing} absent, next is {seq}")
            return broken(seq, "sequence goes backwards (reordered row)")
        if row_prev != prev_hash:
            return broken(seq, f"does not link to seq {seq - 1}: prev_hash differs (reordered, replaced or "
                               "deleted row)")
        # The two spellings the database hands back, inline (a call per row counts at a million rows):
        # SQLite's stored text "YYYY-MM-DD HH:MM:SS.ffffff" and PostgreSQL's to_char, already canonical.
        if ts.__class__ is str and len(ts) == 26 and ts[10] == " " and ts[4] == "-":
            timestamp = ts.replace(" ", "T") + "Z"
        elif ts.__class__ is str and len(ts) == 27 and ts[26] == "Z" and ts[10] == "T" and ts[4] == "-":
            timestamp = ts
        else:
            timestamp = _timestamp_from_db(ts)
        try:
            # generic_text() unrolled for the usual types: the NOT NULL text columns straight to the C string
            # encoder, numbers as digits; row_prev equals the previous stored hash (checked above).
            text = (f'{{"action":{encode_str(action)},"actor":{encode_str(actor)},"after":{enc_json(after)},'
                    f'"before":{enc_json(before)},"comment":{encode_str(comment)},"model":{encode_str(model)},'
                    f'"prev_hash":{encode_str(row_prev)},"request":'
                    f'{"null" if request_id is None else (str(request_id) if request_id.__class__ is int else enc(request_id))},'  # noqa: E501
                    f'"seq":{seq},"source_ip":{"null" if ip is None else encode_str(ip)},'
                    f'"timestamp":{encode_str(timestamp)},"version":'
                    f'{"null" if version is None else (str(version) if version.__class__ is int else enc(version))}}}')
        except TypeError:  # a NULL or a number where text belongs (planted by hand): the generic path
            text = generic_text(seq, timestamp, actor, action, model, version, request_id, before, after, comment,
                                ip, row_prev)
        if sha256(text.encode("utf-8")).hexdigest() != stored:
            return broken(seq, "content does not match its hash (edited row)")
        if timestamp < prev_ts:
            return broken(seq, f"time goes backwards after seq {seq - 1} (reordered row)")
        for cp, expected, kind in pinned.get(seq, ()):
            if expected != stored:
                return checkpoint_mismatch(seq, cp, kind)
            if kind == "head":
                matched += 1
        prev_hash = head_hash = stored
        prev_ts = timestamp
        count += 1
        expected_seq += 1
    last_seq = expected_seq - 1
    beyond = [(seq, cp, kind) for seq, pins in pinned.items() if seq > last_seq for cp, _, kind in pins]
    if beyond:
        seq, cp, kind = min(beyond, key=lambda item: item[0])
        if kind == "event":
            return result(last_seq + 1, f"signed checkpoint {cp.get('file', '')} records its audit.checkpoint "
                                        f"event at seq {seq} but the chain ends at seq {last_seq}: the "
                                        "checkpoint event is missing (rows deleted from the end)")
        return result(last_seq + 1, f"signed checkpoint {cp.get('file', '')} records seq {seq} but the "
                                    f"chain ends at seq {last_seq} (rows deleted from the end)")
    return Verification(ok=True, count=count, head_seq=last_seq or None, head_hash=head_hash,
                        checkpoints_checked=matched, verified_at=format_timestamp(timezone.now()))


def chain_head() -> tuple[int, str]:
    last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    return last if last else (0, GENESIS_HASH)
