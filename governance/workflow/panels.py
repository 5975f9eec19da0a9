"""Governance panels on the registry pages (see registry_ui.extensions).

Who may request/approve/deploy, requests of a model or version, the actions the current user may
take, open-request counts for the catalogue. The audit trail adds a timeline provider
(governance.audit.panels).
"""

from django.db.models import Count

from governance.access import allowed_actions, can, request_checker, who_may
from governance.validation import display as validation_display
from governance.validation import selectors as validation_selectors
from governance.workflow.models import OPEN_STATES, PromotionRequest
from governance.workflow.policies import STAGE_TARGETS, request_actions


def workflow_panels(kind: str, request, obj) -> list[tuple[str, dict]]:
    user, checker = request.user, request_checker(request)
    if kind == "model":
        if not can(user, "view", obj, checker=checker):
            return []
        open_requests = list(PromotionRequest.objects.filter(model=obj, state__in=OPEN_STATES))
        actions = allowed_actions(user=user, obj=obj, checker=checker)
        targets = [("stage", s) for s in ("Production", "Staging")]
        targets += [("alias", a.alias) for a in obj.aliases.all()]
        return [("governance/panels/model.html", {
            "model": obj, "who_may": who_may(obj), "open_requests": open_requests, "actions": actions,
            "rollback_targets": targets,
        })]
    if kind == "version":
        model = obj.model
        if not can(user, "view", model, checker=checker):
            return []
        requests = list(PromotionRequest.objects.filter(model=model, version=obj.version)[:20])
        rows = [(r, request_actions(user, r)) for r in requests]
        runs = validation_selectors.runs_of_version(model_name=model.name, version=obj.version, limit=1)
        validation = validation_display.run_context(runs[0] if runs else None)
        validation["needs"] = validation_display.model_needs(obj)
        return [("governance/panels/version.html", {
            "version": obj, "model": model, "rows": rows, "may_request": can(user, "request", model, checker=checker),
            "stages": STAGE_TARGETS,
        }), ("governance/panels/validation.html", validation)]
    return []


def catalogue_annotations(user, models) -> dict[int, dict]:
    """{model_id: {"open_requests": n}} for one page of models, in one query."""
    ids = [m.pk if hasattr(m, "pk") else m for m in models]
    counts = dict(
        PromotionRequest.objects.filter(model_id__in=ids, state__in=OPEN_STATES)
        .values("model_id").annotate(n=Count("id")).values_list("model_id", "n")
    )
    return {pk: {"open_requests": counts.get(pk, 0)} for pk in ids}


# The reports page lists the oldest-approved holders due for re-certification; the queue's own page
# has them all, a page at a time.
REPORT_QUEUE = 100


def audit_report_sections(user, *, since=None, until=None) -> list[tuple[str, dict]]:
    """What the workflow adds to the auditor's reports page (settings.AUDIT_REPORT_SECTIONS): open
    break-glass reviews and the re-certification queue, on the models the user may see (as they are now,
    whatever the period)."""
    from django.utils import timezone

    from governance.workflow.recertification import recertification_queue
    from governance.workflow.services import open_emergency_reviews

    reviews = list(open_emergency_reviews(user)[:200])
    for review in reviews:
        review.overdue = review.review_due_at is not None and review.review_due_at < timezone.now()
    queue = recertification_queue(user)
    return [("governance/panels/audit_open_items.html", {"open_reviews": reviews, "queue": queue[:REPORT_QUEUE],
                                                          "queue_total": len(queue)})]
