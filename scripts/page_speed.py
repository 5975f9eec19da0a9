"""How fast the comparison's charts are ready in a real browser, and what each page downloads.

Run against the demo (`manage.py demo --no-serve` first, with the same MGC_VAR_DIR / DATABASE_URL):

    .venv/bin/python scripts/page_speed.py                      # starts gunicorn on the demo's data
    .venv/bin/python scripts/page_speed.py --samples 20 --json var/page-speed.json
    .venv/bin/python scripts/page_speed.py --url http://127.0.0.1:8000 --password ...   # a server already up

1. **Compare page timing** in headless Chromium (Debian's, as the browser tests use) at 1366x768,
   signed in as the demo's `engineer`, on the demo's comparison of churn-classifier v1-v4 (9 charts).
   Series: `cold` = a new browser context per sample (empty HTTP and code cache: a first visit),
   `warm` = reloads in one context (the bundle cached: a returning user); `load` = the reader stays at
   the top, `scroll` = from the load event on, the page is scrolled to each chart in turn as soon as
   the one before is drawn (a reader heading straight for the charts). Figures, in ms from navigation
   start: `ttfb` (the HTML's first byte), `fcp`, `dcl` (DOMContentLoaded), `interactive` (the latest
   of DOMContentLoaded, the end of the last long task (> 50 ms, Long Tasks API) and the last chart
   inside the first viewport drawn: input is answered at once and what is on screen is complete),
   `all_charts` (every `[data-figure]` has `data-drawn="true"`: plotly drew it), `blocking` (total
   blocking time: the sum over long tasks of their time beyond 50 ms) and `cpu_ms` (CPU time of the
   renderer's main thread for the whole visit, from a Chromium trace: on a busy machine the wall
   clock stretches far more than this does).
2. **Bytes per page**: every script and stylesheet each main page loads (with every chart scrolled
   into view, so a script fetched only for the charts counts too), fetched again with
   `Accept-Encoding: br` and with `gzip`, as WhiteNoise serves them from the collected static files
   (content-hashed names with .br/.gz beside them). Chromium asks for brotli only over HTTPS, so the
   figure is read from the server rather than from the browser's loopback traffic.

Timing is measured, never asserted (tests/test_browser_pages.py checks that the charts are drawn).
Figures on a shared machine are noisy: note the load (printed at the start and the end).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
COMPARE = "/registry/compare/?model=churn-classifier&versions=1,2,3,4"
PAGES = {
    "catalogue": "/registry/",
    "model": "/registry/models/churn-classifier/",
    "version": "/registry/models/churn-classifier/versions/3/",
    "compare": COMPARE,
    "review": None,  # the demo's first request (churn-classifier v3 -> @champion, validated): found at run time
    "audit report": "/audit/reports/model/churn-classifier/",
}

# Installed before any page script: records when each chart gets data-drawn and every long task. With
# window.__scrollThrough set, it also scrolls to each chart in turn from the load event on, as a reader
# heading for the charts at once would, and notes when the last one is drawn.
PROBE = """
window.__speed = {drawn: [], longtasks: [], scrolled: null};
try {
  new PerformanceObserver(function (list) {
    list.getEntries().forEach(function (e) { window.__speed.longtasks.push([e.startTime, e.duration]); });
  }).observe({type: "longtask", buffered: true});
} catch (e) {}
new MutationObserver(function (records) {
  records.forEach(function (r) {
    if (r.target.getAttribute && r.target.getAttribute("data-drawn") === "true") {
      window.__speed.drawn.push([performance.now(), r.target.getBoundingClientRect().top < innerHeight]);
    }
  });
}).observe(document, {subtree: true, attributes: true, attributeFilter: ["data-drawn"]});
if (window.__scrollThrough) {
  history.scrollRestoration = "manual";  // a reload must start at the top, not where the last sample ended
  addEventListener("load", function () {
    var charts = Array.prototype.slice.call(document.querySelectorAll("[data-figure]"));
    (function next(i) {
      if (i === charts.length) { window.__speed.scrolled = performance.now(); return; }
      charts[i].scrollIntoView({block: "center"});
      (function wait() {
        if (charts[i].getAttribute("data-drawn") === "true") { next(i + 1); } else { requestAnimationFrame(wait); }
      })();
    })(0);
  });
}
"""

COLLECT = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const fcp = performance.getEntriesByName("first-contentful-paint")[0];
  const s = window.__speed;
  const lastTask = s.longtasks.reduce((m, t) => Math.max(m, t[0] + t[1]), 0);
  const blocking = s.longtasks.reduce((sum, t) => sum + Math.max(0, t[1] - 50), 0);
  const charts = document.querySelectorAll("[data-figure]").length;
  const drawn = s.drawn.map(d => d[0]).sort((a, b) => a - b);
  const inView = s.drawn.filter(d => d[1]).map(d => d[0]);
  return {
    ttfb: nav.responseStart, fcp: fcp ? fcp.startTime : null, dcl: nav.domContentLoadedEventEnd,
    load: nav.loadEventEnd, charts: charts, drawn: drawn.length,
    all_charts: drawn.length >= charts ? drawn[charts - 1] : null, scrolled: s.scrolled,
    in_view_drawn: inView.length ? Math.max(...inView) : 0,
    last_long_task_end: lastTask, long_tasks: s.longtasks.length, blocking: blocking,
  };
}"""

