"""Registry pages: content, htmx fragment, sync banner, panels, URL round-trips, 404s."""

import html
from datetime import UTC, datetime

import pytest
from django.urls import resolve, reverse

from tests.conftest import make_user


@pytest.fixture
def shop(mirror):
    """A small registry: one model with three versions (one without run), aliases and a Production holder."""
    m = mirror.model("fraud-detector", description="Detects **fraud**.", tags={"team": "risk", "domain": "cards"})
    ds = [{"name": "tx-train", "digest": "aaa111", "context": "training"},
          {"name": "tx-eval", "digest": "bbb222", "context": "evaluation"}]
    mirror.version(m, metrics={"train_accuracy": 0.97, "val_accuracy": 0.91, "test_accuracy": 0.9,
                               "val_loss": 0.3}, params={"lr": "0.1", "depth": "4"}, datasets=ds)
    mirror.version(m, stage="Production", metrics={"train_accuracy": 0.98, "val_accuracy": 0.93,
                                                   "test_accuracy": 0.92, "val_loss": 0.25},
                   params={"lr": "0.05", "depth": "4"}, datasets=ds, description="Second try")
    mirror.version(m, with_run=False, stage="Staging")
    mirror.alias(m, "champion", 2)
    mirror.alias(m, "challenger", 3)
    other = mirror.model("churn-classifier", description="Churn", tags={"team": "growth"})
    mirror.version(other, metrics={"val_auc": 0.8})
    return m


def page_urls(name="fraud-detector"):
    return {
        "registry:catalogue": reverse("registry:catalogue"),
        "registry:model_detail": reverse("registry:model_detail", args=[name]),
        "registry:version_detail": reverse("registry:version_detail", args=[name, 2]),
        "registry:lineage": reverse("registry:lineage", args=[name, 2]),
        "registry:compare": reverse("registry:compare") + f"?v={name}:1&v={name}:2",
        "registry:compare_csv": reverse("registry:compare_csv") + f"?v={name}:1&v={name}:2",
    }


# --- access ----------------------------------------------------------------------------------------


def only_team_growth(user, queryset):
    """A scoped visibility provider for the tests: this user sees only the growth team's models."""
    return queryset.filter(name="churn-classifier")


@pytest.mark.django_db
def test_pages_ask_the_configured_visibility_provider(client, shop, settings):
    """REGISTRY_VISIBILITY is an extension point: whatever it hides is 404 like an unknown model, and
    missing from the catalogue. (Every URL x role x scope with the project's own provider:
    tests/test_url_matrix.py.)"""
    settings.REGISTRY_VISIBILITY = "tests.test_pages.only_team_growth"
    client.force_login(make_user("scoped", "data_scientist"))
    for url_name, url in page_urls().items():
        if url_name == "registry:catalogue":
            continue
        response = client.get(url)
        assert response.status_code == 404, url_name
        assert "Not found" in response.content.decode(), url_name
    catalogue = client.get(reverse("registry:catalogue")).content.decode()
    assert "churn-classifier" in catalogue and "fraud-detector" not in catalogue


@pytest.mark.django_db
@pytest.mark.parametrize("url", [
    reverse("registry:model_detail", args=["no-such-model"]),
    reverse("registry:version_detail", args=["fraud-detector", 99]),
    reverse("registry:lineage", args=["fraud-detector", 99]),
    reverse("registry:compare") + "?v=fraud-detector:1&v=fraud-detector:99",
])
def test_unknown_model_or_version_is_a_404_page_without_stack_trace(client, shop, url):
    client.force_login(make_user("reader", "auditor"))
    response = client.get(url)
    assert response.status_code == 404
    body = response.content.decode()
    assert "<h1>Not found</h1>" in body and "Traceback" not in body


@pytest.mark.django_db
def test_pages_only_answer_get(client, shop):
    client.force_login(make_user("reader", "auditor"))
    assert client.post(reverse("registry:catalogue")).status_code == 405


