"""/api/v1/requests/: create, list/filter, detail with evidence and history, transitions, error JSON,
DRF token auth (what a CI pipeline uses)."""

import pytest
from django.urls import reverse

from governance.tokens.services import api_token_create
from governance.workflow import services as workflow

pytestmark = [pytest.mark.django_db, pytest.mark.mlflow]


def api(client, user, method, name, *args, data=None, token=False):
    url = reverse(f"requests_api:{name}", args=args)
    kwargs = {"content_type": "application/json"} if method == "post" else {}
    if token:
        _token, key = api_token_create(actor=user, name="ci", scope="full")
        kwargs["HTTP_AUTHORIZATION"] = f"Token {key}"
    else:
        client.force_login(user)
    return getattr(client, method)(url, data or {}, **kwargs)


def test_ci_pipeline_flow_with_tokens(client, promo, scientist, engineer, ops_user):
    created = api(client, scientist, "post", "request_list", token=True,
                  data={"model": promo.name, "version": 2, "target_alias": "champion", "justification": "CI run 42"})
    assert created.status_code == 201
    body = created.json()
    assert body["state"] == "pending" and body["target"] == {"kind": "alias", "name": "champion",
                                                             "label": "@champion"}
    assert body["evidence"]["at_request"]["candidate"]["metrics"]["accuracy"] == 0.9
    assert body["gate_results"] and all(g["passed"] for g in body["gate_results"])
    rid = body["id"]
    approved = api(client, engineer, "post", "request_approve", rid, data={"comment": "ok"}, token=True)
    assert approved.status_code == 200 and approved.json()["state"] == "approved"
    deployed = api(client, ops_user, "post", "request_deploy", rid, data={"comment": "ship"}, token=True)
    assert deployed.status_code == 200 and deployed.json()["state"] == "deployed"
    detail = api(client, ops_user, "get", "request_detail", rid).json()
    assert [h["action"] for h in detail["history"]] == ["request.created", "request.approved", "deploy.started",
                                                        "deploy.succeeded"]
    assert detail["evidence"]["at_approval"]["incumbent"]["version"] == 1


def test_list_filters_and_visibility(client, shared_promo, scientist, outsider):
    workflow.promotion_request_create(actor=scientist, model_name=shared_promo.name, version=2, target_alias="champion",
                                      justification="a")
    workflow.promotion_request_create(actor=scientist, model_name=shared_promo.name, version=3, target_stage="Staging",
                                      justification="b")
    listing = api(client, scientist, "get", "request_list", data={"model": shared_promo.name}).json()
    assert listing["count"] == 2
    only = api(client, scientist, "get", "request_list", data={"target_stage": "Staging"}).json()
    assert [r["version"] for r in only["results"]] == [3]
    assert api(client, scientist, "get", "request_list", data={"state": "deployed"}).json()["count"] == 0
    assert api(client, scientist, "get", "request_list", data={"state": "bogus"}).status_code == 400
    assert api(client, outsider, "get", "request_list").json()["count"] == 0


def test_list_query_count_does_not_grow_with_rows(client, shared_promo, scientist, django_assert_max_num_queries):
    for alias in ("a1", "a2", "a3", "a4", "a5", "a6"):
        workflow.promotion_request_create(actor=scientist, model_name=shared_promo.name, version=2, target_alias=alias,
                                          justification="n")
    client.force_login(scientist)
    with django_assert_max_num_queries(12):
        assert client.get(reverse("requests_api:request_list")).status_code == 200


@pytest.mark.parametrize("payload,fragment", [
    ({"version": 2, "target_alias": "champion", "justification": "x"}, "model"),
    ({"model": "M", "version": 2, "justification": "x"}, "exactly one target"),
    ({"model": "M", "version": 2, "target_alias": "champion", "target_stage": "Staging", "justification": "x"},
     "exactly one target"),
    ({"model": "M", "version": 2, "target_stage": "Prod", "justification": "x"}, "Unknown stage"),
    ({"model": "M", "version": 99, "target_alias": "champion", "justification": "x"}, "no version 99"),
    ({"model": "M", "version": 2, "target_alias": "latest", "justification": "x"}, "not a valid alias"),
    ({"model": "M", "version": 2, "target_alias": "champion", "justification": "  "}, "justification"),
])
def test_invalid_create_is_400_with_detail(client, shared_promo, scientist, payload, fragment):
    payload = {k: (shared_promo.name if v == "M" else v) for k, v in payload.items()}
    response = api(client, scientist, "post", "request_list", data=payload)
    assert response.status_code == 400
    assert fragment.lower() in response.json()["detail"].lower()