FIGURES = ("ttfb", "fcp", "dcl", "interactive", "all_charts", "blocking", "cpu_ms")


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def demo_password(user: str) -> str:
    var = Path(os.environ.get("MGC_VAR_DIR", ROOT / "var"))
    path = var / "demo_credentials.json"
    if not path.exists():
        sys.exit(f"no {path}: run `manage.py demo --no-serve` first (same MGC_VAR_DIR), or pass --password")
    return json.loads(path.read_text())[user]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(samples: list[dict]) -> dict:
    out = {}
    for key in FIGURES:
        values = [s[key] for s in samples if s.get(key) is not None]
        if values:
            out[key] = {"median": round(statistics.median(values), 1), "p95": round(percentile(values, 0.95), 1),
                        "min": round(min(values), 1), "max": round(max(values), 1), "n": len(values)}
    return out


def main_thread_cpu(trace: bytes) -> float:
    """Milliseconds of CPU the renderer's main thread spent in tasks during the trace (thread time, so a
    busy machine inflates it far less than the wall clock)."""
    events = json.loads(trace)["traceEvents"]
    mains = {(e["pid"], e["tid"]) for e in events
             if e.get("ph") == "M" and e.get("name") == "thread_name" and e["args"].get("name") == "CrRendererMain"}
    return sum(e.get("tdur", 0) for e in events if e.get("ph") == "X"
               and e.get("name") == "ThreadControllerImpl::RunTask"
               and (e.get("pid"), e.get("tid")) in mains) / 1000


def sample(browser, page, url: str, *, scroll: bool, reload: bool) -> dict:
    browser.start_tracing(page=page, categories=["toplevel"])
    if reload:
        page.reload(wait_until="load")
    else:
        page.goto(url, wait_until="load")
    if scroll:
        page.wait_for_function("() => window.__speed.scrolled !== null", timeout=60_000)
    # Quiet for a second: a long task still to come (a script evaluated late) is reported before we read.
    page.wait_for_timeout(1000)
    s = page.evaluate(COLLECT)
    s["cpu_ms"] = main_thread_cpu(browser.stop_tracing())
    # Interactive: parsed, no long task left, and every chart that is in the first viewport drawn.
    s["interactive"] = max(s["dcl"], s["last_long_task_end"], s["in_view_drawn"])
    if scroll:
        s["all_charts"] = s["scrolled"]
    return s


def time_compare(browser, base: str, state: dict, *, samples: int, viewport: dict, warm: bool) -> dict:
    url = base + COMPARE
    errors: list[str] = []

    def new_page(scroll: bool):
        context = browser.new_context(storage_state=state, viewport=viewport)
        context.add_init_script(("window.__scrollThrough = true;" if scroll else "") + PROBE)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        return context, page

    series: dict[str, list[dict]] = {}
    for scroll in (False, True):
        name = "scroll" if scroll else "load"
        runs = []
        for _ in range(samples + 1):  # the first one warms the server (imports, caches) and is dropped
            context, page = new_page(scroll)
            runs.append(sample(browser, page, url, scroll=scroll, reload=False))
            context.close()
        series[f"cold {name}"] = runs[1:]
        if warm:
            context, page = new_page(scroll)
            page.goto(url, wait_until="load")
            series[f"warm {name}"] = [sample(browser, page, url, scroll=scroll, reload=True)
                                      for _ in range(samples)]
            context.close()
    return {"charts": series["cold load"][-1]["charts"], "errors": sorted(set(errors)),
            "summary": {k: summary(v) for k, v in series.items()}, "samples": series}


def compressed_size(url: str, cookie: str, encoding: str) -> int | str:
    """Bytes on the wire with this Content-Encoding; "404" (or another status) when the file is missing,
    "uncompressed N" when the server ignored the encoding."""
    req = urllib.request.Request(url, headers={"Accept-Encoding": encoding, "Cookie": cookie})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 - the server this script was pointed at
            body = r.read()
            if r.headers.get("Content-Encoding", "identity") != encoding:
                return f"uncompressed {len(body)}"
            return len(body)
    except urllib.error.HTTPError as exc:
        return str(exc.code)


