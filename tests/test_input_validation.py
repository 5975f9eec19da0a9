"""Every door that takes user input validates it: too long, malformed or missing input is a 400 that
names the field, and changes nothing (no state change, no audit event); input exactly at the limit
still goes through. Pages show the message next to the field, keep what was typed, and show the limit."""

import html
import uuid

import pytest
from django.urls import reverse

from governance.audit.models import AuditEvent
from governance.workflow import services as workflow
from governance.workflow.forms import TEXT_MAX_LENGTH, VERSION_MAX
from governance.workflow.models import Approval, Deployment, PromotionRequest
from registry_ui.validation import FILTER_TEXT_MAX_LENGTH
from tests.conftest import make_user

pytestmark = [pytest.mark.django_db]

TOO_LONG = TEXT_MAX_LENGTH + 1
PAGE_TOO_LONG = f"at most {TEXT_MAX_LENGTH} characters (it has {TOO_LONG})"
API_TOO_LONG = f"no more than {TEXT_MAX_LENGTH} characters"


def text_of(length: int, marker: str = "kept-") -> str:
    """Text of exactly `length` characters that starts with a marker the page must echo back."""
    return (marker + "x" * length)[:length]


def at_limit_with_line_breaks() -> str:
    """TEXT_MAX_LENGTH characters as a browser counts them, sent as a browser sends them (CRLF)."""
    lines = ["line"] * 10
    body = "\n".join(lines)
    return (body + "\n" + "y" * (TEXT_MAX_LENGTH - len(body) - 1)).replace("\n", "\r\n")


class Unchanged:
    """What a refused input must not have touched: the requests, their approvals and deploys, the trail."""

    def __init__(self):
        self.before = self.snapshot()

    @staticmethod
    def snapshot():
        return (AuditEvent.objects.count(), Approval.objects.count(), Deployment.objects.count(),
                list(PromotionRequest.objects.order_by("pk").values_list(
                    "pk", "state", "decided_by", "decision_comment", "updated_at")))

    def check(self):
        assert self.snapshot() == self.before


def page_text(response) -> str:
    return html.unescape(response.content.decode())


# --------------------------------------------------------------------------------------------------
# Promotion pages (real MLflow server)
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def pending(shared_promo, scientist):
    return workflow.promotion_request_create(actor=scientist, model_name=shared_promo.name, version=2,
                                             target_alias="champion", justification="better accuracy")


@pytest.fixture
def approved(pending, engineer):
    return workflow.promotion_request_approve(request_id=pending.pk, actor=engineer, comment="ok")


def _actor(action, scientist, engineer, ops_user):
    return {"approve": engineer, "reject": engineer, "cancel": scientist, "deploy": ops_user}[action]


@pytest.mark.mlflow
@pytest.mark.parametrize("action", ["approve", "reject", "cancel", "deploy"])
def test_page_transition_refuses_an_overlong_comment_and_keeps_it(client, pending, scientist, engineer, ops_user,
                                                                    action):
    if action == "deploy":
        workflow.promotion_request_approve(request_id=pending.pk, actor=engineer, comment="ok")
    client.force_login(_actor(action, scientist, engineer, ops_user))
    unchanged = Unchanged()
    comment = text_of(TOO_LONG)
    response = client.post(reverse(f"governance:request_{action}", args=[pending.pk]), {"comment": comment})
    assert response.status_code == 400
    body = page_text(response)
    assert PAGE_TOO_LONG in body
    assert f'id="id_comment_{action}_error"' in response.content.decode()  # next to the field (aria-describedby)
    assert f">\n{comment}</textarea>" in body  # what was typed is still there
    unchanged.check()


@pytest.mark.mlflow
@pytest.mark.parametrize("comment", ["colour \x1b[31mred\x1b[0m", "null \x00 byte", "bidi \u202eevil"])
def test_page_transition_refuses_control_characters(client, pending, engineer, comment):
    client.force_login(engineer)
    unchanged = Unchanged()
    response = client.post(reverse("governance:request_approve", args=[pending.pk]), {"comment": comment})
    assert response.status_code == 400
    assert "characters" in page_text(response) and 'id="id_comment_approve_error"' in response.content.decode()
    unchanged.check()


