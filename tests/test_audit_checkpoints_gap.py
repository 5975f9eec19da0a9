"""Signed checkpoints cannot be dropped or bypassed unseen, and a rewritten chain is blamed on the first
event whose content changed, not on the checkpoint that caught it.

Every attack here is real: the append-only triggers are dropped first (`attacker_sql`), as someone with
the database owner's rights could, then rows are deleted, renumbered, edited and re-hashed in SQL.
"""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from governance import audit
from governance.audit import checkpoints
from governance.audit.models import AuditEvent, AuditVerification
from tests.fixtures_audit import seed_events

pytestmark = pytest.mark.django_db

TABLE = "governance_auditevent"


def run_verify(*args):
    """(exit code, stdout, stderr) of manage.py verify_audit."""
    out, err = StringIO(), StringIO()
    try:
        call_command("verify_audit", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def checkpoint() -> dict:
    """A signed checkpoint through the command an operator (or the scheduler) runs."""
    code, out, err = run_verify("--checkpoint")
    assert code == 0, err
    return json.loads(checkpoints.latest_checkpoint_path().read_text())


def rehash_from(seq_from: int) -> None:
    """What an attacker does after an edit: recompute every hash from `seq_from` on, so the chain alone
    is consistent again."""
    prev = AuditEvent.objects.get(seq=seq_from - 1).hash if seq_from > 1 else audit.GENESIS_HASH
    for event in AuditEvent.objects.filter(seq__gte=seq_from).order_by("seq"):
        event.prev_hash = prev
        event.hash = audit.compute_hash(event)
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {TABLE} SET prev_hash = %s, hash = %s WHERE seq = %s",  # noqa: S608
                           [event.prev_hash, event.hash, event.seq])
        prev = event.hash


def broken_seq_stored() -> int | None:
    return AuditVerification.objects.order_by("-id").first().broken_seq


def test_deleting_the_last_checkpoint_event_is_reported(attacker_sql, signing_key):
    seed_events(5)
    cp = checkpoint()
    event = AuditEvent.objects.get(action="audit.checkpoint")
    assert event.seq == 6 and event.after["file"] == checkpoints.latest_checkpoint_path().name
    assert cp["seq"] == 5

    attacker_sql(f"DELETE FROM {TABLE} WHERE seq = 6")  # noqa: S608
    assert audit.verify_chain().ok  # the chain alone is a clean chain of five events

    code, _, err = run_verify()
    assert code == 1
    assert "seq 6" in err and "audit.checkpoint" in err and "missing" in err
    assert broken_seq_stored() == 6


def test_deleting_a_checkpoint_event_in_the_middle_and_renumbering_is_reported(attacker_sql, signing_key):
    seed_events(5)
    checkpoint()                      # pins seq 5, its event is seq 6
    seed_events(2)                    # seq 7, 8
    attacker_sql(f"DELETE FROM {TABLE} WHERE seq = 6")  # noqa: S608
    attacker_sql(f"UPDATE {TABLE} SET seq = seq - 1 WHERE seq > 6")  # noqa: S608
    rehash_from(6)
    assert audit.verify_chain().ok

    code, _, err = run_verify()
    assert code == 1
    assert "seq 6" in err and "audit.checkpoint" in err
    assert broken_seq_stored() == 6


def test_altered_checkpoint_event_is_reported(attacker_sql, signing_key):
    seed_events(3)
    checkpoint()                      # event seq 4
    seed_events(1)
    attacker_sql(f"""UPDATE {TABLE} SET comment = 'routine' WHERE seq = 4""")  # noqa: S608
    rehash_from(4)

    code, _, err = run_verify()
    assert code == 1 and "seq 4" in err
    assert broken_seq_stored() == 4


def test_removed_checkpoint_file_is_reported(signing_key):
    seed_events(3)
    checkpoint()
    path = checkpoints.latest_checkpoint_path()
    path.unlink()

    code, _, err = run_verify()
    assert code == 1
    assert path.name in err and "missing" in err


def test_recomputed_chain_names_the_first_edited_event(attacker_sql, signing_key):
    seed_events(5)
    checkpoint()                      # pins seq 5, event seq 6
    seed_events(2)
    attacker_sql(f"UPDATE {TABLE} SET comment = 'rewritten' WHERE seq = 2")  # noqa: S608
    rehash_from(2)
    assert audit.verify_chain().ok    # the chain alone cannot tell

    code, _, err = run_verify()
    assert code == 1
    assert "seq 2" in err and "signed checkpoint" in err
    assert broken_seq_stored() == 2


def test_edit_after_an_earlier_checkpoint_is_located_in_the_later_range(attacker_sql, signing_key):
    seed_events(3)
    checkpoint()                      # event 4
    seed_events(4)                    # 5..8
    checkpoint()                      # pins 8, event 9
    seed_events(3)                    # 10..12
    attacker_sql(f"UPDATE {TABLE} SET actor_username = 'someone else' WHERE seq = 7")  # noqa: S608
    rehash_from(7)

    code, _, err = run_verify()
    assert code == 1 and "seq 7" in err
    assert broken_seq_stored() == 7


def test_edit_rehashed_only_in_place_names_the_edited_event(attacker_sql, signing_key):
    """Edited and re-hashed, but the next row's link left alone: the chain breaks at seq 3, the edit is
    seq 2, and the checkpoint knows what seq 2's hash was. The hashes up to the checkpoint's own are
    untouched, so only the whole-chain walk (--whole) sees it: the default, incremental check says it
    started from the checkpoint and vouches for what precedes it by that checkpoint alone."""
    seed_events(5)
    checkpoint()
    attacker_sql(f"UPDATE {TABLE} SET comment = 'changed' WHERE seq = 2")  # noqa: S608
    event = AuditEvent.objects.get(seq=2)
    attacker_sql(f"UPDATE {TABLE} SET hash = %s WHERE seq = 2", [audit.compute_hash(event)])  # noqa: S608

    code, out, _ = run_verify()
    assert code == 0 and "since signed checkpoint" in out and "(seq 6)" in out
    code, _, err = run_verify("--whole")
    assert code == 1 and "seq 2" in err
    assert broken_seq_stored() == 2


def test_a_long_range_is_located_to_a_short_span(attacker_sql, signing_key, monkeypatch):
    """Past a size limit a checkpoint keeps one digest per span of events instead of one per event: the
    report then names the first changed span."""
    monkeypatch.setattr(checkpoints, "MAX_DIGESTS", 4)
    seed_events(16)
    cp = checkpoint()                 # 17 events in range: spans of 5
    assert cp["digests"]["step"] == 5
    attacker_sql(f"UPDATE {TABLE} SET comment = 'x' WHERE seq = 8")  # noqa: S608
    rehash_from(8)

    code, _, err = run_verify()
    assert code == 1 and "seq 6..10" in err
    assert broken_seq_stored() == 6


def test_intact_chain_with_checkpoints_still_verifies(signing_key):
    seed_events(3)
    checkpoint()
    seed_events(2)
    checkpoint()
    code, out, err = run_verify("--whole")
    assert code == 0, err
    assert "2 signed checkpoint(s) matched" in out
