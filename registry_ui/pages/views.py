"""Registry pages: catalogue, model, version, comparison (+ CSV), lineage. Thin: parse the request,
call a selector, render. Access: login required; no role -> 403; out of scope or unknown -> 404
(see registry_ui.pages.selectors)."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from registry_ui import extensions
from registry_ui.pages import selectors
from registry_ui.pages.compare import compare as build_comparison
from registry_ui.pages.compare import comparison_csv
from registry_ui.pages.compare_context import comparison_context, selection_from_request
from registry_ui.pages.forms import CatalogueForm
from registry_ui.pages.lineage import layout_svg, version_lineage
from registry_ui.pages.markdown import render_markdown
from registry_ui.pages.tables import version_rows_html


@require_GET
@login_required
def catalogue(request: HttpRequest) -> HttpResponse:
    form = CatalogueForm(request.GET, auto_id="%s")  # the ids the page (and htmx triggers) use
    if form.is_valid():
        filters, per_page, status = form.filters(), form.page_size(), 200
        page, rows = selectors.catalogue_page(request.user, filters, page=form.page_number(), per_page=per_page)
    else:
        # Nothing is listed under a filter the page could not read; the fields keep what was typed.
        filters, per_page, page, rows, status = selectors.CatalogueFilters(), None, None, [], 400
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "filters": filters, "page": page, "rows": rows, "query": query.urlencode(),
               "per_page": per_page}
    if request.htmx:
        response = render(request, "registry/_catalogue_results.html", context, status=status)
    else:
        context["choices"] = selectors.catalogue_choices(request.user)
        response = render(request, "registry/catalogue.html", context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_GET
@login_required
def model_detail(request: HttpRequest, name: str) -> HttpResponse:
    page = selectors.model_page(request.user, name)
    # Row links are this prefix + "<version>/" (version_detail) and + "<version>/lineage/": one reverse()
    # instead of two per row (tests compare them to reverse()).
    version_base = reverse("registry:version_detail", args=[page.model.name, 1]).removesuffix("1/")
    return render(request, "registry/model_detail.html", {
        "p": page, "model": page.model, "description": render_markdown(page.model.description),
        "panels": extensions.panels("model", request, page.model),
        "banners": extensions.panels("model_banner", request, page.model),
        "version_rows": version_rows_html(page.rows, page.model.name, version_base),
    })


@require_GET
@login_required
def version_detail(request: HttpRequest, name: str, version: int) -> HttpResponse:
    page = selectors.version_page(request.user, name, version)
    return render(request, "registry/version_detail.html", {
        "p": page, "model": page.model, "mv": page.version,
        "description": render_markdown(page.version.description),
        "panels": extensions.panels("version", request, page.version),
    })


@require_GET
@login_required
def lineage(request: HttpRequest, name: str, version: int) -> HttpResponse:
    mv = selectors.version_for_user(request.user, name, version)
    graph = version_lineage(mv, selectors.visible_scope(request.user))
    return render(request, "registry/lineage.html", {
        "lin": graph, "svg": layout_svg(graph), "mv": mv, "model": mv.model,
        "mlflow_ui": settings.REGISTRY_MLFLOW_UI_URL,
    })


@require_GET
@login_required
def compare(request: HttpRequest) -> HttpResponse:
    selection = selection_from_request(request)
    context = comparison_context(request, selection)
    return render(request, "registry/compare.html", context, status=400 if selection.error else 200)


@require_GET
@login_required
def compare_csv(request: HttpRequest) -> HttpResponse:
    selection = selection_from_request(request)
    if selection.error or len(selection.items) < 2:
        return render(request, "registry/compare.html", comparison_context(request, selection), status=400)
    comparison = build_comparison(selection.items, request.GET.get("baseline"))
    response = HttpResponse(comparison_csv(comparison), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="comparison.csv"'
    return response