@pytest.mark.mlflow
def test_page_reject_without_a_reason_says_so_next_to_the_comment(client, pending, engineer):
    client.force_login(engineer)
    unchanged = Unchanged()
    response = client.post(reverse("governance:request_reject", args=[pending.pk]), {"comment": "   "})
    assert response.status_code == 400
    assert "Rejecting needs a comment that says why." in page_text(response)
    body = response.content.decode()
    assert 'id="id_comment_reject_error"' in body
    assert 'id="dialog-reject"' in body and "data-open-modal" in body  # the reject dialog comes back open
    unchanged.check()


@pytest.mark.mlflow
def test_page_override_without_a_comment_is_refused(client, pending, engineer):
    client.force_login(engineer)
    unchanged = Unchanged()
    response = client.post(reverse("governance:request_approve", args=[pending.pk]), {"override": "on"})
    assert response.status_code == 400 and "An override needs a comment" in page_text(response)
    unchanged.check()


@pytest.mark.mlflow
def test_page_comment_at_exactly_the_limit_is_kept_whole(client, pending, engineer):
    client.force_login(engineer)
    comment = at_limit_with_line_breaks()
    assert len(comment) > TEXT_MAX_LENGTH  # CRLF on the wire; one character each in the browser
    response = client.post(reverse("governance:request_approve", args=[pending.pk]), {"comment": comment})
    assert response.status_code == 302
    req = PromotionRequest.objects.get(pk=pending.pk)
    stored = comment.replace("\r\n", "\n")
    assert req.state == "approved" and req.decision_comment == stored and len(stored) == TEXT_MAX_LENGTH
    event = AuditEvent.objects.get(request_id=req.pk, action="request.approved")
    assert event.comment == stored


@pytest.mark.mlflow
def test_page_reject_at_exactly_the_limit(client, pending, engineer):
    client.force_login(engineer)
    comment = text_of(TEXT_MAX_LENGTH)
    response = client.post(reverse("governance:request_reject", args=[pending.pk]), {"comment": comment})
    assert response.status_code == 302
    assert PromotionRequest.objects.get(pk=pending.pk).decision_comment == comment


@pytest.mark.mlflow
def test_detail_page_shows_the_comment_limit(client, pending, engineer):
    client.force_login(engineer)
    body = client.get(reverse("governance:request_detail", args=[pending.pk])).content.decode()
    assert f'maxlength="{TEXT_MAX_LENGTH}"' in body
    assert f"At most {TEXT_MAX_LENGTH} characters." in body


def request_form(name, **overrides):
    data = {"model": name, "version": 2, "target_kind": "alias", "target_alias": "champion", "target_stage": "",
            "justification": "better accuracy"}
    return {**data, **overrides}


@pytest.mark.mlflow
@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"justification": text_of(TOO_LONG)}, "justification", PAGE_TOO_LONG),
    ({"justification": "  \r\n "}, "justification", "A justification is required."),
    ({"justification": "ring \x07 the bell"}, "justification", "Control characters"),
    ({"target_alias": "a" * 257}, "target_alias", "at most 256 characters"),
    ({"target_alias": "champ\nion"}, "target_alias", "Control characters"),
    ({"target_alias": "latest"}, "target_alias", "not a valid alias"),
    ({"target_kind": "stage", "target_stage": ""}, "target_stage", "Choose the stage"),
    ({"version": "two"}, "version", "Enter a whole number."),
    # One past the largest version this database's column holds (SQLite's is far larger than PostgreSQL's).
    ({"version": str(VERSION_MAX + 1)}, "version", "less than or equal to"),
])
def test_request_form_refuses_bad_input_next_to_the_field(client, shared_promo, scientist, overrides, field,
                                                          message):
    client.force_login(scientist)
    unchanged = Unchanged()
    data = request_form(shared_promo.name, **overrides)
    response = client.post(reverse("governance:request_create"), data)
    assert response.status_code == 400
    body = response.content.decode()
    assert f'id="id_{field}_error"' in body and message in page_text(response)
    assert shared_promo.name in body  # the model the user typed is still in its field
    if field == "justification" and overrides["justification"].strip():
        assert overrides["justification"][:20] in page_text(response)
    unchanged.check()


