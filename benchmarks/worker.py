"""The measuring process. It runs with DATABASE_URL pointing at the scratch database and
MLFLOW_TRACKING_URI at the seeded `mlflow server`, so every figure comes from one process run and
ratios compare like with like.

Parts other issues build (the sync, the pages, verify_audit) are looked up when measured; a part that
does not exist yet becomes a null figure with the note "not built yet", never a crash.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

from django.conf import settings
from django.core.management import call_command, get_commands
from django.db import DatabaseError, connection, transaction
from django.urls import NoReverseMatch, reverse

from benchmarks import seed_audit
from benchmarks.measure import NOT_BUILT, Figure, timed, vm_hwm_mib
from benchmarks.report import new_figures
from benchmarks.seed_mlflow import WIDE_MODEL

RUN_BATCH = 100  # default run ids per search_runs call (--run-batch); MLflow's cost is per run, not per call
VERSIONS_PAGE = 10_000
MODELS_PAGE = 1000


def log(message: str) -> None:
    print(f"[benchmark {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# The REST floor: what any sync must spend just reading MLflow.
# --------------------------------------------------------------------------------------------------


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def read_floor(uri: str, run_batch: int = RUN_BATCH) -> dict[str, float]:
    client = _client(uri)
    t0 = time.perf_counter()
    models, token = 0, None
    while True:
        page = client.search_registered_models(max_results=MODELS_PAGE, page_token=token)
        models += len(page)
        token = page.token
        if not token:
            break
    t1 = time.perf_counter()
    run_ids, token = [], None
    while True:
        page = client.search_model_versions(max_results=VERSIONS_PAGE, page_token=token)
        run_ids.extend(v.run_id for v in page if v.run_id)
        token = page.token
        if not token:
            break
    t2 = time.perf_counter()
    experiment_ids = [e.experiment_id for e in client.search_experiments()]
    runs = 0
    for i in range(0, len(run_ids), run_batch):
        batch = run_ids[i:i + run_batch]
        quoted = ",".join(f"'{r}'" for r in batch)
        found = client.search_runs(experiment_ids, filter_string=f"attributes.run_id IN ({quoted})",
                                   max_results=len(batch))
        runs += len(found)
    t3 = time.perf_counter()
    return {"models": t1 - t0, "versions": t2 - t1, "runs": t3 - t2, "total": t3 - t0,
            "n_models": models, "n_versions": len(run_ids), "n_runs": runs}


# --------------------------------------------------------------------------------------------------
# The sync: registry_ui.mirror.sync.sync_registry(*, uri, progress) -> SyncReport
# --------------------------------------------------------------------------------------------------


def sync_function():
    try:
        from registry_ui.mirror.sync import sync_registry
    except ImportError:
        return None
    return sync_registry


def clear_mirror() -> None:
    """Empty the mirror tables (children first) so the next sync is a first full sync."""
    from registry_ui.mirror import models as m

    tables = [m.MetricHistory, m.DatasetInput, m.RunSnapshot, m.ModelAlias, m.ModelVersion, m.RegisteredModel]
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            for model in tables:
                cursor.execute(f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)}")  # noqa: S608
    except DatabaseError:
        # Something else (a governance table) references the mirror: let the ORM cascade.
        for model in tables:
            model.objects.all().delete()


def rows_written(report) -> int | None:
    value = getattr(report, "rows_written", None)
    if value is None and hasattr(report, "to_dict"):
        value = report.to_dict().get("rows_written")
    return value


def touch_one_percent(uri: str, config: dict, round_no: int) -> int:
    """Change 1% of versions through MLflow's REST API: half by moving @champion, half by setting a tag
    (neither bumps last_updated_timestamp: the changes a timestamp-trusting sync would miss)."""
    client = _client(uri)
    total = config["seed"]["versions"]
    k = max(2, round(total * 0.01))
    vpm = config["spec"]["versions_per_model"]
    alias_models = config["alias_models"][: k // 2]
    for name in alias_models:
        client.set_registered_model_alias(name, "champion", str(vpm - (round_no % 2)))
    names = config["model_names"]
    tagged = k - len(alias_models)
    stride = max(1, (len(names) * vpm) // max(tagged, 1))
    for j in range(tagged):
        flat = j * stride
        name, version = names[(flat // vpm) % len(names)], (flat % vpm) + 1
        client.set_model_version_tag(name, str(version), "bench_touch", f"round-{round_no}")
    return len(alias_models) + tagged


def measure_syncs(figs: dict[str, Figure], config: dict, uri: str, repeat: int) -> None:
    sync = sync_function()
    names = ["sync_full", "sync_unchanged", "sync_unchanged_rows_written", "sync_changed_1pct",
             "sync_changed_1pct_rows_written", "sync_peak_rss"]
    if sync is None:
        for name in names:
            figs[name].note = f"{NOT_BUILT} (registry_ui.mirror.sync.sync_registry)"
        return
    floor = "floor_total" if figs["floor_total"].samples else None
    for r in range(repeat):
        clear_mirror()
        seconds, report = timed(lambda: sync(uri=uri))
        figs["sync_full"].samples.append(seconds)
        log(f"full sync {r + 1}/{repeat}: {seconds:.2f} s, rows written {rows_written(report)}")
    figs["sync_full"].extra["report"] = report.to_dict() if hasattr(report, "to_dict") else None

    if config.get("rss_probe", True):
        measure_rss(figs["sync_peak_rss"], uri, sync)
    else:  # the mirror is still full from the last full sync
        figs["sync_peak_rss"].note = "not measured: --no-rss-probe (the probe is one more full sync)"

    for r in range(repeat):
        seconds, report = timed(lambda: sync(uri=uri))
        figs["sync_unchanged"].samples.append(seconds)
        figs["sync_unchanged_rows_written"].samples.append(rows_written(report) or 0)
        log(f"unchanged re-sync {r + 1}/{repeat}: {seconds:.2f} s, rows written {rows_written(report)}")
    for r in range(repeat):
        changed = touch_one_percent(uri, config, r + 1)
        seconds, report = timed(lambda: sync(uri=uri))
        figs["sync_changed_1pct"].samples.append(seconds)
        figs["sync_changed_1pct_rows_written"].samples.append(rows_written(report) or 0)
        figs["sync_changed_1pct"].extra["changes_per_round"] = changed
        log(f"1% sync {r + 1}/{repeat}: {changed} changes, {seconds:.2f} s, rows written {rows_written(report)}")
    if floor:
        for name in ("sync_full", "sync_unchanged", "sync_changed_1pct"):
            figs[name].ratio_to = floor
            figs[name].ratio = figs[name].median / figs[floor].median


def measure_rss(fig: Figure, uri: str, sync) -> None:
    """Peak RSS of a full sync into an empty mirror, in a fresh process; leaves the mirror full."""
    clear_mirror()
    probe = subprocess.run([sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "benchmark",
                            "--sync-probe", uri], capture_output=True, text=True, env=os.environ.copy(), check=False)
    if probe.returncode == 0:
        result = json.loads(probe.stdout.strip().splitlines()[-1])
        fig.samples.append(result["peak_mib"])
        fig.extra.update(baseline_mib=result["baseline_mib"], seconds=result["seconds"])
        fig.note = f"process peak; {result['baseline_mib']:.0f} MiB before the sync started"
        log(f"sync peak RSS {result['peak_mib']:.0f} MiB (baseline {result['baseline_mib']:.0f} MiB)")
    else:
        fig.note = f"probe failed: {(probe.stderr.strip().splitlines() or ['?'])[-1][:200]}"
        sync(uri=uri)  # leave the mirror full for what follows


def sync_probe(uri: str) -> dict:
    """Run one full sync in this (fresh) process and report its peak RSS."""
    sync = sync_function()
    baseline = vm_hwm_mib()
    seconds, _ = timed(lambda: sync(uri=uri))
    return {"peak_mib": vm_hwm_mib(), "baseline_mib": baseline, "seconds": seconds}


# --------------------------------------------------------------------------------------------------
# Pages over a real HTTP server, MLflow's own REST for the same data, and SQL queries per page.
# --------------------------------------------------------------------------------------------------


# Model risk: the portfolio of every model, as an auditor sees it (tiers and findings: seed_risk).
PORTFOLIO_PAGES = {"portfolio": ("auditor", "portfolio:portfolio", {}, {})}


def page_urls(config: dict) -> dict[str, tuple[str, str | None, str]]:
    """figure -> (user role, url or None, reason when None)."""
    start, end = seed_audit.audit_window(config["audit_events"])
    week_from, week_to = (end - (end - start) / 2), (end - (end - start) / 2 + (end - start) / 52)
    wide_versions = config["spec"]["wide_versions"]
    specs = {
        "catalogue": ("scientist", "registry:catalogue", {}, {}),
        "catalogue_search": ("scientist", "registry:catalogue", {}, {"q": "churn"}),
        "model": ("scientist", "registry:model_detail", {"name": WIDE_MODEL}, {}),
        "compare": ("scientist", "registry:compare", {},
                    {"model": WIDE_MODEL, "versions": ",".join(str(v) for v in range(1, min(10, wide_versions) + 1))}),
        "lineage": ("scientist", "registry:lineage", {"name": WIDE_MODEL, "version": wide_versions}, {}),
        "audit_text": ("auditor", "audit:search", {}, {"q": "fraud"}),
        "audit_date": ("auditor", "audit:search", {},
                       {"since": week_from.date().isoformat(), "until": week_to.date().isoformat()}),
        "inbox": ("engineer", "governance:inbox", {}, {}),
    }
    specs.update(PORTFOLIO_PAGES)
    out = {}
    for key, (role, url_name, kwargs, query) in specs.items():
        try:
            url = reverse(url_name, kwargs=kwargs or None)
        except NoReverseMatch:
            out[key] = (role, None, f"{NOT_BUILT} ({url_name})")
            continue
        out[key] = (role, url + (f"?{urlencode(query)}" if query else ""), "")
    return out


def measure_pages(figs: dict[str, Figure], config: dict, users: dict, mlflow_url: str, samples: int) -> None:
    import requests
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from benchmarks import servers

    urls = page_urls(config)
    cookies = {}
    for role in {role for role, _, _ in urls.values()}:
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(users[role])
        cookies[role] = client.cookies[settings.SESSION_COOKIE_NAME].value

    # SQL queries per page, in-process through the whole middleware stack.
    for key, (role, url, reason) in urls.items():
        fig = figs[f"queries_{key}"]
        if url is None:
            fig.note = reason
            continue
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(users[role])
        client.get(url)  # warm caches (content types, permissions) the way a running server has them
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
        if response.status_code == 200:
            fig.samples.append(len(ctx.captured_queries))
        else:
            fig.note = f"HTTP {response.status_code} for {url}"

    session = requests.Session()

    def sample(url: str, cookie: str | None = None) -> tuple[list[float], int]:
        headers = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}"} if cookie else {}
        status = 0
        for _ in range(2):
            status = session.get(url, headers=headers, timeout=60).status_code
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            response = session.get(url, headers=headers, timeout=60)
            _ = response.content
            times.append((time.perf_counter() - started) * 1000)
            status = response.status_code
        return times, status

    # MLflow's own REST for the same data, through the same HTTP client.
    api = f"{mlflow_url}/api/2.0/mlflow"
    mlflow_calls = {
        "mlflow_models_page": f"{api}/registered-models/search?" + urlencode({"max_results": 50}),
        "mlflow_models_search": f"{api}/registered-models/search?"
        + urlencode({"max_results": 50, "filter": "name LIKE '%churn%'"}),
        "mlflow_model_versions": f"{api}/model-versions/search?"
        + urlencode({"max_results": 1000, "filter": f"name='{WIDE_MODEL}'"}),
    }
    for name, url in mlflow_calls.items():
        times, status = sample(url)
        if status == 200:
            figs[name].samples.extend(times)
        else:
            figs[name].note = f"HTTP {status}"
        log(f"{name}: median {figs[name].median} ms")

    env = os.environ.copy()
    workdir = Path(config["workdir"])
    with servers.wsgi_server(env, workdir) as server:
        for key, (role, url, reason) in urls.items():
            fig = figs[f"page_{key}"]
            if url is None:
                fig.note = reason
                continue
            times, status = sample(server.url + url, cookies[role])
            if status == 200:
                fig.samples.extend(times)
                log(f"page {key}: median {fig.median:.1f} ms, p95 {fig.p95:.1f} ms")
            else:
                fig.note = f"HTTP {status} for {url}"
                log(f"page {key}: HTTP {status}")
        session.close()  # idle keep-alive connections would hold gunicorn's graceful shutdown
    pairs = (("page_catalogue", "mlflow_models_page"), ("page_catalogue_search", "mlflow_models_search"),
             ("page_model", "mlflow_model_versions"))
    for page, mlflow_name in pairs:
        if figs[page].samples and figs[mlflow_name].samples:
            figs[page].ratio_to = mlflow_name
            figs[page].ratio = figs[page].median / figs[mlflow_name].median


def measure_verify_audit(figs: dict[str, Figure], repeat: int) -> None:
    fig = figs["verify_audit"]
    if "verify_audit" not in get_commands():
        fig.note = f"{NOT_BUILT} (manage.py verify_audit)"
        return
    from io import StringIO

    for _ in range(repeat):
        out = StringIO()
        try:
            seconds, _ = timed(lambda out=out: call_command("verify_audit", stdout=out, stderr=out))
        except Exception as exc:  # noqa: BLE001 - a failing verify is a figure's note, not a crash
            fig.note = f"verify_audit failed: {exc}"[:200]
            return
        fig.samples.append(seconds)
    log(f"verify_audit: median {fig.median:.2f} s")


# --------------------------------------------------------------------------------------------------


def run(config: dict) -> dict:
    """Everything measured inside the scratch database. Returns {figure: dict}."""
    repeat = config["repeat"]
    mlflow_url = config["mlflow_url"]
    figs = new_figures()

    log("migrating the scratch database")
    call_command("migrate", verbosity=0, interactive=False)
    users = seed_audit.seed_users()
    log(f"seeding {config['audit_events']} audit events")
    seconds = seed_audit.seed_audit_events(config["audit_events"], config["model_names"])
    figs["seed_audit"].samples.append(seconds)
    figs["seed_audit"].extra["events"] = config["audit_events"]
    log(f"audit trail seeded in {seconds:.1f} s")

    for r in range(repeat):
        floor = read_floor(mlflow_url, config.get("run_batch", RUN_BATCH))
        for part in ("models", "versions", "runs", "total"):
            figs[f"floor_{part}"].samples.append(floor[part])
        log(f"floor {r + 1}/{repeat}: {floor['total']:.2f} s ({floor['n_models']} models, "
            f"{floor['n_versions']} versions, {floor['n_runs']} runs)")
    figs["floor_total"].extra.update(models=floor["n_models"], versions=floor["n_versions"], runs=floor["n_runs"])

    measure_syncs(figs, config, mlflow_url, repeat)
    from benchmarks.seed_risk import seed_model_risk

    log(f"model risk seeded in {seed_model_risk():.1f} s (tiers, findings)")
    measure_pages(figs, config, users, mlflow_url, config["page_samples"])
    measure_verify_audit(figs, min(repeat, 3))
    return {name: fig.to_dict() for name, fig in figs.items()}