def test_errors_404_409_and_reject_needs_comment(client, shared_promo, scientist, engineer, ops_user):
    assert api(client, engineer, "post", "request_approve", 999999).status_code == 404
    assert api(client, scientist, "post", "request_list",
               data={"model": "nope", "version": 1, "target_alias": "x", "justification": "j"}).status_code == 404
    req = workflow.promotion_request_create(actor=scientist, model_name=shared_promo.name, version=2,
                                            target_alias="champion", justification="a")
    dup = api(client, scientist, "post", "request_list",
              data={"model": shared_promo.name, "version": 3, "target_alias": "champion", "justification": "b"})
    assert dup.status_code == 409 and "open request" in dup.json()["detail"]
    early = api(client, ops_user, "post", "request_deploy", req.pk)
    assert early.status_code == 409 and "pending" in early.json()["detail"]
    no_comment = api(client, engineer, "post", "request_reject", req.pk, data={"comment": ""})
    assert no_comment.status_code == 400 and "comment" in no_comment.json()["detail"]
    assert api(client, engineer, "post", "request_approve", req.pk).status_code == 200
    again = api(client, engineer, "post", "request_reject", req.pk, data={"comment": "late"})
    assert again.status_code == 409


def test_rollback_via_api(client, promo, scientist, engineer, ops_user):
    req = workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=2,
                                            target_alias="champion", justification="a")
    workflow.promotion_request_approve(request_id=req.pk, actor=engineer)
    workflow.promotion_request_deploy(request_id=req.pk, actor=ops_user)
    response = api(client, ops_user, "post", "request_list",
                   data={"model": promo.name, "target_alias": "champion", "rollback": True, "urgent": True,
                         "justification": "incident 7"})
    assert response.status_code == 201
    assert response.json()["version"] == 1 and response.json()["rollback"] is True


def test_request_list_page_and_api_filter_alike(client, shared_promo, mlflow_factory, scientist, engineer):
    """The page and GET /api/v1/requests/ read one FilterSet: the same query string lists the same rows in
    the same order; `q` is text in the model name, `model` the exact name; a value neither can read is a
    400 with a message on both."""
    import re
    from urllib.parse import parse_qs

    from tests.fixtures_workflow import build_promo

    longer = build_promo(mlflow_factory, name=mlflow_factory.unique(f"big-{shared_promo.name}"))  # contains it
    longer.mirror()
    make = workflow.promotion_request_create
    a = make(actor=scientist, model_name=shared_promo.name, version=2, target_alias="champion", justification="a")
    b = make(actor=scientist, model_name=shared_promo.name, version=3, target_stage="Staging", justification="b")
    c = make(actor=scientist, model_name=longer.name, version=2, target_alias="champion", justification="c")
    workflow.promotion_request_cancel(request_id=b.pk, actor=scientist)
    page_url = reverse("governance:request_list")
    cases = {
        "": {a.pk, b.pk, c.pk},
        f"q={shared_promo.name}": {a.pk, b.pk, c.pk},
        "q=BIG-": {c.pk},  # case-insensitive
        f"model={shared_promo.name}": {a.pk, b.pk},
        f"model={shared_promo.name[:-1]}": set(),  # exact, never a substring
        f"q={shared_promo.name}&state=pending": {a.pk, c.pk},
        "target_alias=@champion&version=2": {a.pk, c.pk},
        f"requester={scientist.username}&target_stage=Staging": {b.pk},
    }
    for query, expected in cases.items():
        params = {k: v[0] for k, v in parse_qs(query).items()}
        client.force_login(engineer)
        page = client.get(page_url, params)
        assert page.status_code == 200, query
        on_page = [int(pk) for pk in re.findall(r'href="/governance/requests/(\d+)/"', page.content.decode())]
        from_api = [r["id"] for r in api(client, engineer, "get", "request_list", data=params).json()["results"]]
        assert on_page == from_api, query
        assert set(on_page) == expected, query
    # The paging links keep every filter.
    page = client.get(page_url, {"q": shared_promo.name, "state": "pending", "page": 1})
    assert parse_qs(page.context["query"]) == {"q": [shared_promo.name], "state": ["pending"]}
    for params, field, message in (({"state": "bogus"}, "state", "Select a valid choice"),
                                   ({"version": "abc"}, "version", "Enter a whole number"),
                                   ({"created_after": "yesterday"}, "created_after", "Enter a valid date/time"),
                                   ({"q": "x" * 300}, "q", "at most 256 characters")):
        client.force_login(engineer)
        page = client.get(page_url, params)
        assert page.status_code == 400, params
        text = page.content.decode()
        assert f'id="id_{field}_error"' in text and message in text and f"#{a.pk}" not in text, params
        refused = api(client, engineer, "get", "request_list", data=params)
        assert refused.status_code == 400 and field in refused.json()["fields"], (params, refused.json())
    assert client.get(page_url, {"page": "0"}).status_code == 400