# --- URLs ------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["plain", "with space", "fraud/detector", "ünïcødé 模型", "a.b.c", ".", "..",
                                  "100%", "q?x#y", "tilde~2F", "colon:1", "comma,1", "-", "'quote\""])
def test_model_names_round_trip_through_urls(client, mirror, name):
    model = mirror.model(name)
    mirror.version(model, metrics={"m": 1})
    client.force_login(make_user("reader", "auditor"))
    url = reverse("registry:model_detail", args=[name])
    assert "/" not in url[len("/registry/models/"):-1]  # one path segment, whatever the name
    assert url.split("/")[3] not in (".", "..")  # browsers would collapse these segments
    assert resolve(_decoded(url)).kwargs["name"] == name
    response = client.get(url)
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    assert reverse("registry:version_detail", args=[name, 1]) in page
    assert reverse("registry:lineage", args=[name, 1]) in page
    assert client.get(reverse("registry:version_detail", args=[name, 1])).status_code == 200
    assert client.get(reverse("registry:lineage", args=[name, 1])).status_code == 200


def _decoded(url: str) -> str:
    """The path as a WSGI server hands it to Django (percent-decoded once)."""
    from urllib.parse import unquote

    return unquote(url)


# --- catalogue -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_catalogue_shows_production_champion_versions_and_sync_time(client, shop, mirror):
    client.force_login(make_user("reader", "auditor"))
    body = client.get(reverse("registry:catalogue")).content.decode()
    row = body.split('href="/registry/models/fraud-detector/"')[1].split("</tr>")[0]
    assert 'href="/registry/models/fraud-detector/versions/2/">v2</a>' in row  # Production and @champion
    assert "@challenger&nbsp;v3" in row
    assert "<td>3</td>" in row  # number of versions
    assert "team=risk" in row
    assert "2026-11-01 12:00" in row  # last sync of this model


@pytest.mark.django_db
@pytest.mark.parametrize(("query", "expected"), [
    ({"q": "fraud"}, ["fraud-detector"]),
    ({"q": "CHURN"}, ["churn-classifier"]),  # description / name, case-insensitive
    ({"q": "growth"}, ["churn-classifier"]),  # tag value
    ({"q": "detects"}, ["fraud-detector"]),  # description
    ({"stage": "Production"}, ["fraud-detector"]),
    ({"alias": "champion"}, ["fraud-detector"]),
    ({"alias": "@champion"}, ["fraud-detector"]),
    ({"tag": "team=growth"}, ["churn-classifier"]),
    ({"tag": "domain"}, ["fraud-detector"]),
    ({"tag": "team=nobody"}, []),
    ({"q": "detector", "stage": "Staging"}, ["fraud-detector"]),
    ({"q": "churn", "stage": "Production"}, []),
])
def test_catalogue_search_and_filters(client, shop, query, expected):
    client.force_login(make_user("reader", "auditor"))
    body = client.get(reverse("registry:catalogue"), query).content.decode()
    shown = [n for n in ("fraud-detector", "churn-classifier") if f'href="/registry/models/{n}/"' in body]
    assert shown == expected
    if not expected:
        assert "No model matches these filters" in body


@pytest.mark.django_db
def test_catalogue_answers_htmx_with_the_results_fragment(client, shop):
    client.force_login(make_user("reader", "auditor"))
    full = client.get(reverse("registry:catalogue"), {"q": "fraud"})
    fragment = client.get(reverse("registry:catalogue"), {"q": "fraud"}, HTTP_HX_REQUEST="true")
    assert "HX-Request" in fragment["Vary"] and "HX-Request" in full["Vary"]
    assert "<html" in full.content.decode()
    body = fragment.content.decode()
    assert "<html" not in body and "<form" not in body
    assert 'href="/registry/models/fraud-detector/"' in body
    assert "churn-classifier" not in body


