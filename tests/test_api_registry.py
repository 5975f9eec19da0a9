"""The read-only registry API: authentication, visibility, filters, odd names in paths, query counts."""

from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from governance.tokens.services import api_token_create
from registry_ui.mirror.models import DatasetInput, ModelAlias, ModelVersion, RegisteredModel, RunSnapshot, SyncState

pytestmark = pytest.mark.django_db

ODD_NAME = "Modèle de crédit v1.2 (it's) ünï 模型 100% #1?"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def mirror(db):
    churn = RegisteredModel.objects.create(name="churn", description="Predicts churn", tags={"team": "growth"},
                                           created_at=T0, updated_at=T0)
    fraud = RegisteredModel.objects.create(name="fraud.detector", description="<b>fraud</b>",
                                           tags={"team": "risk", "tier.level": "1"}, created_at=T0)
    odd = RegisteredModel.objects.create(name=ODD_NAME, description="odd", tags={})
    ModelVersion.objects.create(model=churn, version=1, stage="Archived", run_id="run-1")
    ModelVersion.objects.create(model=churn, version=2, stage="Production", run_id="run-2")
    ModelVersion.objects.create(model=fraud, version=1, stage="Staging")
    ModelVersion.objects.create(model=odd, version=3)
    ModelAlias.objects.create(model=churn, alias="champion", version=2)
    ModelAlias.objects.create(model=fraud, alias="challenger", version=1)
    run = RunSnapshot.objects.create(run_id="run-2", experiment_name="churn-exp", params={"lr": "0.1"},
                                     metrics={"auc": 0.9, "loss": "NaN"}, git_commit="abc123")
    DatasetInput.objects.create(run=run, name="train", digest="d1", context="training")
    return {"churn": churn, "fraud": fraud, "odd": odd}


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def all_urls():
    return [
        reverse("registry_api:model_list"),
        reverse("registry_api:model_detail", kwargs={"name": "churn"}),
        reverse("registry_api:version_list", kwargs={"name": "churn"}),
        reverse("registry_api:version_detail", kwargs={"name": "churn", "version": 2}),
        reverse("registry_api:sync_status"),
    ]


def test_a_user_without_a_role_sees_no_model(mirror, outsider):
    # (and 404 for each of them: tests/test_url_matrix.py)
    assert api(outsider).get(reverse("registry_api:model_list")).json()["results"] == []


def test_token_authentication(mirror, auditor):
    _token, secret = api_token_create(actor=auditor, name="reader", scope="read")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    assert client.get(reverse("registry_api:model_list")).status_code == 200
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get(reverse("registry_api:model_list")).status_code == 401


def test_api_is_read_only(mirror, admin_user):
    client = api(admin_user)
    for url in all_urls():
        assert client.post(url, {}).status_code == 405
        assert client.delete(url).status_code == 405


def names(response):
    return [m["name"] for m in response.json()["results"]]


def test_model_list_search_and_filters(mirror, scientist):
    client = api(scientist)
    url = reverse("registry_api:model_list")
    assert sorted(names(client.get(url))) == sorted(["churn", "fraud.detector", ODD_NAME])  # collation varies
    assert names(client.get(url, {"q": "CHURN"})) == ["churn"]
    assert names(client.get(url, {"q": "fraud</b>"})) == ["fraud.detector"]  # description text
    assert names(client.get(url, {"tag": "team:risk"})) == ["fraud.detector"]
    assert names(client.get(url, {"tag": "tier.level:1"})) == ["fraud.detector"]
    assert names(client.get(url, {"tag": ["team:risk", "tier.level:2"]})) == []
    assert names(client.get(url, {"stage": "Production"})) == ["churn"]
    assert names(client.get(url, {"alias": "@challenger"})) == ["fraud.detector"]
    assert names(client.get(url, {"stage": "Staging", "alias": "champion"})) == []
    bad = client.get(url, {"stage": "Prod"})
    assert bad.status_code == 400 and "stage must be one of" in str(bad.json()["detail"])
    # One tag syntax everywhere (pages and API): key=value, key:value, or key alone (has the tag).
    assert names(client.get(url, {"tag": "team=risk"})) == ["fraud.detector"]
    assert sorted(names(client.get(url, {"tag": "team"}))) == ["churn", "fraud.detector"]
    assert names(client.get(url, {"tag": "no-such-key"})) == []
    empty_key = client.get(url, {"tag": "=x"})
    assert empty_key.status_code == 400 and empty_key.json()["code"] == "invalid"
    assert "tag" in empty_key.json()["fields"]
    [first] = [m for m in client.get(url).json()["results"] if m["name"] == "churn"]
    assert first["aliases"] == {"champion": 2} and first["version_count"] == 2 and first["latest_version"] == 2


