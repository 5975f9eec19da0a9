"""Table bodies rendered in Python on the hot path.

The model page lists every version of a model (the benchmark measures one with 100). Through the
template engine its rows were most of the page's time: about twenty variable nodes per row, each
resolved, localised and escaped. Here a row is one str.format over values escaped with the same
function Django's escape uses (html.escape, quotes included); format_html per cell cost nearly as
much as the template through its lazy-string wrappers.
"""

from html import escape

from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

from registry_ui.pages.selectors import VersionRow

_ROW = (
    '<tr><td><input type="checkbox" name="v" value="{name}:{v}" id="cmp-{v}" aria-label="Compare version {v}"></td>'
    '<th scope="row"><a href="{base}{v}/">v{v}</a></th>'
    '<td><span class="badge stage stage-{stage_class}">{stage}</span></td>'
    "<td>{aliases}</td><td>{status}</td><td>{created}</td>{metrics}<td>{run}</td></tr>"
)


def version_rows_html(rows: list[VersionRow], model_name: str, version_base: str) -> SafeString:
    """<tr>s of the model page's versions table; `version_base` + "<v>/" is the version page's URL."""
    name, base = escape(model_name), escape(version_base)
    out = []
    for row in rows:
        mv, v = row.version, str(row.version.version)
        if mv.run_id:
            label = escape(Truncator((row.run.run_name if row.run else "") or mv.run_id).chars(20))
            run = f'<a href="{base}{v}/lineage/" title="Lineage of v{v}">{label}</a>'
        else:
            run = '<span class="muted">no run</span>'
        iso = escape(row.created_iso)
        created = f'<time datetime="{iso}" title="{iso}">{escape(row.created_text)}</time>' if iso else ""
        out.append(_ROW.format(
            name=name, v=v, base=base, stage_class=escape((mv.stage or "").lower()), stage=escape(mv.stage or ""),
            aliases="".join(f'<span class="badge alias">@{escape(a)}</span> ' for a in row.aliases),
            status=escape(mv.status or ""), created=created,
            metrics="".join(f'<td class="num" title="{escape(full)}">{escape(m)}</td>' if full != m
                            else f'<td class="num">{escape(m)}</td>' for m, full in row.key_metrics), run=run,
        ))
    return mark_safe("\n".join(out))  # noqa: S308 - every value above is escaped
