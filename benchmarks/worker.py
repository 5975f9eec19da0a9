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
    histories: dict[str, list[str]] = {}  # metric key -> runs that logged it past step 0
    for i in range(0, len(run_ids), run_batch):
        batch = run_ids[i:i + run_batch]
        quoted = ",".join(f"'{r}'" for r in batch)
        found = client.search_runs(experiment_ids, filter_string=f"attributes.run_id IN ({quoted})",
                                   max_results=len(batch))
        runs += len(found)
        for run in found:
            for metric in run.data._metric_objs:
                if metric.step:
                    histories.setdefault(metric.key, []).append(run.info.run_id)
    t3 = time.perf_counter()
    n_histories = read_histories(uri, histories)
    t4 = time.perf_counter()
    return {"models": t1 - t0, "versions": t2 - t1, "runs": t3 - t2, "histories": t4 - t3, "total": t4 - t0,
            "n_models": models, "n_versions": len(run_ids), "n_runs": runs, "n_histories": n_histories}


def read_histories(uri: str, histories: dict[str, list[str]]) -> int:
    """The metric histories the sync mirrors, read the cheapest way MLflow offers: one request per
    metric key for 100 runs (the endpoint MLflow's own UI draws its charts from; the seeded histories
    are 100 steps, well under its 25,000 points a request)."""
    import requests

    read = 0
    with requests.Session() as session:
        for key, run_ids in sorted(histories.items()):
            for i in range(0, len(run_ids), 100):
                batch = run_ids[i:i + 100]
                response = session.get(f"{uri}/ajax-api/2.0/mlflow/metrics/get-history-bulk",
                                       params={"run_id": batch, "metric_key": key, "max_results": 25_000},
                                       timeout=120)
                response.raise_for_status()
                read += len(batch)
    return read


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


