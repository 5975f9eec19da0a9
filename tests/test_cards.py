"""Model cards against the real MLflow server: a new card is prefilled from the evidence; an edit applies
at once below Tier 1 and waits for a second approver at Tier 1 (the diff shown); the approved card is the
version's description in MLflow (read back with MlflowClient) and the sync takes it for ours; raw HTML
and an emptied required section are refused with nothing changed; a Tier 1 version is not approved while
its card lacks a required section; the PDF export has every section; admins change templates, audited."""

import datetime
import io
import json

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from pypdf import PdfReader

from governance.audit.models import AuditEvent
from governance.cards import defaults, services
from governance.cards import selectors as cards
from governance.cards.models import CardRevision, CardTemplate
from governance.errors import Conflict, InvalidInput, PolicyViolation
from governance.risk import services as risk
from governance.workflow import services as workflow
from governance.workflow.inbox import awaiting_my_action
from governance.workflow.models import RequestState
from registry_ui.mirror.models import ModelVersion
from tests.conftest import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.mlflow]

FULL = {key: f"The {title.lower()} of this model." for key, title, _ in defaults.SECTIONS}


def card_events(name):
    return list(AuditEvent.objects.filter(model_name=name, action__startswith="model_card.").order_by("seq")
                .values_list("action", flat=True))


def changes():
    return AuditEvent.objects.exclude(action__startswith="user.").count()  # sign-ins aside


def set_tier(name, tier, requester, approver):
    change = risk.tier_change_request(actor=requester, model_name=name, tier=tier, reason="assessed")
    risk.tier_change_approve(actor=approver, change_id=change.pk)


@pytest.fixture
def engineer2(db):
    return make_user("engineer2", "ml_engineer")


def edit(actor, promo, sections, *, version=2, base=None):
    return services.card_edit(actor=actor, model_name=promo.name, version=version, sections=sections,
                              base_revision=base, comment="test")


def test_a_new_card_is_prefilled_and_an_edit_below_tier1_is_written_to_mlflow(client, promo, scientist, engineer):
    name = promo.name
    risk.finding_raise(actor=engineer, model_name=name, version=2, severity="minor", description="Calibrate scores",
                       owner_username="scientist", due_date=datetime.date(2030, 1, 1))
    client.force_login(scientist)
    url = reverse("cards:card_edit", args=[name, 2])
    page = client.get(url)
    assert page.status_code == 200
    form = page.context["form"]
    evidence = {f.name: f.value() for f in form.section_fields()}
    # datasets with digests, params, metrics, findings: read from what the console holds
    assert "`abc123`" in evidence["s_training_data"] and "`depth` = `5`" in evidence["s_training_data"]
    assert "`accuracy`" in evidence["s_performance"] and "0.9" in evidence["s_performance"]
    assert "Calibrate scores" in evidence["s_validation"] and "none yet" in evidence["s_validation"]
    # Preview shows the diff and saves nothing; saving the prefilled text as it is applies (no tier).
    data = {k: v or "" for k, v in evidence.items()} | {"s_purpose": "Scores card applications.", "comment": "first"}
    preview = client.post(url, data | {"action": "preview"})
    assert preview.status_code == 200 and "+Scores card applications." in preview.content.decode()
    assert not CardRevision.objects.exists()
    saved = client.post(url, data | {"action": "save"})
    assert saved.status_code == 302
    rev = CardRevision.objects.get()
    assert (rev.state, rev.publish_state, rev.number) == ("approved", "written", 1)
    assert card_events(name) == ["model_card.edited", "model_card.published"]
    # MLflow's own users see it: the version's description and a tag linking back.
    mv = promo.factory.client.get_model_version(name, "2")
    assert mv.description.startswith(f"# Model card: {name} v2") and "## Purpose\n\nScores card applications." \
        in mv.description and "Model card revision 1, written by scientist" in mv.description
    assert mv.tags[cards.LINK_TAG].endswith(f"{cards.card_url(name, 2)}?revision=1")
    assert ModelVersion.objects.get(model=promo.model, version=2).description == mv.description
    # Written again: MLflow already shows it, nothing is sent.
    assert services.card_publish_again(actor=scientist, model_name=name, version=2) == "written"
    assert AuditEvent.objects.filter(action="model_card.published").last().after["sent"] is False


