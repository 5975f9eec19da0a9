"""The audit search's full-text index is kept by the database and is what the search reads: an event is
found the moment its transaction commits (words of its details too), and the query the search sends is
one the index answers (PostgreSQL: the stored tsvector column and its GIN index; SQLite: FTS5)."""

import pytest
from django.db import connection, transaction
from django.urls import reverse

from governance import audit
from governance.audit import db as audit_db
from governance.audit.models import AuditEvent
from governance.audit.search import AuditFilters, events_for

pytestmark = pytest.mark.django_db


def test_a_new_event_is_found_at_once_by_any_of_its_words(client, auditor):
    client.force_login(auditor)
    url = reverse("audit_api:event_list")
    assert client.get(url, {"q": "zebracorn"}).json()["results"] == []
    with transaction.atomic():
        event = audit.record(actor_name="dora", action="registry.tag_set", model="fraud-detector", version=3,
                             after={"key": "zebracorn_review", "value": "passed"}, comment="tagged by the pipeline")
    for q in ("zebracorn", "zebracorn_review passed", "pipeline", "dora", "fraud"):
        assert [r["seq"] for r in client.get(url, {"q": q}).json()["results"]] == [event.seq], q
    with transaction.atomic():
        later = audit.record(actor_name="erin", action="registry.tag_set", model="churn",
                             after={"key": "zebracorn_review", "value": "failed"})
    assert [r["seq"] for r in client.get(url, {"q": "zebracorn"}).json()["results"]] == [later.seq, event.seq]


def test_the_text_query_is_answered_by_the_index(auditor):
    with transaction.atomic():
        for i in range(30):
            audit.record(actor_name="system:test", action="registry.synced", comment=f"routine {i}")
        audit.record(actor_name="system:test", action="registry.synced", comment="quokka sighting")
    # The path a rare word takes (the index drives the query); its plan must name the index.
    qs = events_for(auditor, AuditFilters(q="quokka"), drive_text=True)
    assert [e.comment for e in qs[:5]] == ["quokka sighting"]
    sql, params = qs[:5].query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")  # a table this small would otherwise be read whole
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert f"{audit_db.TABLE}_search_vector" in plan, plan
            # The vector is stored with the row (computed at INSERT), not recomputed by each query.
            cursor.execute(f"SELECT {audit_db.PG_SEARCH_COLUMN}::text FROM {audit_db.TABLE} WHERE seq = %s",  # noqa: S608
                           [AuditEvent.objects.order_by("-seq").first().seq])
            assert "'quokka'" in cursor.fetchone()[0]
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            plan = "\n".join(str(row[-1]) for row in cursor.fetchall())
            assert "VIRTUAL TABLE INDEX" in plan and audit_db.FTS_TABLE in plan, plan
