"""The card as text: checking what a person typed (markdown only), the document assembled from its
sections (what MLflow receives and what the diff compares), and the diff itself."""

from __future__ import annotations

import difflib
import re

from governance.errors import InvalidInput

# A raw HTML tag or comment (not an autolink such as <https://...>, whose name is followed by ':').
_HTML = re.compile(r"<\s*(/?\s*[a-zA-Z][a-zA-Z0-9-]*)(?=[\s/>])[^>]*>|<!--", re.S)
_FENCED = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK_SCHEME = re.compile(r"\]\(\s*<?\s*([a-zA-Z][a-zA-Z0-9+.-]*):")
SAFE_SCHEMES = {"http", "https", "mailto"}
MAX_SECTION_CHARS = 20_000


def _outside_code(text: str) -> str:
    return _INLINE_CODE.sub("", _FENCED.sub("", text))


def check_markdown(body: str, *, title: str) -> str:
    """The section's text, trimmed, or InvalidInput. Cards are markdown: raw HTML is refused rather
    than silently stripped, so what the author sees is exactly what reviewers, MLflow and the PDF get
    (HTML inside code spans and fenced blocks is text, and allowed)."""
    body = (body or "").replace("\r\n", "\n").strip()
    if len(body) > MAX_SECTION_CHARS:
        raise InvalidInput(f"Section {title!r} is longer than {MAX_SECTION_CHARS} characters.")
    plain = _outside_code(body)
    found = _HTML.search(plain)
    if found:
        tag = found.group(0)[:40]
        raise InvalidInput(f"Section {title!r} contains raw HTML ({tag}): a model card is markdown only. "
                           "Use **bold**, lists, tables and [links](https://...) instead; nothing was saved.")
    for scheme in _LINK_SCHEME.findall(plain):
        if scheme.lower() not in SAFE_SCHEMES:
            raise InvalidInput(f"Section {title!r} links with a {scheme}: URL; only http, https and mailto "
                               "links are allowed; nothing was saved.")
    return body


def document(sections: list[dict], *, heading: str = "") -> str:
    """The card as one markdown document: a '##' heading per section, in order."""
    parts = [f"# {heading}"] if heading else []
    for s in sections:
        parts.append(f"## {s['title']}\n\n{(s.get('body') or '').strip() or '_Not written yet._'}")
    return "\n\n".join(parts) + "\n"


def diff_lines(old: str, new: str) -> list[tuple[str, str]]:
    """(kind, line) of a unified diff: kind is 'add', 'del', 'hunk' or 'same'; [] when equal."""
    rows = []
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), "approved", "proposed", n=2,
                                     lineterm=""):
        if line.startswith(("---", "+++")):
            continue
        kind = {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "same")
        rows.append((kind, line))
    return rows
