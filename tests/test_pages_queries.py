"""The number of SQL queries a page runs does not grow with the rows it shows: each page is measured
with few rows, then must stay within that count with many (django_assert_max_num_queries)."""

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.conftest import make_user

pytestmark = pytest.mark.django_db

DS = [{"name": "train", "digest": "same-digest", "context": "training"},
      {"name": "eval", "digest": "eval-digest", "context": "evaluation"}]


@pytest.fixture
def reader(client):
    user = make_user("reader", "auditor")
    client.force_login(user)
    client.get(reverse("home"))  # warm the session
    return user


def count(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(ctx.captured_queries)


def populate(mirror, name, n, *, datasets=DS):
    m = mirror.model(name, tags={"team": "risk"})
    for i in range(n):
        mirror.version(m, stage="Production" if i == n - 1 else "None",
                       metrics={f"val_m{j}": i / 10 + j for j in range(6)},
                       params={f"p{j}": str(i * j) for j in range(8)}, datasets=datasets,
                       history={"loss": [1, 0.5, 0.1 * i]})
        mirror.alias(m, f"a{i}", i + 1)
    return m


def test_catalogue_queries_do_not_grow_with_rows_or_models(client, mirror, reader, django_assert_max_num_queries):
    mirror.bulk_models(3, prefix="small")
    few = count(client, reverse("registry:catalogue"))
    mirror.bulk_models(10_000, prefix="big", versions=2)
    with django_assert_max_num_queries(few):
        body = client.get(reverse("registry:catalogue"), {"per_page": 200}).content.decode()
    assert "10003 models" in body and body.count('<th scope="row">') == 200
    with django_assert_max_num_queries(few):
        client.get(reverse("registry:catalogue"), {"q": "big-09", "stage": "Production", "alias": "champion",
                                                   "tag": "team=bulk", "page": 2})
    with django_assert_max_num_queries(few):
        client.get(reverse("registry:catalogue"), {"q": "big"}, HTTP_HX_REQUEST="true")
    started = time.perf_counter()
    client.get(reverse("registry:catalogue"), {"q": "big-07", "page": 3})
    print(f"\ncatalogue search over 10,003 models: {1000 * (time.perf_counter() - started):.0f} ms, {few} queries")


@pytest.mark.parametrize("page", ["model_detail", "version_detail", "lineage", "compare", "compare_csv"])
def test_page_queries_do_not_grow_with_rows(client, mirror, reader, django_assert_max_num_queries, page):
    def url(name, n):
        if page == "model_detail":
            return reverse("registry:model_detail", args=[name])
        if page in ("version_detail", "lineage"):
            return reverse(f"registry:{page}", args=[name, n])
        return reverse(f"registry:{page}") + f"?model={name}&versions=" + ",".join(str(i) for i in range(1, n + 1))

    populate(mirror, "small", 2, datasets=DS[:1])
    few = count(client, url("small", 2))
    # Many versions, datasets, aliases, params; 25 other versions share the training data.
    populate(mirror, "large", 25, datasets=DS + [{"name": f"extra{i}", "digest": f"x{i}", "context": "training"}
                                                 for i in range(5)])
    with django_assert_max_num_queries(few):
        response = client.get(url("large", 25))
    assert response.status_code == 200


def test_every_page_reads_the_sync_state_without_the_last_report(client, reader):
    from registry_ui.mirror.models import SyncState

    big = {"changes": [{"model": f"m{i}", "what": "stage"} for i in range(2000)]}
    from django.utils import timezone

    SyncState.objects.create(pk=1, last_report=big, last_success_at=timezone.now())
    with CaptureQueriesContext(connection) as ctx:
        page = client.get(reverse("registry:catalogue"))
    assert page.status_code == 200 and "Registry data as of" in page.content.decode()
    reads = [q["sql"] for q in ctx.captured_queries if "registry_ui_syncstate" in q["sql"]]
    assert reads and not [sql for sql in reads if "last_report" in sql]
