"""Descriptions are user input: markdown rendered, HTML sanitised (no script, handlers, js: links)."""

import pytest
from django.urls import reverse

from registry_ui.pages.markdown import render_markdown
from tests.conftest import make_user

EVIL = """# Fraud model

<script>alert('xss')</script>
<img src="x" onerror="alert('img')">
[click me](javascript:alert('link'))
<a href="JaVaScRiPt:alert(1)">mixed case</a>
<a href="data:text/html,<script>alert(1)</script>">data url</a>
<div onclick="alert(2)" style="position:fixed">styled</div>
<iframe src="https://evil.example"></iframe>
<svg onload="alert(3)"></svg>
[safe](https://example.com/docs) and **bold**
"""


def test_markdown_is_rendered():
    html = render_markdown("# Title\n\nSome *text* with a [link](https://example.com).\n\n"
                           "| a | b |\n|---|---|\n| 1 | 2 |")
    assert "<h1>Title</h1>" in html and "<em>text</em>" in html and "<table>" in html
    assert '<a href="https://example.com" rel="noopener noreferrer nofollow">link</a>' in html


def test_dangerous_html_is_made_inert():
    html = render_markdown(EVIL).lower()
    assert "<script" not in html and "alert('xss')" not in html
    assert "onerror" not in html and "onclick" not in html and "onload" not in html
    assert "javascript:" not in html and "data:text" not in html
    assert "<iframe" not in html and "<svg" not in html and "style=" not in html
    assert '<a href="https://example.com/docs"' in html and "<strong>bold</strong>" in html


def test_empty_description_renders_nothing():
    assert render_markdown("") == ""


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["model", "version"])
def test_pages_show_descriptions_sanitised(client, mirror, page):
    m = mirror.model("xss-model", description=EVIL)
    mirror.version(m, description=EVIL)
    client.force_login(make_user("reader", "auditor"))
    url = reverse("registry:model_detail", args=["xss-model"]) if page == "model" \
        else reverse("registry:version_detail", args=["xss-model", 1])
    body = client.get(url).content.decode()
    rendered = body.split('class="markdown"')[1].split("</div>\n")[0].lower()
    assert "<script" not in rendered and "onerror" not in rendered and "javascript:" not in rendered
    assert "<h1>fraud model</h1>" in rendered