def test_model_list_is_paginated_with_a_bounded_number_of_queries(mirror, scientist, django_assert_max_num_queries):
    RegisteredModel.objects.bulk_create(RegisteredModel(name=f"bulk-{i:03d}") for i in range(120))
    client = api(scientist)
    with django_assert_max_num_queries(6):
        body = client.get(reverse("registry_api:model_list")).json()
    assert body["count"] == 123 and len(body["results"]) == 50 and body["next"]


def test_odd_names_work_in_paths(mirror, scientist):
    client = api(scientist)
    url = reverse("registry_api:model_detail", kwargs={"name": ODD_NAME})
    assert url == f"/api/v1/models/{quote(ODD_NAME, safe='')}/".replace("%28", "(").replace("%29", ")").replace(
        "%27", "'")
    body = client.get(url).json()
    assert body["name"] == ODD_NAME and body["versions"][0]["version"] == 3
    assert client.get(body["versions_url"]).json()["results"][0]["version"] == 3
    assert client.get(body["versions"][0]["url"]).json()["model"] == ODD_NAME
    assert client.get(f"/api/v1/models/{quote(ODD_NAME, safe='')}/versions/").json()["count"] == 1
    assert client.get(reverse("registry_api:model_detail", kwargs={"name": "fraud.detector"})).status_code == 200


def test_version_detail_carries_the_run_snapshot(mirror, auditor):
    body = api(auditor).get(reverse("registry_api:version_detail", kwargs={"name": "churn", "version": 2})).json()
    assert body["stage"] == "Production" and body["aliases"] == ["champion"]
    assert body["run"]["params"] == {"lr": "0.1"} and body["run"]["metrics"] == {"auc": 0.9, "loss": "NaN"}
    assert body["run"]["datasets"] == [{"name": "train", "digest": "d1", "source_type": "", "source": "",
                                        "context": "training"}]
    v1 = api(auditor).get(reverse("registry_api:version_detail", kwargs={"name": "churn", "version": 1})).json()
    assert v1["run"] is None  # run-1 never fetched
    missing = api(auditor).get(reverse("registry_api:version_detail", kwargs={"name": "churn", "version": 9}))
    assert missing.status_code == 404


def test_model_detail_lists_the_newest_fifty_versions(mirror, engineer, django_assert_max_num_queries):
    churn = mirror["churn"]
    ModelVersion.objects.bulk_create(ModelVersion(model=churn, version=n) for n in range(3, 80))
    with django_assert_max_num_queries(6):
        body = api(engineer).get(reverse("registry_api:model_detail", kwargs={"name": "churn"})).json()
    assert [v["version"] for v in body["versions"]] == list(range(79, 29, -1))


def test_version_list(mirror, engineer):
    body = api(engineer).get(reverse("registry_api:version_list", kwargs={"name": "churn"})).json()
    assert [v["version"] for v in body["results"]] == [2, 1]


def test_version_list_filters_on_the_versions_own_stage_tags_and_alias(mirror, engineer):
    churn = mirror["churn"]
    ModelVersion.objects.filter(model=churn, version=1).update(tags={"validation_status": "failed"},
                                                                created_at=T0)
    ModelVersion.objects.filter(model=churn, version=2).update(tags={"validation_status": "passed"},
                                                                created_at=datetime(2026, 3, 1, tzinfo=UTC))
    url = reverse("registry_api:version_list", kwargs={"name": "churn"})
    client = api(engineer)

    def versions(**params):
        response = client.get(url, params)
        assert response.status_code == 200, response.json()
        return [v["version"] for v in response.json()["results"]]

    assert versions(stage="Archived") == [1]  # was ignored before
    assert versions(tag="validation_status=passed") == [2]  # the VERSION's tags
    assert versions(tag="team=growth") == []  # a MODEL tag is not a version tag
    assert versions(alias="@champion") == [2]
    assert versions(created_after="2026-02-01T00:00:00Z") == [2]
    assert versions(created_before="2026-02-01T00:00:00Z") == [1]
    assert versions(q="run-1") == [1]
    bad = client.get(url, {"stage": "Prod", "created_after": "yesterday"})
    assert bad.status_code == 400 and set(bad.json()["fields"]) == {"stage", "created_after"}


def test_sync_status_reports_freshness_and_failure(db, scientist):
    state = SyncState.get()
    state.last_success_at = T0
    state.last_error_at = datetime(2026, 1, 2, tzinfo=UTC)
    state.last_error = "MLflow unavailable: connection refused"
    state.last_report = {"created": 3, "changes": [{"model": "secret-model"}]}
    state.save()
    body = api(scientist).get(reverse("registry_api:sync_status")).json()
    assert body["failing"] is True and body["running"] is False
    assert body["last_error"].startswith("MLflow unavailable")
    assert body["last_report"] == {"created": 3, "changes": 1}  # counts only, no model names
