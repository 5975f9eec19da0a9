"""The approved card as a document for a regulator: standalone HTML with a print stylesheet, and PDF
rendered from the same HTML by WeasyPrint. The PDF renderer fetches nothing: an image or stylesheet
URL in a card (user text) would otherwise make the server request any address it names."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string
from django.utils import timezone

STYLESHEET = "css/card.css"


def _stylesheet_text() -> str:
    found = finders.find(STYLESHEET) or str(Path(settings.BASE_DIR) / "static" / STYLESHEET)
    return Path(found).read_text(encoding="utf-8")


def html_document(view: dict, *, for_pdf: bool = False) -> str:
    return render_to_string("cards/export.html", {**view, "for_pdf": for_pdf, "generated_at": timezone.now(),
                                                  "stylesheet_text": _stylesheet_text() if for_pdf else ""})


def pdf_document(view: dict) -> bytes:
    import weasyprint  # imported on use: its native libraries (pango) load only for an export
    from weasyprint.urls import URLFetcher

    class NoFetch(URLFetcher):
        def fetch(self, url, headers=None):
            raise ValueError(f"the PDF export fetches no URL ({url[:80]})")

    return weasyprint.HTML(string=html_document(view, for_pdf=True), url_fetcher=NoFetch(),
                           base_url="about:blank").write_pdf()