def test_the_card_takes_the_signature_and_requirements_the_worker_read(client, promo, scientist):
    from django.utils import timezone

    from registry_ui.mirror.models import ModelFiles

    client.force_login(scientist)
    url = reverse("cards:card_edit", args=[promo.name, 2])

    def evidence():
        form = client.get(url).context["form"]
        return {f.name: f.value() or "" for f in form.section_fields()}

    # Not read yet: the card says so rather than claiming the model declares no signature.
    assert "not read yet" in evidence()["s_inputs"]
    mv = ModelVersion.objects.get(model__name=promo.name, version=2)
    ModelFiles.objects.filter(version=mv).update(needs={
        "flavors": ["python_function", "sklearn"], "python_version": "3.11.9", "mlflow_version": "3.1.0",
        "artifact_location": "runs:/r/model", "example_text": "", "signature": {"inputs": "[...]"},
        "inputs": [{"name": "age", "type": "long"}], "outputs": [{"type": "double"}],
        "requirements": [{"file": "requirements.txt", "line": "scikit-learn==1.5.0", "pinned": True}],
    }, read_at=timezone.now())
    found = evidence()
    assert "`age`: `long`" in found["s_inputs"] and "`double`" in found["s_output"]
    assert "Requirements (Python 3.11.9):\n\n- `scikit-learn==1.5.0`\n" in found["s_training_data"] + "\n"


def test_the_sync_takes_the_cards_description_for_the_consoles_write(promo, scientist, synced):
    rev = edit(scientist, promo, {"purpose": "Written by the console"})
    # The sync sees the description before the mirror took it (as when the write raced a sync).
    mirrored = ModelVersion.objects.get(model=promo.model, version=2)
    ModelVersion.objects.filter(pk=mirrored.pk).update(description="", tags={
        k: v for k, v in mirrored.tags.items() if k != cards.LINK_TAG})
    synced(promo.name)
    seen = AuditEvent.objects.get(action="registry.description_changed", model_name=promo.name, version=2)
    assert seen.after["explained_by"] == f"model card revision {rev.number}"
    assert seen.comment.startswith("Written by the console (model card revision 1)")
    tag = AuditEvent.objects.get(action="registry.tag_set", model_name=promo.name, version=2)
    assert tag.after["explained_by"] == "model card revision 1"
    assert not AuditEvent.objects.filter(action="registry.drift", model_name=promo.name).exists()


def test_tier1_edits_wait_for_a_second_approver_who_sees_the_diff(client, promo, scientist, engineer, engineer2,
                                                                  auditor):
    name = promo.name
    set_tier(name, "tier1", scientist, engineer)
    first = edit(scientist, promo, {"purpose": "Old purpose"})
    assert first.state == "pending" and card_events(name) == ["model_card.proposed"]
    assert promo.factory.client.get_model_version(name, "2").description == ""  # nothing in force yet
    with pytest.raises(PermissionDenied):  # deciding takes an approver
        services.card_revision_approve(actor=scientist, revision_id=first.pk)
    with pytest.raises(InvalidInput, match="comment"):
        services.card_revision_reject(actor=engineer, revision_id=first.pk, comment=" ")
    services.card_revision_approve(actor=engineer, revision_id=first.pk, comment="fine")
    assert "Old purpose" in promo.factory.client.get_model_version(name, "2").description
    with pytest.raises(Conflict, match="changed since"):  # an edit of a card that changed meanwhile
        edit(scientist, promo, {"purpose": "x"}, base=None)
    # An approver's own edit goes to another approver; the page shows the diff to the approved card.
    second = edit(engineer, promo, {"purpose": "New purpose", "owner": "Credit risk team"}, base=first.pk)
    with pytest.raises(PolicyViolation, match="other than its author"):
        services.card_revision_approve(actor=engineer, revision_id=second.pk)
    client.force_login(engineer2)
    page = client.get(reverse("cards:card_detail", args=[name, 2])).content.decode()
    assert "-Old purpose" in page and "+New purpose" in page and "Approve card edit" in page
    client.force_login(auditor)
    assert "Approve card edit" not in client.get(reverse("cards:card_detail", args=[name, 2])).content.decode()
    with pytest.raises(PermissionDenied):
        services.card_revision_approve(actor=auditor, revision_id=second.pk)
    services.card_revision_approve(actor=engineer2, revision_id=second.pk)
    described = promo.factory.client.get_model_version(name, "2").description
    assert "New purpose" in described and "approved by engineer2" in described
    assert card_events(name) == ["model_card.proposed", "model_card.approved", "model_card.published",
                                 "model_card.proposed", "model_card.approved", "model_card.published"]


def test_raw_html_and_an_emptied_required_section_are_refused_with_nothing_changed(client, promo, scientist,
                                                                                   ops_user, auditor):
    name = promo.name
    rev = edit(scientist, promo, {"purpose": "Scores applications", "inputs": "Use `<b>` tags? no"})
    before = (CardRevision.objects.count(), changes())
    for bad, match in [("<script>alert(1)</script>", "raw HTML"), ('<img src=x onerror="alert(1)">', "raw HTML"),
                       ("[click](javascript:alert(1))", "javascript: URL")]:
        with pytest.raises(InvalidInput, match=match):
            edit(scientist, promo, {"purpose": "Scores applications", "limitations": bad}, base=rev.pk)
    with pytest.raises(InvalidInput, match="'Purpose' cannot be emptied"):
        edit(scientist, promo, {"purpose": "  ", "owner": "me"}, base=rev.pk)
    for who in (ops_user, auditor):
        with pytest.raises(PermissionDenied):
            edit(who, promo, {"purpose": "x"}, base=rev.pk)
    assert (CardRevision.objects.count(), changes()) == before
    # The page says why, with 400, and keeps what was typed.
    client.force_login(scientist)
    url = reverse("cards:card_edit", args=[name, 2])
    fields = {f"s_{k}": "" for k, _, _ in defaults.SECTIONS}
    response = client.post(url, fields | {"s_purpose": "ok", "s_sla": "<iframe src=//evil>", "action": "save",
                                          "base_revision": rev.pk})
    body = response.content.decode()
    assert response.status_code == 400 and "contains raw HTML" in body and "Nothing was saved" in body
    assert "&lt;iframe src=//evil&gt;" in body and "<iframe" not in body
    client.force_login(ops_user)
    assert client.get(url).status_code == 403
    assert (CardRevision.objects.count(), changes()) == before