@pytest.mark.mlflow
def test_request_form_at_exactly_the_limit_and_shows_it(client, shared_promo, scientist):
    client.force_login(scientist)
    form = client.get(reverse("governance:request_create")).content.decode()
    assert f'maxlength="{TEXT_MAX_LENGTH}"' in form and f"At most {TEXT_MAX_LENGTH} characters." in form
    assert 'maxlength="256"' in form  # model name and alias: the model fields' limits
    justification = at_limit_with_line_breaks()
    response = client.post(reverse("governance:request_create"),
                           request_form(shared_promo.name, justification=justification))
    assert response.status_code == 302
    req = PromotionRequest.objects.get(model_name=shared_promo.name, target_alias="champion")
    assert req.justification == justification.replace("\r\n", "\n")
    assert AuditEvent.objects.filter(request_id=req.pk, action="request.created").count() == 1


@pytest.mark.mlflow
@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"target": "champion"}, "target", "stage:<stage> or alias:<alias>"),
    ({"target": "shelf:Production"}, "target", "stage:<stage> or alias:<alias>"),
    ({"target": "stage:Prod"}, "target", "Unknown stage"),
    ({"justification": text_of(TOO_LONG)}, "justification", PAGE_TOO_LONG),
    ({"justification": ""}, "justification", "A justification is required."),
])
def test_rollback_form_refuses_bad_input(client, shared_promo, ops_user, overrides, field, message):
    client.force_login(ops_user)
    unchanged = Unchanged()
    data = {"model": shared_promo.name, "target": "alias:champion", "justification": "incident", **overrides}
    response = client.post(reverse("governance:request_rollback"), data)
    assert response.status_code == 400
    assert f'id="id_{field}_error"' in response.content.decode() and message in page_text(response)
    unchanged.check()


@pytest.mark.mlflow
def test_an_empty_rollback_post_names_the_missing_fields(client, shared_promo, ops_user):
    client.force_login(ops_user)
    unchanged = Unchanged()
    response = client.post(reverse("governance:request_rollback"), {})
    assert response.status_code == 400
    body = response.content.decode()
    assert all(f'id="id_{f}_error"' in body for f in ("model", "target", "justification"))
    unchanged.check()


@pytest.mark.mlflow
def test_request_list_filters_are_validated(client, pending, scientist):
    client.force_login(scientist)
    bad = client.get(reverse("governance:request_list"), {"state": "bogus", "model": "x" * 257})
    assert bad.status_code == 400
    text = page_text(bad)
    assert "Select a valid choice" in text and "at most 256 characters" in text
    assert f"#{pending.pk}" not in text  # nothing listed under filters the page could not read
    good = client.get(reverse("governance:request_list"), {"state": "pending", "model": pending.model_name})
    assert good.status_code == 200 and pending.model_name in good.content.decode()


# --------------------------------------------------------------------------------------------------
# Requests API (real MLflow server)
# --------------------------------------------------------------------------------------------------


def api_post(client, name, *args, data):
    return client.post(reverse(f"requests_api:{name}", args=args), data, content_type="application/json")


@pytest.mark.mlflow
@pytest.mark.parametrize("action", ["approve", "reject", "cancel", "deploy"])
def test_api_transition_refuses_an_overlong_comment(client, pending, scientist, engineer, ops_user, action):
    if action == "deploy":
        workflow.promotion_request_approve(request_id=pending.pk, actor=engineer, comment="ok")
    client.force_login(_actor(action, scientist, engineer, ops_user))
    unchanged = Unchanged()
    response = client.post(reverse(f"requests_api:request_{action}", args=[pending.pk]),
                           {"comment": text_of(TOO_LONG)}, content_type="application/json")
    assert response.status_code == 400
    body = response.json()
    assert API_TOO_LONG in body["fields"]["comment"][0]
    assert body["detail"].startswith("comment: ") and API_TOO_LONG in body["detail"]
    unchanged.check()