def measure_spread(figs: dict[str, Figure], config: dict, uri: str) -> None:
    """The scheduled full sync spread in shards over 1, then 2 task workers (real `db_worker` processes
    on the scratch database), from an empty mirror; then the unchanged re-sync with 2 (0 rows)."""
    try:
        from registry_ui.mirror.models import SyncRun, SyncRunState
        from registry_ui.mirror.tasks import sync_registry_task
    except ImportError:
        for name in ("sync_spread_1_worker", "sync_spread_2_workers", "sync_spread_unchanged_rows_written"):
            figs[name].note = f"{NOT_BUILT} (registry_ui.mirror.shards)"
        return
    from registry_ui.scheduler.heartbeat import worker_heartbeat
    from registry_ui.scheduler.models import Heartbeat

    shard = max(1, config["spec"]["models"] // 10)
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "REGISTRY_SYNC_SHARD_SIZE": str(shard)}

    def one(n: int, *, clear: bool) -> tuple[float, dict]:
        if clear:
            clear_mirror()
        Heartbeat.objects.all().delete()
        workers = [subprocess.Popen([sys.executable, "manage.py", "db_worker", "--no-reload", "--interval", "0.1",
                                     "--no-startup-delay", "--worker-id", f"bench-{n}-{i}"],
                                    cwd=Path(__file__).resolve().parent.parent, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(n)]
        try:
            deadline = time.monotonic() + 120
            while Heartbeat.objects.count() < n and time.monotonic() < deadline:  # every worker up
                worker_heartbeat.enqueue()
                time.sleep(0.5)
            last = SyncRun.objects.order_by("-id").values_list("id", flat=True).first() or 0
            t0 = time.perf_counter()
            sync_registry_task.enqueue()
            while True:
                run = SyncRun.objects.filter(id__gt=last).order_by("-id").first()
                if run is not None and run.state not in (SyncRunState.RUNNING, SyncRunState.FINISHING):
                    break
                if time.monotonic() > deadline + 1800:
                    raise RuntimeError("the spread sync did not finish in 30 minutes")
                time.sleep(0.1)
            return time.perf_counter() - t0, run.report
        finally:
            for w in workers:
                w.terminate()
            for w in workers:
                w.wait(60)

    for n, name in ((1, "sync_spread_1_worker"), (2, "sync_spread_2_workers")):
        seconds, report = one(n, clear=True)
        figs[name].samples.append(seconds)
        figs[name].extra.update(shard_size=shard, rows_written=report.get("rows_written"))
        log(f"spread full sync, {n} worker(s), shards of {shard}: {seconds:.2f} s")
    seconds, report = one(2, clear=False)
    figs["sync_spread_unchanged_rows_written"].samples.append(report.get("rows_written") or 0)
    log(f"spread unchanged re-sync, 2 workers: {seconds:.2f} s, rows written {report.get('rows_written')}")


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
        "version": ("scientist", "registry:version_detail", {"name": WIDE_MODEL, "version": wide_versions}, {}),
        "compare": ("scientist", "registry:compare", {},
                    {"model": WIDE_MODEL, "versions": ",".join(str(v) for v in range(1, min(5, wide_versions) + 1))}),
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

    urls = {key: spec for key, spec in page_urls(config).items() if key.startswith("audit_")
            or not config.get("audit_only")}
    cookies = {}
    for role in {role for role, _, _ in urls.values()} | (set(LOAD_USERS.values()) & set(users)):
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

    def sample(url: str | list[str], cookie: str | None = None, first: list | None = None) -> tuple[list[float], int]:
        """`samples` timings of GET `url` (of every URL of a list, one after the other, as one sample)
        after two warm-up requests; `first` receives the first request's time."""
        headers = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}"} if cookie else {}
        urls = [url] if isinstance(url, str) else url
        status = 0

        def once() -> float:
            nonlocal status
            started = time.perf_counter()
            for u in urls:
                response = session.get(u, headers=headers, timeout=60)
                _ = response.content
                status = response.status_code if status in (0, 200) else status
            return (time.perf_counter() - started) * 1000

        status = 0
        took = once()
        if first is not None:
            first.append(took)
        once()
        times = [once() for _ in range(samples)]
        return times, status

    # MLflow's own REST for the same data, through the same HTTP client.
    api = f"{mlflow_url}/api/2.0/mlflow"
    mlflow_calls = {
        "mlflow_models_page": f"{api}/registered-models/search?" + urlencode({"max_results": 50}),
        "mlflow_models_search": f"{api}/registered-models/search?"
        + urlencode({"max_results": 50, "filter": "name LIKE '%churn%'"}),
        "mlflow_model_versions": f"{api}/model-versions/search?"
        + urlencode({"max_results": 1000, "filter": f"name='{WIDE_MODEL}'"}),
        "mlflow_version": _mlflow_version_urls(api, config["spec"]["wide_versions"]),
    }
    for name, url in mlflow_calls.items() if not config.get("audit_only") else ():
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
            first: list[float] = []
            times, status = sample(server.url + url, cookies[role], first)
            if status == 200:
                fig.samples.extend(times)
                fig.extra["first_ms"] = round(first[0], 1)
                log(f"page {key}: median {fig.median:.1f} ms, p95 {fig.p95:.1f} ms")
            else:
                fig.note = f"HTTP {status} for {url}"
                log(f"page {key}: HTTP {status}")
        session.close()  # idle keep-alive connections would hold gunicorn's graceful shutdown
    pairs = (("page_catalogue", "mlflow_models_page"), ("page_catalogue_search", "mlflow_models_search"),
             ("page_model", "mlflow_model_versions"), ("page_version", "mlflow_version"))
    for page, mlflow_name in pairs:
        if figs[page].samples and figs[mlflow_name].samples:
            figs[page].ratio_to = mlflow_name
            figs[page].ratio = figs[page].median / figs[mlflow_name].median
            figs[page].extra["p95_ratio"] = round(figs[page].p95 / figs[mlflow_name].p95, 4)
    if config.get("load"):
        measure_load(figs, config, cookies, env, workdir)