def test_a_tier1_version_is_not_approved_while_its_card_lacks_a_required_section(client, promo, scientist, engineer,
                                                                                 engineer2, settings):
    name = promo.name
    set_tier(name, "tier1", scientist, engineer)
    settings.RISK_TIER_POLICY = {**settings.RISK_TIER_POLICY,
                                 "tier1": {"quorum": 2, "require_validation": False, "approval_validity_days": 180}}
    req = workflow.promotion_request_create(actor=scientist, model_name=name, version=2, target_alias="champion",
                                            justification="better")
    with pytest.raises(PolicyViolation, match="model card of v2 lacks required section"):
        workflow.promotion_request_approve(request_id=req.pk, actor=engineer)
    draft = edit(scientist, promo, {"purpose": "Scores applications"})
    services.card_revision_approve(actor=engineer2, revision_id=draft.pk)
    assert req.pk not in [r.pk for r in awaiting_my_action(engineer)[0]]  # the inbox agrees
    client.force_login(engineer)
    page = client.get(reverse("governance:request_detail", args=[req.pk])).content.decode()
    assert "The model card of v2 lacks required section(s): Intended use, Inputs" in page
    assert 'id="review-card"' in page and "still empty: Intended use" in page
    complete = edit(scientist, promo, FULL, base=draft.pk)
    services.card_revision_approve(actor=engineer2, revision_id=complete.pk)
    assert req.pk in [r.pk for r in awaiting_my_action(engineer)[0]]
    workflow.promotion_request_approve(request_id=req.pk, actor=engineer)
    assert workflow.promotion_request_approve(request_id=req.pk, actor=engineer2).state == RequestState.APPROVED


def test_the_exports_have_every_section_and_the_pdf_fetches_nothing(client, promo, scientist, auditor):
    sections = FULL | {"limitations": "Not for thin-file applicants. ![chart](http://127.0.0.1:9/leak.png)"}
    edit(scientist, promo, sections)
    client.force_login(auditor)  # auditors read and export
    html = client.get(reverse("cards:card_export", args=[promo.name, 2, "html"]))
    assert html.status_code == 200 and "css/card.css" in html.content.decode()
    pdf = client.get(reverse("cards:card_export", args=[promo.name, 2, "pdf"]))
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    text = " ".join(" ".join((p.extract_text() or "").split()) for p in PdfReader(io.BytesIO(pdf.content)).pages)
    for _, title, _ in defaults.SECTIONS:
        assert title in text, title
    assert f"Model card: {promo.name} v2" in text and "Not for thin-file applicants." in text
    assert client.get(reverse("cards:card_export", args=[promo.name, 3, "pdf"])).status_code == 404  # no card


def test_an_admin_changes_a_tiers_template_in_the_admin_audited(client, admin_user, promo, scientist):
    client.force_login(admin_user)
    url = reverse("admin:governance_cardtemplate_add")
    sections = defaults.default_sections("tier3")
    sections[-2]["required"] = True  # limitations
    bad = client.post(url, {"tier": "tier3", "sections": "[{\"key\": \"Bad Key\", \"title\": \"x\"}]"})
    assert bad.status_code == 200 and "must be lower-case" in bad.content.decode()
    assert not CardTemplate.objects.exists() and not AuditEvent.objects.filter(action="card_template.changed")
    assert client.post(url, {"tier": "tier3", "sections": json.dumps(sections)}).status_code == 302
    event = AuditEvent.objects.get(action="card_template.changed")
    assert event.actor_username == admin_user.username and event.after["tier"] == "tier3"
    assert [s["title"] for s in cards.template_for("tier3") if s["required"]] == ["Purpose", "Owner", "Limitations"]
    with pytest.raises(PermissionDenied):
        services.card_template_set(actor=scientist, tier="tier3", sections=sections)


def test_a_model_deleted_from_the_mirror_takes_its_cards_along(promo, scientist):
    first = edit(scientist, promo, {"purpose": "One"})
    edit(scientist, promo, {"purpose": "Two"}, base=first.pk)
    promo.model.delete()  # what the sync does when MLflow deleted the model
    assert not CardRevision.objects.exists()
