"""The hash chain: built, verified, protected by triggers, tampering detected, anchored by checkpoints."""

import json
import threading

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from governance import audit
from governance.audit import checkpoints
from governance.audit.models import AuditEvent, AuditVerification
from tests.fixtures_audit import seed_events

pytestmark = pytest.mark.django_db


def run_verify(*args):
    """(exit code, stdout, stderr) of manage.py verify_audit."""
    from io import StringIO

    out, err = StringIO(), StringIO()
    try:
        call_command("verify_audit", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def test_chain_is_built_and_verified():
    events = seed_events(5)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == audit.GENESIS_HASH
    for prev, cur in zip(events, events[1:], strict=False):
        assert cur.prev_hash == prev.hash
    stored = AuditEvent.objects.get(seq=3)
    assert audit.compute_hash(stored) == stored.hash
    code, out, err = run_verify()
    assert code == 0, err
    assert "5 events" in out
    assert AuditVerification.objects.first().ok


def test_empty_trail_verifies():
    code, out, _ = run_verify()
    assert code == 0 and "0 events" in out


def test_unknown_action_refused():
    with pytest.raises(audit.UnknownAuditAction):
        audit.record(actor_name="x", action="request.teleported")


def test_json_values_hash_the_same_after_a_round_trip():
    with transaction.atomic():
        audit.record(actor_name="system:test", action="registry.drift", model="m",
                     before={"metric": float("nan"), "big": 1e20, "ratio": 0.1, "nested": [1, {"b": 2, "a": 1.5}]},
                     after={"when": __import__("datetime").date(2026, 1, 2)}, source_ip="::ffff:10.0.0.7")
    e = AuditEvent.objects.get()
    assert e.before["metric"] == "nan"
    assert e.source_ip == "10.0.0.7"
    assert audit.compute_hash(e) == e.hash
    assert run_verify()[0] == 0


def test_the_verifier_rebuilds_the_canonical_text_of_any_content():
    """verify_chain writes each row's canonical JSON out field by field (fast path for a million rows);
    it must produce exactly canonical_json()'s text, or every row would look edited."""
    odd = 'quote " backslash \\ tab \t newline \n nul-ish \x01 </script> ünïcødé 模型 emoji \U0001F600'
    with transaction.atomic():
        audit.record(actor_name=odd, action="registry.drift", model=odd, version=2**31 - 1, request=None,
                     before={"z": [True, False, None, 0, -1, 1.25, "x"], "a": {"ü": odd}}, after=odd, comment=odd,
                     source_ip=None)
        audit.record(actor_name="system:test", action="registry.synced", model="", version=None, before=None,
                     after=[1, "two", {"3": 3.5}], comment="", source_ip="2001:db8::1")
        audit.record(actor_name="system:test", action="registry.synced", before=0, after=False)
    assert [audit.compute_hash(e) == e.hash for e in AuditEvent.objects.order_by("seq")] == [True] * 3
    result = audit.verify_chain()
    assert result.ok and result.count == 3, result.reason


@pytest.mark.parametrize("sql", ["UPDATE governance_auditevent SET comment = 'x'",
                                 "DELETE FROM governance_auditevent"])
def test_direct_sql_update_and_delete_are_refused(sql):
    seed_events(2)
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert AuditEvent.objects.count() == 2
    assert AuditEvent.objects.get(seq=1).comment == "event number 1"


def test_truncate_is_refused_on_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("TRUNCATE exists only on PostgreSQL")
    seed_events(2)
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("TRUNCATE governance_auditevent")
    assert AuditEvent.objects.count() == 2


def test_edited_row_is_named(attacker_sql):
    seed_events(6)
    attacker_sql("UPDATE governance_auditevent SET comment = 'nothing to see' WHERE seq = 4")
    code, _, err = run_verify()
    assert code == 1
    assert "seq 4" in err and "edited row" in err


def test_deleted_row_is_named(attacker_sql):
    seed_events(6)
    attacker_sql("DELETE FROM governance_auditevent WHERE seq = 3")
    code, _, err = run_verify()
    assert code == 1
    assert "seq 3" in err and "deleted row" in err
    assert AuditVerification.objects.first().broken_seq == 3


def test_swapped_rows_are_named(attacker_sql):
    seed_events(6)
    # Swap the positions of seq 4 and 5 (through a free seq value, the column is unique).
    attacker_sql("UPDATE governance_auditevent SET seq = -1 WHERE seq = 4")
    attacker_sql("UPDATE governance_auditevent SET seq = 4 WHERE seq = 5")
    attacker_sql("UPDATE governance_auditevent SET seq = 5 WHERE seq = -1")
    code, _, err = run_verify()
    assert code == 1
    assert "seq 4" in err and "reordered" in err


def test_deleted_tail_is_caught_by_checkpoint(attacker_sql, signing_key):
    seed_events(5)
    assert run_verify("--checkpoint")[0] == 0   # checkpoint pins seq 5; then seq 6 records it
    attacker_sql("DELETE FROM governance_auditevent WHERE seq >= 5")
    code, _, err = run_verify()
    assert code == 1
    assert "seq 5" in err and "checkpoint" in err


def recompute_chain_from(seq_from: int) -> None:
    """What an attacker with DB access does after editing a row: recompute every later hash."""
    prev = AuditEvent.objects.get(seq=seq_from - 1).hash if seq_from > 1 else audit.GENESIS_HASH
    for e in AuditEvent.objects.filter(seq__gte=seq_from).order_by("seq"):
        e.prev_hash = prev
        e.hash = audit.compute_hash(e)
        with connection.cursor() as cursor:
            cursor.execute("UPDATE governance_auditevent SET prev_hash = %s, hash = %s WHERE seq = %s",
                           [e.prev_hash, e.hash, e.seq])
        prev = e.hash


def test_edit_with_full_recomputation_is_caught_by_signed_checkpoint(attacker_sql, signing_key):
    seed_events(5)
    code, out, _ = run_verify("--checkpoint")
    assert code == 0 and "signed checkpoint written" in out
    seed_events(2)
    attacker_sql("UPDATE governance_auditevent SET comment = 'rewritten' WHERE seq = 2")
    recompute_chain_from(2)
    assert audit.verify_chain().ok  # the chain alone cannot tell
    code, _, err = run_verify()
    assert code == 1
    assert "seq 5" in err and "signed checkpoint" in err


def test_forged_checkpoint_is_refused(signing_key, settings):
    seed_events(2)
    assert run_verify("--checkpoint")[0] == 0
    path = checkpoints.latest_checkpoint_path()
    data = json.loads(path.read_text())
    data["head_hash"] = "f" * 64
    path.chmod(0o644)
    path.write_text(json.dumps(data))
    code, _, err = run_verify()
    assert code == 1 and "invalid signature" in err


def test_checkpoint_needs_the_key(settings):
    settings.AUDIT_SIGNING_KEY = ""
    code, _, err = run_verify("--checkpoint")
    assert code == 1 and "AUDIT_SIGNING_KEY" in err


def test_checkpoint_file_is_signed_and_not_rewritable(signing_key):
    seed_events(3)
    run_verify("--checkpoint")
    path = checkpoints.latest_checkpoint_path()
    data = json.loads(path.read_text())
    assert data["seq"] == 3 and data["head_hash"] == AuditEvent.objects.get(seq=3).hash
    assert checkpoints.sign(data["seq"], data["head_hash"], data["count"], data["created_at"]) == data["signature"]
    assert oct(path.stat().st_mode & 0o777) == "0o444"
    assert AuditEvent.objects.filter(action="audit.checkpoint").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_the_chain():
    from django.db import connections

    errors = []
    barrier = threading.Barrier(6)

    def writer(n):
        try:
            barrier.wait()
            for i in range(10):
                with transaction.atomic():
                    audit.record(actor_name=f"thread-{n}", action="registry.synced", comment=f"{n}-{i}")
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert list(AuditEvent.objects.values_list("seq", flat=True)) == list(range(1, 61))
    assert len(set(AuditEvent.objects.values_list("prev_hash", flat=True))) == 60
    assert audit.verify_chain().ok


def test_time_never_goes_backwards_along_the_chain(monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    first = seed_events(1)[0]
    monkeypatch.setattr(timezone, "now", lambda: first.timestamp - timedelta(hours=1))  # clock stepped back
    second = seed_events(1)[0]
    assert second.timestamp == first.timestamp
    assert audit.verify_chain().ok


def test_backdated_row_with_recomputed_chain_is_named(attacker_sql):
    seed_events(5)
    attacker_sql("UPDATE governance_auditevent SET timestamp = %s WHERE seq = 4",
                 [AuditEvent.objects.get(seq=1).timestamp.replace(year=2001)])
    recompute_chain_from(4)
    code, _, err = run_verify()
    assert code == 1 and "seq 4" in err and "time goes backwards" in err