@pytest.mark.mlflow
def test_api_reject_needs_a_reason_and_takes_one_at_the_limit(client, pending, engineer):
    client.force_login(engineer)
    unchanged = Unchanged()
    url = reverse("requests_api:request_reject", args=[pending.pk])
    blank = client.post(url, {"comment": " "}, content_type="application/json")
    assert blank.status_code == 400
    assert blank.json()["fields"] == {"comment": ["Rejecting needs a comment that says why."]}
    ansi = client.post(url, {"comment": "no \x1b[2J"}, content_type="application/json")
    assert ansi.status_code == 400 and "Control characters" in ansi.json()["fields"]["comment"][0]
    unchanged.check()
    ok = client.post(url, {"comment": text_of(TEXT_MAX_LENGTH)}, content_type="application/json")
    assert ok.status_code == 200 and ok.json()["state"] == "rejected"
    assert len(ok.json()["decision_comment"]) == TEXT_MAX_LENGTH


@pytest.mark.mlflow
def test_api_deploy_at_exactly_the_limit(client, shared_promo, scientist, engineer, ops_user):
    alias = f"limit-{uuid.uuid4().hex[:8]}"  # its own alias: the shared model's champion stays put
    req = workflow.promotion_request_create(actor=scientist, model_name=shared_promo.name, version=2,
                                            target_alias=alias, justification="edge")
    workflow.promotion_request_approve(request_id=req.pk, actor=engineer)
    client.force_login(ops_user)
    response = api_post(client, "request_deploy", req.pk, data={"comment": text_of(TEXT_MAX_LENGTH)})
    assert response.status_code == 200 and response.json()["state"] == "deployed"
    event = AuditEvent.objects.get(request_id=req.pk, action="deploy.started")
    assert len(event.comment) == TEXT_MAX_LENGTH


@pytest.mark.mlflow
@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"justification": text_of(TOO_LONG)}, "justification", API_TOO_LONG),
    ({"justification": "tab\tok but not \x1b"}, "justification", "Control characters"),
    ({"model": "m" * 257}, "model", "no more than 256 characters"),
    ({"target_alias": "a" * 257}, "target_alias", "no more than 256 characters"),
    ({"target_alias": "bad alias"}, "target_alias", "contains whitespace"),
    ({"version": "two"}, "version", "A valid integer is required."),
    ({"version": 0}, "version", "greater than or equal to 1"),
])
def test_api_create_refuses_bad_input_with_field_messages(client, shared_promo, scientist, overrides, field,
                                                          message):
    client.force_login(scientist)
    unchanged = Unchanged()
    data = {"model": shared_promo.name, "version": 2, "target_alias": "champion", "justification": "j", **overrides}
    response = api_post(client, "request_list", data=data)
    assert response.status_code == 400
    body = response.json()
    assert message in " ".join(body["fields"][field]) and body["detail"]
    unchanged.check()


@pytest.mark.mlflow
def test_api_create_at_exactly_the_limit(client, shared_promo, scientist):
    justification = text_of(TEXT_MAX_LENGTH)
    client.force_login(scientist)
    response = api_post(client, "request_list",
                        data={"model": shared_promo.name, "version": 2, "target_alias": "champion",
                              "justification": justification})
    assert response.status_code == 201 and response.json()["justification"] == justification


@pytest.mark.mlflow
def test_api_list_refuses_malformed_filters(client, pending, scientist):
    client.force_login(scientist)
    url = reverse("requests_api:request_list")
    bad = client.get(url, {"version": "two"})  # used to answer an empty list, as if nothing matched
    assert bad.status_code == 400 and "version" in bad.json()["fields"]
    assert client.get(url, {"requester": "r" * 151}).json()["fields"]["requester"]
    assert client.get(url, {"page": "0"}).json()["fields"]["page"]
    good = client.get(url, {"version": 2, "requester": "scientist"})
    assert good.status_code == 200 and [r["id"] for r in good.json()["results"]] == [pending.pk]


