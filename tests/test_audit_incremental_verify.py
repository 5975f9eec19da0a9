"""Incremental verification: from the newest signed checkpoint on, the default of verify_audit, the
"Verify chain now" button, the API and the scheduled checkpoint job.

It trusts the events up to the checkpoint only after checking the checkpoint's signature and that the
chain still holds the hashes the checkpoint pinned; it re-hashes every event after it. The attacks are
real SQL with the append-only triggers dropped (`attacker_sql`), as a database owner could.
"""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

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


def checkpoint_then(n_after: int) -> int:
    """Five events, a signed checkpoint (pinning seq 5, its own event seq 6), then `n_after` more."""
    seed_events(5)
    code, _, err = run_verify("--checkpoint")
    assert code == 0, err
    seed_events(n_after)
    return 6


def test_by_default_only_the_events_after_the_newest_checkpoint_are_rehashed(signing_key):
    anchor = checkpoint_then(3)
    code, out, err = run_verify()
    assert code == 0, err
    assert f"since signed checkpoint {checkpoints.latest_checkpoint_name()} (seq {anchor}): 3 later events" in out
    stored = AuditVerification.objects.order_by("-id").first()
    assert (stored.ok, stored.scope, stored.from_seq, stored.count) == (True, "incremental", anchor, 3)

    code, out, _ = run_verify("--whole")
    assert code == 0 and "intact: 9 events" in out
    assert AuditVerification.objects.order_by("-id").first().scope == "whole"


def test_without_a_checkpoint_the_whole_chain_is_verified(signing_key):
    seed_events(4)
    code, out, _ = run_verify()
    assert code == 0 and "intact: 4 events" in out and "no signed checkpoint yet" in out


def test_an_edit_after_the_checkpoint_is_named(attacker_sql, signing_key):
    checkpoint_then(4)                # 7..10
    attacker_sql(f"UPDATE {TABLE} SET comment = 'nothing happened' WHERE seq = 8")  # noqa: S608
    code, _, err = run_verify()
    assert code == 1 and "seq 8" in err and "edited row" in err
    stored = AuditVerification.objects.order_by("-id").first()
    assert (stored.broken_seq, stored.scope) == (8, "incremental")


def test_a_deleted_event_after_the_checkpoint_is_named(attacker_sql, signing_key):
    checkpoint_then(3)                # 7..9
    attacker_sql(f"DELETE FROM {TABLE} WHERE seq = 8")  # noqa: S608
    code, _, err = run_verify()
    assert code == 1 and "seq 8" in err and "deleted row" in err


def test_a_chain_rewritten_before_the_checkpoint_no_longer_matches_it(attacker_sql, signing_key):
    """Edit seq 3 and recompute every later hash: the chain alone is consistent, the newest checkpoint's
    pinned hash is not; the incremental check notices and the whole walk it then runs names seq 3."""
    checkpoint_then(2)
    attacker_sql(f"UPDATE {TABLE} SET actor_username = 'someone else' WHERE seq = 3")  # noqa: S608
    prev = AuditEvent.objects.get(seq=2).hash
    for event in AuditEvent.objects.filter(seq__gte=3).order_by("seq"):
        event.prev_hash = prev
        event.hash = prev = audit.compute_hash(event)
        attacker_sql(f"UPDATE {TABLE} SET prev_hash = %s, hash = %s WHERE seq = %s",  # noqa: S608
                     [event.prev_hash, event.hash, event.seq])
    assert audit.verify_chain().ok    # the chain alone cannot tell

    code, out, err = run_verify()
    assert code == 1 and "seq 3" in err and "signed checkpoint" in err
    assert AuditVerification.objects.order_by("-id").first().broken_seq == 3


def test_a_forged_newest_checkpoint_is_refused(signing_key):
    checkpoint_then(1)
    path = checkpoints.latest_checkpoint_path()
    data = json.loads(path.read_text())
    data["event_seq"], data["seq"] = 7, 7  # claim to vouch for one more event
    path.chmod(0o644)
    path.write_text(json.dumps(data))
    code, _, err = run_verify()
    assert code == 1 and "invalid signature" in err


def test_the_pages_and_the_api_offer_both_scopes(client, auditor, signing_key):
    anchor = checkpoint_then(2)
    client.force_login(auditor)       # the sign-in is one more event
    response = client.post(reverse("audit:verify"), follow=True)
    assert f"3 events verified since the signed checkpoint at seq {anchor}" in response.content.decode()
    assert AuditEvent.objects.order_by("-seq").first().after["scope"] == "incremental"
    response = client.post(reverse("audit:verify"), {"scope": "whole"}, follow=True)
    assert "Audit chain intact: 10 events verified" in response.content.decode()  # + the first audit.verified

    body = client.get(reverse("audit_api:verify")).json()
    assert (body["ok"], body["scope"], body["from_seq"]) == (True, "incremental", anchor)
    assert body["checkpoint_file"] == checkpoints.latest_checkpoint_name()
    body = client.get(reverse("audit_api:verify"), {"scope": "whole"}).json()
    assert (body["scope"], body["count"]) == ("whole", 11)
    response = client.get(reverse("audit_api:verify"), {"scope": "everything"})
    assert response.status_code == 400 and "scope" in response.json()["detail"]