@pytest.mark.django_db
def test_catalogue_is_paginated(client, mirror):
    mirror.bulk_models(120, prefix="pg", versions=1)
    client.force_login(make_user("reader", "auditor"))
    body = client.get(reverse("registry:catalogue")).content.decode()
    assert "120 models" in body and "page 1 of 3" in body
    assert "pg-00049" in body and "pg-00050" not in body
    body = client.get(reverse("registry:catalogue"), {"page": 3}).content.decode()
    assert "pg-00100" in body and "pg-00099" not in body
    body = client.get(reverse("registry:catalogue"), {"page": 2, "per_page": 100}).content.decode()
    assert "pg-00119" in body and "pg-00099" not in body


def count_open_requests(user, models):
    return {m.pk: {"open_requests": 7 if m.name == "fraud-detector" else 0} for m in models}


@pytest.mark.django_db
def test_catalogue_shows_open_requests_from_the_governance_annotator(client, shop, settings):
    settings.REGISTRY_CATALOGUE_ANNOTATOR = "tests.test_pages.count_open_requests"
    client.force_login(make_user("reader", "auditor"))
    body = client.get(reverse("registry:catalogue")).content.decode()
    fraud = body.split('href="/registry/models/fraud-detector/"')[1].split("</tr>")[0]
    churn = body.split('href="/registry/models/churn-classifier/"')[1].split("</tr>")[0]
    assert "<td>7</td>" in fraud and "<td>0</td>" in churn


# --- model and version pages -----------------------------------------------------------------------


@pytest.mark.django_db
def test_model_page_shows_description_tags_holders_and_versions(client, shop):
    client.force_login(make_user("reader", "auditor"))
    body = client.get(reverse("registry:model_detail", args=["fraud-detector"])).content.decode()
    assert "Detects <strong>fraud</strong>." in body
    assert "<dt>team</dt><dd>risk</dd>" in body
    holders = body.split('id="stage-holders"')[1].split("</dl>")[0]
    assert "<dt>Production</dt><dd><a" in holders and ">v2</a>" in holders
    assert "<dt>@champion</dt>" in holders and "<dt>@challenger</dt>" in holders
    table = body.split('class="versions"')[1].split("</table>")[0]
    assert table.count('name="v"') == 3  # one compare checkbox per version
    assert ">test_accuracy<" in table and ">0.92<" in table  # key metrics, held-out splits first
    assert "no run" in table  # v3 has no run
    assert reverse("registry:lineage", args=["fraud-detector", 2]) in table


@pytest.mark.django_db
def test_model_page_rows_escape_mlflow_text_and_link_like_reverse(client, mirror):
    """The versions table is rendered in Python (registry_ui.pages.tables): every MLflow string in it is
    escaped and its links are the ones reverse() gives."""
    hostile = '<img src=x onerror="alert(1)">'
    name = "x<b>'\"&m"
    m = mirror.model(name)
    mirror.version(m, stage="Staging", status="<i>READY</i>", run_name=hostile, metrics={"val_<s>": 0.5})
    mirror.version(m, with_run=False)
    mirror.alias(m, "<u>champ", 1)
    client.force_login(make_user("reader", "auditor"))
    body = client.get(reverse("registry:model_detail", args=[name])).content.decode()
    table = body.split('class="versions"')[1].split("</table>")[0]
    for raw in (hostile, "<b>", "<i>", "<u>", "<s>"):
        assert raw not in table
    assert html.escape(hostile)[:20] in table and "&lt;i&gt;READY&lt;/i&gt;" in table
    assert '<span class="badge alias">@&lt;u&gt;champ</span>' in table
    assert f'value="{html.escape(name)}:1"' in table
    assert f'href="{html.escape(reverse("registry:version_detail", args=[name, 2]))}"' in table
    assert f'href="{html.escape(reverse("registry:lineage", args=[name, 1]))}"' in table
    assert table.count("<tr>") == 3 and "no run" in table  # header row + 2 versions; v2 has no run
    row1 = table.split('id="cmp-1"')[1].split("</tr>")[0]
    assert 'stage-staging">Staging<' in row1 and '<td class="num">0.5</td>' in row1
    assert f'<time datetime="{m.versions.get(version=1).created_at.isoformat()}" title=' in row1


