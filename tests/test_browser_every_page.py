"""Every page once at 1366 px and once at 390 px in a real Chromium, checked three ways in one pass (to
keep CI short): axe-core (axe-playwright-python, bundled, no download) reports no serious or
critical accessibility violation; the page does not scroll sideways; a full-page screenshot is kept
under TEST_ARTIFACTS_DIR/screenshots/pages/ for the reviewers of a change."""

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.db import transaction
from django.urls import reverse

from governance import audit
from governance.workflow import services as workflow
from tests.conftest import browser_login, draw_every_chart

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.mlflow]

WIDTHS = (1366, 390)
SERIOUS = {"serious", "critical"}


def pages(promo, pending_pk: int) -> list[tuple[str, str]]:
    name = promo.name
    return [
        ("home", reverse("home")),
        ("catalogue", reverse("registry:catalogue")),
        ("model", reverse("registry:model_detail", args=[name])),
        ("version", reverse("registry:version_detail", args=[name, 2])),
        ("lineage", reverse("registry:lineage", args=[name, 2])),
        ("model-card", reverse("cards:card_detail", args=[name, 2])),
        ("model-card-edit", reverse("cards:card_edit", args=[name, 2])),
        ("compare", reverse("registry:compare") + f"?v={name}:1&v={name}:2"),
        ("inbox", reverse("governance:inbox")),
        ("request-list", reverse("governance:request_list")),
        ("review", reverse("governance:request_detail", args=[pending_pk])),
        ("request-form", reverse("governance:request_create") + f"?model={name}"),
        ("rollback-form", reverse("governance:request_rollback") + f"?model={name}&target=alias:champion"),
        ("audit-search", reverse("audit:search")),
        ("report-index", reverse("audit:report_index")),
        ("portfolio", reverse("portfolio:portfolio")),
        ("model-report", reverse("audit:model_report", args=[name])),
        ("admin", reverse("admin:index")),
        ("admin-users", reverse("admin:auth_user_changelist")),
        ("not-found", "/registry/models/no-such-model/"),
    ]


def check(page, axe: Axe, label: str, screenshot_dir) -> list[str]:
    problems = []
    draw_every_chart(page)  # charts are drawn when scrolled to: check and show them drawn
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    if overflow > 0:
        problems.append(f"{label}: scrolls {overflow}px sideways")
    results = axe.run(page)
    for v in results.response["violations"]:
        if v.get("impact") in SERIOUS:
            targets = [", ".join(map(str, n.get("target", []))) for n in v.get("nodes", [])][:3]
            problems.append(f"{label}: axe {v['impact']} {v['id']}: {v['help']} at {targets}")
    page.screenshot(path=str(screenshot_dir / f"{label}.png"), full_page=True)
    return problems


def test_every_page_is_accessible_fits_390px_and_is_screenshotted(page, live_server, promo, scientist, engineer,
                                                                 admin_user, screenshot):
    pending = workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=2,
                                                target_alias="champion", justification="v2 beats v1 on accuracy")
    staged = workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=3,
                                               target_stage="Staging", justification="try v3 in Staging")
    workflow.promotion_request_approve(request_id=staged.pk, actor=engineer, comment="fine for Staging")
    with transaction.atomic():
        audit.record(actor_name="system:sync", action="registry.drift", model=promo.name, version=1,
                     before={"stage": "Production"}, after={"stage": "Archived"},
                     comment="stage changed in MLflow, no deploy explains it")
    folder = screenshot("_warmup").parent / "pages"
    folder.mkdir(parents=True, exist_ok=True)
    axe = Axe()
    problems = []

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}{reverse('login')}")
    problems += check(page, axe, "login-390", folder)
    browser_login(page, live_server, admin_user.username)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for name, url in pages(promo, pending.pk):
            page.goto(f"{live_server.url}{url}")
            page.wait_for_load_state("load")
            problems += check(page, axe, f"{name}-{width}", folder)
    assert not problems, "\n".join(problems)