# --------------------------------------------------------------------------------------------------
# Audit pages and API
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def auditor_client(client, auditor):
    client.force_login(auditor)
    return client


@pytest.mark.parametrize(("params", "field", "message"), [
    ({"q": "q" * (FILTER_TEXT_MAX_LENGTH + 1)}, "q", f"at most {FILTER_TEXT_MAX_LENGTH} characters"),
    ({"actor": "a" * 151}, "actor", "at most 150 characters"),
    ({"model": "line\nbreak"}, "model", "Control characters"),
    ({"version": "x"}, "version", "Enter a whole number."),
    ({"request": "-3"}, "request", "greater than or equal to 1"),
    ({"action": "no.such"}, "action", "Unknown action"),
    ({"since": "yesterday"}, "since", "since must be an ISO date"),
    ({"since": "2026-02-01", "until": "2026-01-01"}, "until", "until must not be before since"),
    ({"before": "abc"}, "before", "Enter a whole number."),
])
def test_search_page_refuses_bad_filters_next_to_the_field(auditor_client, params, field, message):
    unchanged = Unchanged()
    response = auditor_client.get(reverse("audit:search"), params)
    assert response.status_code == 400
    assert f'id="id_{field}_error"' in response.content.decode() and message in page_text(response)
    assert response.context["events"] == []
    unchanged.check()


def test_search_page_keeps_what_was_typed_and_shows_limits(auditor_client):
    typed = "q" * (FILTER_TEXT_MAX_LENGTH + 1)
    body = auditor_client.get(reverse("audit:search"), {"q": typed, "actor": "<b>eve</b>"}).content.decode()
    assert f'value="{typed}"' in body and 'value="&lt;b&gt;eve&lt;/b&gt;"' in body
    assert f'maxlength="{FILTER_TEXT_MAX_LENGTH}"' in body and 'maxlength="150"' in body
    assert f"At most {FILTER_TEXT_MAX_LENGTH} characters." in body


def test_search_at_exactly_the_limit(auditor_client):
    response = auditor_client.get(reverse("audit:search"), {"q": "q" * FILTER_TEXT_MAX_LENGTH, "actor": "a" * 150})
    assert response.status_code == 200


def test_export_with_a_bad_filter_is_400_and_not_recorded(auditor_client):
    unchanged = Unchanged()
    for params in ({"format": "xml"}, {"version": "x"}, {"q": "q" * (FILTER_TEXT_MAX_LENGTH + 1)}):
        response = auditor_client.get(reverse("audit:export"), params)
        assert response.status_code == 400
        assert next(iter({k for k in params})) in response.content.decode()
    unchanged.check()
    ok = auditor_client.get(reverse("audit:export"), {"format": "json", "q": "q" * FILTER_TEXT_MAX_LENGTH})
    assert ok.status_code == 200
    b"".join(ok.streaming_content)
    assert AuditEvent.objects.filter(action="report.exported").count() == 1


def test_model_report_with_bad_parameters_is_400_and_not_recorded(auditor_client, mirror):
    mirror.model("fraud-detector")
    url = reverse("audit:model_report", args=["fraud-detector"])
    unchanged = Unchanged()
    for params, message in (({"format": "pdf"}, "format: Select a valid choice"),
                            ({"since": "soon"}, "since: since must be an ISO date")):
        response = auditor_client.get(url, params)
        assert response.status_code == 400 and message in page_text(response)
    unchanged.check()
    assert auditor_client.get(url, {"format": "csv", "since": "2020-01-01"}).status_code == 200
    assert AuditEvent.objects.filter(action="report.exported").count() == 1


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": "501"}, "limit"), ({"limit": "0"}, "limit"), ({"before": "x"}, "before"),
    ({"q": "q" * (FILTER_TEXT_MAX_LENGTH + 1)}, "q"), ({"action": "no.such"}, "action"),
    ({"until": "31/01/2026"}, "until"),
])
def test_audit_api_refuses_bad_parameters(auditor_client, params, field):
    unchanged = Unchanged()
    response = auditor_client.get(reverse("audit_api:event_list"), params)
    assert response.status_code == 400
    body = response.json()
    assert set(body["fields"]) == {field} and body["detail"].startswith(f"{field}: ")
    unchanged.check()