def _mlflow_version_urls(api: str, version: int) -> list[str]:
    """What the version page shows, from MLflow's REST: the version, then its run."""
    import requests

    got = requests.get(f"{api}/model-versions/get?" + urlencode({"name": WIDE_MODEL, "version": version}), timeout=60)
    run_id = got.json().get("model_version", {}).get("run_id", "") if got.ok else ""
    return [f"{api}/model-versions/get?" + urlencode({"name": WIDE_MODEL, "version": version}),
            f"{api}/runs/get?" + urlencode({"run_id": run_id})]


def load_urls(config: dict) -> dict[str, dict[str, str]]:
    """The pages each role opens in the load scenario (the roles' usual reading)."""
    names = config["model_names"]
    some = names[len(names) // 2] if names else WIDE_MODEL
    wide = config["spec"]["wide_versions"]
    spec = {
        "requester": {"catalogue": ("registry:catalogue", {}, {}),
                      "search": ("registry:catalogue", {}, {"q": "churn"}),
                      "model": ("registry:model_detail", {"name": some}, {}),
                      "wide_model": ("registry:model_detail", {"name": WIDE_MODEL}, {}),
                      "version": ("registry:version_detail", {"name": WIDE_MODEL, "version": wide}, {})},
        "reviewer": {"inbox": ("governance:inbox", {}, {}),
                     "model": ("registry:model_detail", {"name": some}, {}),
                     "compare": ("registry:compare", {}, {"model": WIDE_MODEL, "versions": "1,2,3,4,5"}),
                     "lineage": ("registry:lineage", {"name": WIDE_MODEL, "version": wide}, {})},
        "auditor": {"audit_search": ("audit:search", {}, {"q": "fraud"}),
                    "reports": ("audit:report_index", {}, {}),
                    "model_report": ("audit:model_report", {"name": some}, {})},
        "ops": {"operations": ("operations:dashboard", {}, {})},
    }
    out: dict[str, dict[str, str]] = {}
    for role, pages in spec.items():
        out[role] = {}
        for label, (url_name, kwargs, query) in pages.items():
            try:
                url = reverse(url_name, kwargs=kwargs or None)
            except NoReverseMatch:
                continue
            out[role][label] = url + (f"?{urlencode(query)}" if query else "")
    return out


LOAD_USERS = {"requester": "scientist", "reviewer": "engineer", "auditor": "auditor", "ops": "ops"}


def measure_load(figs: dict[str, Figure], config: dict, cookies: dict, env: dict, workdir: Path) -> None:
    """50 concurrent users (by default) on a gunicorn of a few workers, the way it is deployed."""
    from benchmarks import servers
    from benchmarks.load import run_load

    load = config["load"]
    roles = {role: {"cookie": cookies[user], "urls": urls}
             for role, urls in load_urls(config).items() if (user := LOAD_USERS[role]) in cookies}
    # As the Procfile deploys it: sync workers, which close each connection after its response. Worker
    # threads keep connections alive for 2 s, so a user who read a page for 1-3 s sent its next request on
    # a connection gunicorn was closing at that moment (status 0 in locust, no request in gunicorn's log).
    with servers.wsgi_server(env, workdir, workers=load.get("workers", 4), threads=1) as server:
        log(f"load: {load['users']} users for {load['seconds']} s against {server.url}")
        result = run_load(host=server.url, cookie_name=settings.SESSION_COOKIE_NAME, roles=roles,
                          users=load["users"], seconds=load["seconds"], spawn_rate=load.get("spawn_rate", 10),
                          workdir=workdir)
    if "error" in result:
        for name in ("load_web", "load_errors", "load_throughput"):
            figs[name].note = result["error"]
        log(result["error"])
        return
    figs["load_web"].extra.update(median=result["median_ms"], p95=result["p95_ms"], n=result["requests"],
                                  p99=result["p99_ms"], pages=result["pages"], errors=result["errors"])
    figs["load_web"].note = (f"{result['users']} users, {result['seconds']} s, gunicorn {load.get('workers', 4)} "
                             "sync workers")
    figs["load_errors"].extra.update(median=result["failures"], p95=result["failures"], n=result["requests"])
    figs["load_throughput"].extra.update(median=result["throughput_rps"], p95=result["throughput_rps"], n=1)
    log(f"load: {result['requests']} requests, {result['failures']} failed, p95 {result['p95_ms']} ms, "
        f"{result['throughput_rps']} req/s")


# Events appended after the signed checkpoint for the incremental figure: 10,000, or as many as the seeded
# trail when that is smaller (a tiny run, as the test suite's, need not write ten thousand).
INCREMENTAL_EVENTS = 10_000


def measure_verify_audit(figs: dict[str, Figure], repeat: int, config: dict | None = None) -> None:
    """verify_audit --whole over the seeded trail; then a signed checkpoint, INCREMENTAL_EVENTS more
    events, and verify_audit's default (from that checkpoint on)."""
    fig = figs["verify_audit"]
    if "verify_audit" not in get_commands():
        fig.note = f"{NOT_BUILT} (manage.py verify_audit)"
        return
    from io import StringIO

    for _ in range(repeat):
        out = StringIO()
        try:
            seconds, _ = timed(lambda out=out: call_command("verify_audit", whole=True, stdout=out, stderr=out))
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a failing verify is a figure's note, not a crash
            fig.note = f"verify_audit failed: {out.getvalue().strip() or exc}"[:200]
            return
        fig.samples.append(seconds)
    log(f"verify_audit --whole: median {fig.median:.2f} s")

    inc = figs["verify_audit_incremental"]
    from governance.audit import checkpoints

    new_events = min(INCREMENTAL_EVENTS, max(100, (config or {}).get("audit_events", INCREMENTAL_EVENTS)))
    cp = checkpoints.write_checkpoint()
    seed_audit.seed_audit_events(new_events, (config or {}).get("model_names", []))
    inc.extra.update(new_events=new_events, checkpoint_seq=cp.seq)
    for _ in range(repeat):
        out = StringIO()
        try:
            seconds, _ = timed(lambda out=out: call_command("verify_audit", stdout=out, stderr=out))
        except SystemExit:
            inc.note = f"verify_audit failed: {out.getvalue().strip()}"[:200]
            return
        if "since signed checkpoint" not in out.getvalue():
            inc.note = f"not incremental: {out.getvalue().strip()[:200]}"
            return
        inc.samples.append(seconds)
    inc.note = f"{new_events} events after a signed checkpoint at seq {cp.seq}"
    log(f"verify_audit (incremental, {new_events} new events): median {inc.median:.3f} s")


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

    if config.get("audit_only"):
        measure_pages(figs, config, users, mlflow_url, config["page_samples"])
        measure_verify_audit(figs, min(repeat, 3), config)
        for fig in figs.values():
            if not fig.samples and not fig.note:
                fig.note = "not measured: --audit-only"
        return {name: fig.to_dict() for name, fig in figs.items()}

    for r in range(repeat):
        floor = read_floor(mlflow_url, config.get("run_batch", RUN_BATCH))
        for part in ("models", "versions", "runs", "histories", "total"):
            figs[f"floor_{part}"].samples.append(floor[part])
        log(f"floor {r + 1}/{repeat}: {floor['total']:.2f} s ({floor['n_models']} models, "
            f"{floor['n_versions']} versions, {floor['n_runs']} runs)")
    figs["floor_total"].extra.update(models=floor["n_models"], versions=floor["n_versions"], runs=floor["n_runs"],
                                     histories=floor["n_histories"])

    measure_syncs(figs, config, mlflow_url, repeat)
    if config.get("spread", True):
        measure_spread(figs, config, mlflow_url)
    else:
        for name in ("sync_spread_1_worker", "sync_spread_2_workers", "sync_spread_unchanged_rows_written"):
            figs[name].note = "not measured: --no-spread (two more full syncs)"
    from benchmarks.seed_risk import seed_model_risk

    log(f"model risk seeded in {seed_model_risk():.1f} s (tiers, findings)")
    measure_pages(figs, config, users, mlflow_url, config["page_samples"])
    measure_verify_audit(figs, min(repeat, 3), config)
    return {name: fig.to_dict() for name, fig in figs.items()}
