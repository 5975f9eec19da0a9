"""MLflow descriptions are user input: render them as markdown, then sanitise the HTML with nh3.

Markdown passes raw HTML through, so sanitising AFTER rendering is what makes the result safe: no
<script> (its content is dropped too), no event-handler attributes, no style, and links only to
http(s)/mailto or relative targets (javascript: and data: URLs are removed).
"""

import threading
from functools import lru_cache

import markdown as md
import nh3
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em", "h1", "h2", "h3",
    "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s", "span", "strong", "sub", "sup", "table",
    "tbody", "td", "th", "thead", "tr", "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "th": {"align"},
    "td": {"align"},
    "abbr": {"title"},
}
URL_SCHEMES = {"http", "https", "mailto"}

# Building a Markdown parser costs more than converting a short description with it, and a catalogue
# page converts fifty: each thread keeps its parsers (they are not thread-safe) and resets them per text.
_parsers = threading.local()


def _convert(text: str, extensions: tuple[str, ...]) -> str:
    cache = getattr(_parsers, "by_extensions", None)
    if cache is None:
        cache = _parsers.by_extensions = {}
    parser = cache.get(extensions)
    if parser is None:
        parser = cache[extensions] = md.Markdown(extensions=list(extensions), output_format="html")
    return parser.reset().convert(text)


def render_markdown(text: str) -> SafeString:
    """Markdown -> sanitised HTML, safe to insert in a page."""
    if not text:
        return mark_safe("")  # noqa: S308 - empty
    return mark_safe(_render_markdown(text))  # noqa: S308 - sanitised by nh3


@lru_cache(maxsize=1024)  # a pure function of the text: the same description renders the same way
def _render_markdown(text: str) -> str:
    html = _convert(text, ("tables", "fenced_code", "sane_lists"))
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        clean_content_tags={"script", "style"},
        link_rel="noopener noreferrer nofollow",
    )
    return clean


EXCERPT_TAGS = {"a", "b", "code", "del", "em", "i", "s", "strong", "sub", "sup"}


def render_markdown_excerpt(text: str, length: int = 120) -> SafeString:
    """The start of a description for a table cell: markdown rendered, sanitised to inline tags only
    (no headings, images or tables in a list row), then cut at `length` visible characters."""
    if not text:
        return mark_safe("")  # noqa: S308 - empty
    return mark_safe(_render_excerpt(text[: length * 4], length))  # noqa: S308 - sanitised by nh3


@lru_cache(maxsize=8192)  # a pure function of the text; a catalogue page shows fifty of them
def _render_excerpt(text: str, length: int) -> str:
    html = _convert(text, ("sane_lists",))
    clean = nh3.clean(html, tags=EXCERPT_TAGS, attributes={"a": {"href", "title"}}, url_schemes=URL_SCHEMES,
                      clean_content_tags={"script", "style"}, link_rel="noopener noreferrer nofollow")
    clean = " ".join(clean.split())
    return Truncator(clean).chars(length, html=True)  # Truncator keeps the tags balanced