def page_bytes(browser, base: str, state: dict, pages: dict, viewport: dict) -> dict:
    context = browser.new_context(storage_state=state, viewport=viewport)
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in context.cookies())
    out = {}
    for name, path in pages.items():
        page = context.new_page()
        assets: list[tuple[str, str]] = []
        page.on("request", lambda r, a=assets: a.append((r.resource_type, r.url))
                if r.resource_type in ("script", "stylesheet") else None)
        page.goto(base + path, wait_until="networkidle")
        at_load = len(assets)
        # Then every chart scrolled into view, so what a page fetches only for its charts counts too.
        for chart in page.locator("[data-figure], [data-validation-figure]").all():
            chart.scroll_into_view_if_needed()
            page.wait_for_load_state("networkidle")
        row = {"path": path, "js": {}, "css": {}, "problems": [],
               "after_load": [url.removeprefix(base) for _, url in assets[at_load:]]}
        for kind, url in assets:
            key = "js" if kind == "script" else "css"
            row[key][url.removeprefix(base)] = {enc: compressed_size(url, cookie, enc) for enc in ("br", "gzip")}
        for key in ("js", "css"):
            files = row[key].values()
            row[f"{key}_br"] = sum(f["br"] for f in files if isinstance(f["br"], int))
            row[f"{key}_gzip"] = sum(f["gzip"] for f in files if isinstance(f["gzip"], int))
            row["problems"] += [f"{url}: {f['br']}" for url, f in row[key].items() if not isinstance(f["br"], int)]
        out[name] = row
        page.close()
    context.close()
    return out


def review_path(base: str, cookie: str) -> str | None:
    req = urllib.request.Request(base + "/governance/requests/", headers={"Cookie": cookie})  # noqa: S310
    with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 - the server this script was pointed at
        pks = sorted({int(pk) for pk in re.findall(r'href="/governance/requests/(\d+)/"', r.read().decode())})
    return f"/governance/requests/{pks[0]}/" if pks else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a server already running on the demo's data (default: start gunicorn)")
    parser.add_argument("--user", default="engineer")
    parser.add_argument("--password", help="default: from the demo's var/demo_credentials.json")
    parser.add_argument("--samples", type=int, default=12)
    parser.add_argument("--width", type=int, default=1366)
    parser.add_argument("--height", type=int, default=768)
    parser.add_argument("--no-warm", action="store_true", help="only first visits (new browser context each)")
    parser.add_argument("--no-bytes", action="store_true", help="only the timing")
    parser.add_argument("--no-timing", action="store_true", help="only the bytes per page")
    parser.add_argument("--json", help="write every figure and sample here")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    password = args.password or demo_password(args.user)
    viewport = {"width": args.width, "height": args.height}
    server = None
    base = args.url.rstrip("/") if args.url else None
    if base is None:
        from benchmarks.servers import wsgi_server

        env = dict(os.environ, DJANGO_DEBUG="0", WHITENOISE_USE_FINDERS="0")
        server = wsgi_server(env, Path(tempfile.mkdtemp(prefix="page-speed-"))).start()
        base = server.url
    result: dict = {"url": base, "load_before": load_average()}
    print(f"{base}  load average before: {result['load_before']}")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                              "--disable-component-update", "--disable-sync", "--no-first-run"])
            context = browser.new_context(viewport=viewport)
            page = context.new_page()
            page.goto(base + "/accounts/login/")
            page.get_by_label("Username").fill(args.user)
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_load_state("domcontentloaded")
            if "/accounts/login/" in page.url:
                sys.exit(f"could not sign in as {args.user}")
            state = context.storage_state()
            cookie = "; ".join(f"{c['name']}={c['value']}" for c in context.cookies())
            context.close()
            if not args.no_timing:
                result["compare"] = timing = time_compare(browser, base, state, samples=args.samples,
                                                          viewport=viewport, warm=not args.no_warm)
                print(f"\ncompare page, {timing['charts']} charts, {args.samples} samples per series "
                      "(ms from navigation start; cpu_ms: renderer main-thread CPU for the visit)")
                print(f"{'series':<12} {'figure':<12} {'median':>8} {'p95':>8} {'min':>8} {'max':>8}")
                for series, figures in timing["summary"].items():
                    for key, f in figures.items():
                        print(f"{series:<12} {key:<12} {f['median']:>8} {f['p95']:>8} {f['min']:>8} {f['max']:>8}")
                if timing["errors"]:
                    print("JS errors:", *timing["errors"], sep="\n  ")
            if not args.no_bytes:
                pages = dict(PAGES, review=review_path(base, cookie))
                result["bytes"] = rows = page_bytes(browser, base, state, {k: v for k, v in pages.items() if v},
                                                    viewport)
                print("\npage            JS br (gzip) kB      CSS br (gzip) kB")
                for name, row in rows.items():
                    print(f"{name:<15} {row['js_br'] / 1000:>7.1f} ({row['js_gzip'] / 1000:.1f})"
                          f"{row['css_br'] / 1000:>12.1f} ({row['css_gzip'] / 1000:.1f})  {' '.join(row['problems'])}"
                          + (f" fetched for the charts: {', '.join(row['after_load'])}" if row["after_load"] else ""))
            browser.close()
    finally:
        if server:
            server.stop()
    result["load_after"] = load_average()
    print(f"\nload average after: {result['load_after']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
