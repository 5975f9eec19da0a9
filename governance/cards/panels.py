"""What the card pages and panels show: the card in force (sections rendered through the project's
sanitised markdown), what it lacks for its tier, a proposed edit with its diff, its history and where it
stands in MLflow; the model page's list of its versions' cards; the review page's line."""

from __future__ import annotations

from django.urls import reverse

from governance.access import can, request_checker
from governance.cards import selectors, text
from governance.cards.models import ModelCard
from governance.cards.services import may_edit
from governance.risk import selectors as risk_selectors
from registry_ui.pages.markdown import render_markdown


def rendered(sections: list[dict]) -> list[dict]:
    return [{**s, "html": render_markdown(s.get("body") or "")} for s in sections]


def card_view(user, mv, *, checker=None) -> dict:
    """Everything about the card of model version `mv` that `user` (who may see the model) may see."""
    model = mv.model
    tier = risk_selectors.tier_of(model)
    template = selectors.template_for(tier)
    card = selectors.card_for(model, mv.version)
    current = card.current if card else None
    pending = selectors.pending_revision(card)
    heading = f"Model card: {model.name} v{mv.version}"
    current_doc = text.document(current.sections, heading=heading) if current else ""
    rules = selectors.tier_rules(tier)
    return {
        "model": model, "mv": mv, "version": mv.version, "tier": tier,
        "tier_label": risk_selectors.tier_label(tier), "rules": rules, "card": card, "current": current,
        "sections": rendered(selectors.merged_sections(template, current.sections if current else None)),
        "missing": selectors.missing_required(template, current),
        "pending": pending,
        "pending_diff": text.diff_lines(current_doc, text.document(pending.sections, heading=heading))
        if pending else [],
        "history": selectors.revisions_of(card),
        "may_edit": may_edit(user, model, checker=checker) and pending is None,
        "may_decide": pending is not None and pending.author_id != user.pk
        and can(user, "approve", model, checker=checker),
        "may_publish": current is not None and may_edit(user, model, checker=checker),
        "urls": {"detail": selectors.card_url(model.name, mv.version),
                 "edit": reverse("cards:card_edit", kwargs={"name": model.name, "version": mv.version}),
                 "html": reverse("cards:card_export", kwargs={"name": model.name, "version": mv.version,
                                                              "fmt": "html"}),
                 "pdf": reverse("cards:card_export", kwargs={"name": model.name, "version": mv.version,
                                                             "fmt": "pdf"})},
    }


def card_panels(kind: str, request, obj) -> list[tuple[str, dict]]:
    user, checker = request.user, request_checker(request)
    if kind == "version":
        if not can(user, "view", obj.model, checker=checker):
            return []
        view = card_view(user, obj, checker=checker)
        return [("cards/panels/version.html", view | {"next": request.get_full_path()})]
    if kind == "model":
        if not can(user, "view", obj, checker=checker):
            return []
        tier = risk_selectors.tier_of(obj)
        template = selectors.template_for(tier)
        cards = {c.version: c for c in ModelCard.objects.select_related("current").filter(model=obj)}
        versions = list(obj.versions.order_by("-version").values_list("version", flat=True)[:10])
        rows = [{"version": v, "card": cards.get(v),
                 "missing": selectors.missing_required(template, cards[v].current if v in cards else None),
                 "url": selectors.card_url(obj.name, v)} for v in versions]
        return [("cards/panels/model.html", {"model": obj, "rows": rows, "tier_label": risk_selectors.tier_label(tier),
                                             "rules": selectors.tier_rules(tier)})]
    return []


def review_card(user, req) -> dict:
    """The review page's line on the version's card: where it stands and what it lacks for the tier."""
    if req.model is None:
        return {}
    tier = risk_selectors.tier_of(req.model)
    card = selectors.card_for(req.model, req.version)
    current = card.current if card else None
    return {"url": selectors.card_url(req.model_name, req.version), "current": current,
            "missing": selectors.missing_required(selectors.template_for(tier), current),
            "gated": selectors.tier_rules(tier)["gate_approval"], "tier_label": risk_selectors.tier_label(tier),
            "pending": selectors.pending_revision(card)}