@pytest.mark.django_db
def test_version_page_shows_metrics_per_split_params_datasets_source(client, shop):
    client.force_login(make_user("reader", "auditor"))
    body = client.get(reverse("registry:version_detail", args=["fraud-detector", 2])).content.decode()
    splits = body.split('class="metrics-splits"')[1].split("</table>")[0]
    assert ">train<" in splits and ">val<" in splits and ">test<" in splits
    accuracy = splits.split(">accuracy<")[1].split("</tr>")[0]
    assert ["0.98", "0.93", "0.92"] == [c.split("<")[0] for c in accuracy.split('class="num">')[1:]]
    assert ">lr</th><td class=\"mono\">0.05<" in body
    assert "aaa111" in body and "tx-train" in body and "training" in body
    assert "0123456789abcdef0123456789abcdef01234567" in body
    assert "Second try" in body and "@champion" in body and "Production" in body


@pytest.mark.django_db
def test_version_without_run_says_so(client, shop):
    client.force_login(make_user("reader", "auditor"))
    body = client.get(reverse("registry:version_detail", args=["fraud-detector", 3])).content.decode()
    assert "no run" in body and "No dataset logged" in body


def fake_panels(kind, request, obj):
    """A stand-in governance provider: one fragment naming the page kind and object."""
    return [("registry/_sync_banner.html", {"show": True, "success": None, "failed": True,
                                            "error": f"PANEL {kind} {obj}"})]


@pytest.mark.django_db
def test_governance_panels_render_on_model_and_version_pages(client, shop, settings):
    settings.REGISTRY_PANEL_PROVIDERS = ["tests.test_pages.fake_panels"]
    client.force_login(make_user("reader", "auditor"))
    body = client.get(reverse("registry:model_detail", args=["fraud-detector"])).content.decode()
    assert "PANEL model fraud-detector" in body
    body = client.get(reverse("registry:version_detail", args=["fraud-detector", 2])).content.decode()
    assert "PANEL version fraud-detector v2" in body


# --- sync banner -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_page_says_how_fresh_the_registry_data_is(client, shop, mirror):
    mirror.synced(ok_at=datetime(2026, 11, 20, 9, 30, tzinfo=UTC))
    client.force_login(make_user("reader", "auditor"))
    for url in [reverse("home"), *page_urls().values()]:
        if "csv" in url:
            continue
        body = client.get(url).content.decode()
        assert "Registry data as of" in body and "2026-11-20 09:30 UTC" in body, url
        assert "last sync failed" not in body


@pytest.mark.django_db
def test_banner_warns_when_the_last_sync_failed(client, shop, mirror):
    mirror.synced(ok_at=datetime(2026, 11, 20, 9, 30, tzinfo=UTC), error_at=datetime(2026, 11, 20, 9, 45, tzinfo=UTC),
                  error="MLflow unreachable: connection refused\ntrace...")
    client.force_login(make_user("reader", "auditor"))
    body = client.get(reverse("registry:catalogue")).content.decode()
    assert "Warning: the last sync failed" in body and "connection refused" in body and "trace..." not in body
    # A later success clears the warning.
    mirror.synced(ok_at=datetime(2026, 11, 20, 10, 0, tzinfo=UTC), error_at=datetime(2026, 11, 20, 9, 45, tzinfo=UTC))
    assert "last sync failed" not in client.get(reverse("registry:catalogue")).content.decode()


@pytest.mark.django_db
def test_banner_before_any_sync(client, shop):
    client.force_login(make_user("reader", "auditor"))
    assert "never been synced" in client.get(reverse("registry:catalogue")).content.decode()


@pytest.mark.django_db
def test_no_inline_script_on_registry_pages(client, shop):
    client.force_login(make_user("reader", "auditor"))
    for name, url in page_urls().items():
        if name == "registry:compare_csv":
            continue
        body = client.get(url).content.decode()
        for chunk in body.split("<script")[1:]:
            tag = chunk.split(">", 1)[0]
            assert "src=" in tag or 'type="application/json"' in tag, f"inline script on {url}: {tag}"