def test_audit_api_at_exactly_the_limits(auditor_client):
    response = auditor_client.get(reverse("audit_api:event_list"),
                                  {"limit": "500", "q": "q" * FILTER_TEXT_MAX_LENGTH})
    assert response.status_code == 200


# --------------------------------------------------------------------------------------------------
# Registry pages and API
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def reader(client, mirror):
    mirror.model("fraud-detector", tags={"team": "risk"})
    client.force_login(make_user("reader", "auditor"))
    return client


@pytest.mark.parametrize(("params", "field", "message"), [
    ({"q": "q" * (FILTER_TEXT_MAX_LENGTH + 1)}, "q", f"at most {FILTER_TEXT_MAX_LENGTH} characters"),
    ({"tag": "team=\x1b"}, "tag", "Control characters"),
    ({"stage": "Prod"}, "stage", "Select a valid choice"),
    ({"per_page": "201"}, "per_page", "less than or equal to 200"),
    ({"per_page": "0"}, "per_page", "greater than or equal to 1"),
    ({"page": "abc"}, "page", "Enter a whole number."),
])
def test_catalogue_refuses_bad_parameters(reader, params, field, message):
    response = reader.get(reverse("registry:catalogue"), params)
    assert response.status_code == 400
    text = page_text(response)
    assert message in text and "fraud-detector" not in text
    fragment = reader.get(reverse("registry:catalogue"), params, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 400 and message in page_text(fragment)


def test_catalogue_keeps_the_typed_search_and_shows_its_limit(reader):
    typed = "q" * (FILTER_TEXT_MAX_LENGTH + 1)
    body = reader.get(reverse("registry:catalogue"), {"q": typed}).content.decode()
    assert f'value="{typed}"' in body and 'id="q_error"' in body
    assert f'maxlength="{FILTER_TEXT_MAX_LENGTH}"' in body and f"At most {FILTER_TEXT_MAX_LENGTH} characters." in body


def test_catalogue_at_exactly_the_limits(reader):
    response = reader.get(reverse("registry:catalogue"), {"q": "fraud", "tag": "team=risk", "per_page": 200})
    assert response.status_code == 200 and "fraud-detector" in response.content.decode()
    assert reader.get(reverse("registry:catalogue"), {"q": "q" * FILTER_TEXT_MAX_LENGTH}).status_code == 200


@pytest.mark.parametrize(("params", "field", "message"), [
    ({"q": "q" * (FILTER_TEXT_MAX_LENGTH + 1)}, "q", f"at most {FILTER_TEXT_MAX_LENGTH} characters"),
    ({"tag": ["team:risk", "=no-key"]}, "tag", "tag filter must look like key=value, key:value or key"),
    ({"stage": "Prod"}, "stage", "stage must be one of"),
    ({"alias": "a" * 258}, "alias", "at most 257 characters"),
    ({"page": "abc"}, "page", "page must be a whole number"),
])
def test_registry_api_refuses_bad_parameters(reader, params, field, message):
    response = reader.get(reverse("registry_api:model_list"), params)
    assert response.status_code == 400
    body = response.json()
    assert message in " ".join(body["fields"][field]) and message in body["detail"]


def test_registry_api_version_list_page_is_validated(reader):
    url = reverse("registry_api:version_list", kwargs={"name": "fraud-detector"})
    assert reader.get(url, {"page": "-1"}).json()["fields"]["page"]
    assert reader.get(url, {"page": "1"}).status_code == 200


def test_registry_api_at_exactly_the_limits(reader):
    response = reader.get(reverse("registry_api:model_list"), {"q": "q" * FILTER_TEXT_MAX_LENGTH})
    assert response.status_code == 200 and response.json()["results"] == []
    response = reader.get(reverse("registry_api:model_list"), {"q": "fraud", "tag": "team:risk"})
    assert [m["name"] for m in response.json()["results"]] == ["fraud-detector"]
