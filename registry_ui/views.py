"""Project-level pages: home and error pages. Registry pages live beside the mirror code."""

from functools import cache

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html")


API_PREFIX = "/api/"
_API_ERRORS = {403: ("You do not have permission to do this.", "permission_denied"),
               404: ("Not found.", "not_found"), 500: ("Internal server error.", "server_error")}


def _api_error(status: int) -> JsonResponse:
    """Errors Django answers before any API view runs (an unknown /api/ URL, a crash outside DRF) keep the
    API's one error shape."""
    detail, code = _API_ERRORS[status]
    return JsonResponse({"detail": detail, "code": code, "fields": {}}, status=status)


@cache
def _favicon_bytes() -> bytes:
    return (settings.BASE_DIR / "static" / "favicon.ico").read_bytes()


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """/favicon.ico, which browsers and bookmarks ask for whatever the page links (pages link the SVG)."""
    response = HttpResponse(_favicon_bytes(), content_type="image/x-icon")
    response["Cache-Control"] = "public, max-age=86400"
    return response


def error_403(request: HttpRequest, exception=None) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        return _api_error(403)
    return render(request, "403.html", status=403)


def error_404(request: HttpRequest, exception=None) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        return _api_error(404)
    return render(request, "404.html", status=404)


def error_500(request: HttpRequest) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        return _api_error(500)
    return render(request, "500.html", status=500)
