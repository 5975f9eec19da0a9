"""Signed checkpoints: the audit chain anchored outside the database.

A hash chain alone does not stop someone with write access to the database: they can edit a row and
recompute every later hash. A checkpoint (seq, head hash, count, time) signed with HMAC-SHA256 under
AUDIT_SIGNING_KEY (from the environment, never stored in the database) and appended as a file to the
"audit_checkpoints" storage (AUDIT_CHECKPOINT_DIR by default, a place the database cannot write; an
object store shared by every node in production, see storage.py) pins what the chain was. verify_audit
checks the chain against every checkpoint.

A checkpoint also pins its own `audit.checkpoint` event (written under the chain lock, in the same
transaction, before the file), so deleting or altering that event is caught, and keeps digests of the
events since the previous checkpoint, so a rewritten chain is blamed on the first event that changed.
Older files without these fields are still checked (their seq and head hash, and that an
audit.checkpoint event names them).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from governance import audit
from governance.audit import chain
from governance.audit.models import AuditEvent
from governance.audit.storage import checkpoint_storage

# Past this many events since the previous checkpoint, digests cover spans of several events (the
# report then names the first changed span), which keeps a file under about 1 MB.
MAX_DIGESTS = 65536


class CheckpointError(Exception):
    """A checkpoint cannot be written or one on disk is invalid (bad signature, unreadable)."""


@dataclass
class Checkpoint:
    seq: int
    head_hash: str
    count: int
    created_at: str
    signature: str
    file: str = ""
    # Newer checkpoints: their own audit.checkpoint event, and digests {"from", "to", "step", "values"}.
    event_seq: int | None = None
    event_hash: str = ""
    digests: dict | None = None
    pins_signature: str = ""  # signs the four fields plus event_seq, event_hash and digests

    def as_dict(self) -> dict:
        data = {"seq": self.seq, "head_hash": self.head_hash, "count": self.count,
                "created_at": self.created_at, "signature": self.signature, "file": self.file}
        if self.event_seq is not None:
            data.update(event_seq=self.event_seq, event_hash=self.event_hash, digests=self.digests,
                        pins_signature=self.pins_signature)
        return data


def checkpoint_dir() -> Path:
    return Path(settings.AUDIT_CHECKPOINT_DIR)


def _key() -> bytes:
    key = getattr(settings, "AUDIT_SIGNING_KEY", "") or ""
    if not key:
        raise CheckpointError("AUDIT_SIGNING_KEY is not set: cannot sign or check checkpoints")
    return key.encode("utf-8")


def has_key() -> bool:
    return bool(getattr(settings, "AUDIT_SIGNING_KEY", ""))


def _signed_part(seq: int, head_hash: str, count: int, created_at: str, **extra) -> bytes:
    payload = {"seq": seq, "head_hash": head_hash, "count": count, "created_at": created_at}
    if extra:
        payload.update(event_seq=extra["event_seq"], event_hash=extra["event_hash"], digests=extra["digests"])
    return audit.canonical_json(payload).encode("utf-8")


def sign(seq: int, head_hash: str, count: int, created_at: str, **extra) -> str:
    """HMAC of the four original fields; with `extra` (event_seq, event_hash, digests), of all of them.
    A file carries both signatures, so a checker that knows only the original four keeps working."""
    return hmac.new(_key(), _signed_part(seq, head_hash, count, created_at, **extra), hashlib.sha256).hexdigest()


def write_checkpoint() -> Checkpoint:
    """Sign the current head, record the audit.checkpoint event and append the file (never overwrites
    one), all under the chain lock in one transaction: the file pins the event, and if the file cannot
    be written the event is rolled back."""
    _key()  # fail before touching the storage
    storage = checkpoint_storage()
    name, written = None, False
    try:
        with transaction.atomic():
            chain.lock_chain()
            seq, head_hash = audit.chain_head()
            count = seq  # seq is gap-free from 1 in an intact chain; verify_audit checks the real count
            # Digests start where the last signed file stopped pinning (not at the chain's last
            # audit.checkpoint event: the files are what the database cannot rewrite).
            previous = max((c.event_seq or c.seq for c in load_checkpoints() if (c.event_seq or c.seq) <= seq),
                           default=0)
            created_at = audit.format_timestamp(timezone.now())
            stamp = created_at.replace(":", "").replace("-", "").replace(".", "")
            name = f"checkpoint-{seq:012d}-{stamp}.json"
            event = audit.record(actor_name="system:audit", action="audit.checkpoint",
                                 after={"seq": seq, "head_hash": head_hash, "file": name},
                                 comment=f"signed checkpoint {name}")
            first, last = previous + 1, event.seq
            step = max(1, math.ceil((last - first + 1) / MAX_DIGESTS))
            digests = {"from": first, "to": last, "step": step,
                       "values": "".join(chain.span_digests(first, last, step))}
            extra = {"event_seq": event.seq, "event_hash": event.hash, "digests": digests}
            cp = Checkpoint(seq=seq, head_hash=head_hash, count=count, created_at=created_at,
                            signature=sign(seq, head_hash, count, created_at),
                            pins_signature=sign(seq, head_hash, count, created_at, **extra), **extra)
            body = json.dumps({k: v for k, v in cp.as_dict().items() if k != "file"}, indent=2,
                              sort_keys=True) + "\n"
            # Append-only in spirit: a checkpoint is created once, never rewritten nor renamed.
            if storage.exists(name):
                raise CheckpointError(f"checkpoint {name} exists already")
            saved = storage.save(name, ContentFile(body.encode("utf-8")))
            written = True
            if saved != name:
                raise CheckpointError(f"the checkpoint storage saved {name} as {saved}")
    except BaseException:
        # The event did not commit: a file pinning it would be a false alarm at the next verify.
        if written:
            storage.delete(saved)
        raise
    cp.file = name
    return cp


def checkpoint_names() -> list[str]:
    """The checkpoints in the storage, oldest first (names sort by seq, then time)."""
    try:
        _, files = checkpoint_storage().listdir("")
    except FileNotFoundError:  # the folder of the file-system storage does not exist yet
        return []
    return sorted(f for f in files if f.startswith("checkpoint-") and f.endswith(".json"))


def latest_checkpoint_name() -> str | None:
    names = checkpoint_names()
    return names[-1] if names else None


def checkpoint_written_at(name: str) -> float:
    """When a checkpoint was written (POSIX time), as its storage says (any node, any backend)."""
    return checkpoint_storage().get_modified_time(name).timestamp()


def open_checkpoint(name: str):
    return checkpoint_storage().open(name, "rb")


def read_checkpoint(name: str) -> bytes:
    with open_checkpoint(name) as fh:
        return fh.read()


def load_checkpoint(name: str, key: bytes | None = None) -> Checkpoint:
    """One checkpoint from the storage, signature checked; raises CheckpointError naming a bad file."""
    key = key if key is not None else _key()
    try:
        data = json.loads(read_checkpoint(name).decode("utf-8"))
        seq, head_hash, count, created_at = (int(data["seq"]), str(data["head_hash"]), int(data["count"]),
                                             str(data["created_at"]))
        signature = str(data["signature"])
        extra, pins_signature = {}, ""
        if data.get("event_seq") is not None:
            extra = {"event_seq": int(data["event_seq"]), "event_hash": str(data["event_hash"]),
                     "digests": dict(data["digests"])}
            pins_signature = str(data["pins_signature"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {name} is unreadable: {exc}") from exc
    signed = [(signature, _signed_part(seq, head_hash, count, created_at))]
    if extra:
        signed.append((pins_signature, _signed_part(seq, head_hash, count, created_at, **extra)))
    for given, part in signed:
        if not hmac.compare_digest(hmac.new(key, part, hashlib.sha256).hexdigest(), given):
            raise CheckpointError(f"checkpoint {name} has an invalid signature (forged or altered)")
    return Checkpoint(seq=seq, head_hash=head_hash, count=count, created_at=created_at, signature=signature,
                      file=name, pins_signature=pins_signature, **extra)


def load_checkpoints() -> list[Checkpoint]:
    """Every checkpoint in the storage, signature checked; raises CheckpointError naming a bad file."""
    names = checkpoint_names()
    key = _key() if names else b""
    return [load_checkpoint(name, key) for name in names]


def latest_checkpoint_path() -> Path | None:
    """The newest checkpoint as a local file (file-system storage only; tests and operators' scripts)."""
    name = latest_checkpoint_name()
    return Path(checkpoint_storage().path(name)) if name else None


def _missing_checkpoints(cps: list[Checkpoint], names: set[str] | None = None) -> str:
    """Checkpoint files and audit.checkpoint events must match one to one: an event whose file is gone
    (a signed checkpoint removed to hide a rewrite), or an older file whose event is gone. Newer files
    pin their event's hash, which the chain walk checks. `names`: every file in the storage (default:
    those of `cps`)."""
    names = names if names is not None else {cp.file for cp in cps}
    recorded = {}
    for seq, after in AuditEvent.objects.filter(action="audit.checkpoint").order_by("seq").values_list("seq",
                                                                                                       "after"):
        name = (after or {}).get("file") if isinstance(after, dict) else None
        if name:
            recorded.setdefault(name, seq)
    for name, seq in recorded.items():
        if name not in names:
            return (f"the audit.checkpoint event at seq {seq} names {name}, which is missing from "
                    f"AUDIT_CHECKPOINT_DIR (a signed checkpoint was removed)")
    for cp in cps:
        if cp.event_seq is None and cp.file not in recorded:
            return (f"signed checkpoint {cp.file} (seq {cp.seq}) has no audit.checkpoint event in the chain: "
                    "the event is missing (deleted)")
    return ""


def _failed(reason: str) -> audit.Verification:
    seq, head = audit.chain_head()
    return audit.Verification(ok=False, count=0, head_seq=seq or None, head_hash=head, broken_seq=None,
                              reason=reason, verified_at=audit.format_timestamp(timezone.now()))


def verify(*, use_checkpoints: bool = True, whole: bool = True) -> audit.Verification:
    """The chain checked against the signed checkpoints (when a key is configured).

    whole=True: every event from seq 1, re-hashed, against every checkpoint. whole=False: incremental
    (see verify_incremental), or the whole chain when there is no signed checkpoint to start from.
    """
    notes = []
    if not whole and use_checkpoints and has_key():
        result = verify_incremental()
        if result is not None:
            return result
        notes.append("no signed checkpoint yet: the whole chain was verified")
    loaded: list[Checkpoint] = []
    if use_checkpoints:
        if has_key():
            try:
                loaded = load_checkpoints()
            except CheckpointError as exc:
                return _failed(str(exc))
        else:
            notes.append("AUDIT_SIGNING_KEY unset: signed checkpoints not checked, the whole chain was verified")
    result = audit.verify_chain([c.as_dict() for c in loaded])
    if result.ok and use_checkpoints and has_key():
        reason = _missing_checkpoints(loaded)
        if reason:
            result.ok, result.reason = False, reason
    result.notes.extend(notes)
    return result


def verify_incremental() -> audit.Verification | None:
    """Verify from the newest signed checkpoint on; None when there is none.

    What it covers: that checkpoint's signature; that the chain still holds, at the seq it signed and at
    its own audit.checkpoint event, exactly the hashes it pinned (so any rewrite of the chain that
    recomputed the hashes up to there is caught); every event after it (content hash, link, order, time,
    no gap, nothing deleted from the end); and that no audit.checkpoint event names a file missing from
    the storage. What it does not: re-hashing each event before the checkpoint, so a row edited in place
    without touching the hashes up to the checkpoint stays unseen until the whole chain is verified
    (verify_audit --whole, "Verify whole chain"), which the pages and the command offer.

    When the checkpoint no longer matches the chain, the whole chain is walked to name the first event
    that changed (that costs the full walk only when something is wrong).
    """
    names = checkpoint_names()
    if not names:
        return None
    name = names[-1]
    try:
        cp = load_checkpoint(name)
    except CheckpointError as exc:
        return _failed(str(exc))
    anchor = cp.event_seq if cp.event_seq is not None else cp.seq
    if not anchor:  # signed over an empty chain: there is nothing to start from but the beginning
        result = verify(whole=True)
        result.notes.append(f"the newest signed checkpoint {name} was signed over an empty trail: the whole "
                            "chain was verified")
        return result
    stored = {seq: (stored_hash, ts) for seq, stored_hash, ts in
              AuditEvent.objects.filter(seq__in={cp.seq, anchor}).values_list("seq", "hash", "timestamp")}
    # A checkpoint signed over an empty trail pins no event at seq 0 (there is none), only its own event.
    pins = ([(cp.seq, cp.head_hash)] if cp.seq else []) + (
        [(cp.event_seq, cp.event_hash)] if cp.event_seq is not None else [])
    if any(stored.get(seq, ("",))[0] != pinned for seq, pinned in pins):
        result = verify(whole=True)
        if result.ok:  # the whole walk checks the same pins: only a change racing this check lands here
            result.ok, result.reason = False, f"the chain no longer matches signed checkpoint {name}"
        result.notes.append(f"the chain differs from the newest signed checkpoint {name}: the whole chain was "
                            "verified to name the first change")
        return result
    hash_at, ts_at = stored[anchor]
    result = audit.verify_chain([cp.as_dict()], start=(anchor, hash_at, audit.format_timestamp(ts_at)))
    result.scope, result.from_seq, result.checkpoint_file = "incremental", anchor, name
    if result.ok:
        result.checkpoints_checked = 1
        reason = _missing_checkpoints([cp], set(names))
        if reason:
            result.ok, result.reason = False, reason
    return result
