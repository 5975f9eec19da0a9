"""Signed checkpoints: the audit chain anchored outside the database.

A hash chain alone does not stop someone with write access to the database: they can edit a row and
recompute every later hash. A checkpoint (seq, head hash, count, time) signed with HMAC-SHA256 under
AUDIT_SIGNING_KEY (from the environment, never stored in the database) and appended as a file to
AUDIT_CHECKPOINT_DIR (a place the database cannot write) pins what the chain was. verify_audit
checks the chain against every checkpoint.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from governance import audit


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

    def as_dict(self) -> dict:
        return {"seq": self.seq, "head_hash": self.head_hash, "count": self.count,
                "created_at": self.created_at, "signature": self.signature, "file": self.file}


def checkpoint_dir() -> Path:
    return Path(settings.AUDIT_CHECKPOINT_DIR)


def _key() -> bytes:
    key = getattr(settings, "AUDIT_SIGNING_KEY", "") or ""
    if not key:
        raise CheckpointError("AUDIT_SIGNING_KEY is not set: cannot sign or check checkpoints")
    return key.encode("utf-8")


def has_key() -> bool:
    return bool(getattr(settings, "AUDIT_SIGNING_KEY", ""))


def _signed_part(seq: int, head_hash: str, count: int, created_at: str) -> bytes:
    return audit.canonical_json({"seq": seq, "head_hash": head_hash, "count": count,
                                 "created_at": created_at}).encode("utf-8")


def sign(seq: int, head_hash: str, count: int, created_at: str) -> str:
    return hmac.new(_key(), _signed_part(seq, head_hash, count, created_at), hashlib.sha256).hexdigest()


def write_checkpoint() -> Checkpoint:
    """Sign the current head and append it as a new file (never overwrites one)."""
    _key()  # fail before touching the disk
    seq, head_hash = audit.chain_head()
    count = seq  # seq is gap-free from 1 in an intact chain; verify_audit checks the real count
    created_at = audit.format_timestamp(timezone.now())
    cp = Checkpoint(seq=seq, head_hash=head_hash, count=count, created_at=created_at,
                    signature=sign(seq, head_hash, count, created_at))
    folder = checkpoint_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stamp = created_at.replace(":", "").replace("-", "").replace(".", "")
    path = folder / f"checkpoint-{seq:012d}-{stamp}.json"
    body = json.dumps({k: v for k, v in cp.as_dict().items() if k != "file"}, indent=2, sort_keys=True) + "\n"
    # O_EXCL: append-only in spirit, a checkpoint file is created once and never rewritten.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(body)
    cp.file = path.name
    return cp


def load_checkpoints() -> list[Checkpoint]:
    """Every checkpoint on disk, signature checked; raises CheckpointError naming a bad file."""
    folder = checkpoint_dir()
    if not folder.is_dir():
        return []
    key = _key()
    found = []
    for path in sorted(folder.glob("checkpoint-*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            seq, head_hash, count, created_at = (int(data["seq"]), str(data["head_hash"]), int(data["count"]),
                                                 str(data["created_at"]))
            signature = str(data["signature"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"checkpoint {path.name} is unreadable: {exc}") from exc
        expected = hmac.new(key, _signed_part(seq, head_hash, count, created_at), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise CheckpointError(f"checkpoint {path.name} has an invalid signature (forged or altered)")
        found.append(Checkpoint(seq=seq, head_hash=head_hash, count=count, created_at=created_at,
                                signature=signature, file=path.name))
    return found


def latest_checkpoint_path() -> Path | None:
    folder = checkpoint_dir()
    if not folder.is_dir():
        return None
    files = sorted(folder.glob("checkpoint-*.json"))
    return files[-1] if files else None


def verify(*, use_checkpoints: bool = True) -> audit.Verification:
    """The chain checked against every signed checkpoint (when a key is configured)."""
    notes = []
    cps: list[dict] = []
    if use_checkpoints:
        if has_key():
            try:
                cps = [c.as_dict() for c in load_checkpoints()]
            except CheckpointError as exc:
                seq, head = audit.chain_head()
                return audit.Verification(ok=False, count=0, head_seq=seq or None, head_hash=head,
                                          broken_seq=None, reason=str(exc),
                                          verified_at=audit.format_timestamp(timezone.now()))
        else:
            notes.append("AUDIT_SIGNING_KEY unset: signed checkpoints not checked")
    result = audit.verify_chain(cps)
    result.notes.extend(notes)
    return result
