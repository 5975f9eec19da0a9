"""One page, one answer: sections of a page that need the same costly answer compute it once."""

import pytest

from registry_ui.memo import once_per_page, shared


def test_shared_work_is_done_once_per_key_within_a_page_and_afresh_outside():
    calls = []

    @shared(key=lambda who, *, now=None: who)
    def queue(who, *, now=None):
        calls.append(who)
        return [{"model": f"{who}-model", "now": now}]

    assert queue("ann") == queue("ann") and calls == ["ann", "ann"]  # no page: every call computes
    calls.clear()
    with once_per_page():
        first = queue("ann", now=1)
        first[0]["model"] = "edited by one section"
        assert queue("ann", now=2) == [{"model": "ann-model", "now": 1}]  # the first answer, untouched
        queue("bob")
        assert calls == ["ann", "bob"]
    queue("ann")
    assert calls == ["ann", "bob", "ann"]  # the page's answers went with it


@pytest.mark.django_db
def test_the_reports_page_reads_the_recertification_queue_once(client, monkeypatch):
    from django.urls import reverse

    from governance.workflow import recertification
    from tests.conftest import make_user

    reads = []
    real = recertification._protected_holders
    monkeypatch.setattr(recertification, "_protected_holders", lambda ids: reads.append(1) or real(ids))
    client.force_login(make_user("audra", "auditor"))
    page = client.get(reverse("audit:report_index"))
    assert page.status_code == 200 and 'id="audit-portfolio"' in page.content.decode()
    assert len(reads) == 1  # the workflow's section and the portfolio's both show it
