"""Capacity of one web node and one task worker (docs/scaling.md), measured in the scratch database the
`capacity` command prepared, against its seeded `mlflow server`:

- web: a closed loop of C concurrent clients (threads, each with its own keep-alive connection and a
  signed-in session) over the main pages, against gunicorn with W sync workers; requests per second,
  median and p95 latency, non-200 answers. The clients run on the same machine: they take CPU from the
  server (a few per cent of a request's cost each), so the figures are a floor.
- worker: N tasks enqueued, one or two `manage.py db_worker` processes started, the time from the first
  task started to the last finished (the rows' own timestamps); a no-op task (the queue's own cost) and
  the targeted sync of one model (MLflow reads, mirror writes).
The machine's load average is recorded beside each figure: other work on the machine shows there.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.db.models import Max, Min

from benchmarks import seed_audit
from benchmarks.measure import p95, timed
from benchmarks.servers import ChildServer, free_port
from benchmarks.worker import log, page_urls

ROOT = Path(settings.BASE_DIR)


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _cookies(users: dict) -> dict[str, str]:
    from django.test import Client

    cookies = {}
    for role, user in users.items():
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user)
        cookies[role] = client.cookies[settings.SESSION_COOKIE_NAME].value
    return cookies


def _gunicorn(workers: int, workdir: Path) -> ChildServer:
    port = free_port()
    args = [str(Path(sys.executable).with_name("gunicorn")), "registry_ui.wsgi:application", "--bind",
            f"127.0.0.1:{port}", "--workers", str(workers), "--timeout", "120", "--graceful-timeout", "3",
            "--log-level", "warning"]
    return ChildServer("gunicorn", args, url=f"http://127.0.0.1:{port}", probe="/healthz", env=dict(os.environ),
                       log=workdir / f"gunicorn-{workers}.log")


def cpu_seconds(master_pid: int) -> float:
    """CPU time (user + system) of a gunicorn master's worker processes so far, from /proc. Divided by the
    requests served it is the CPU one request costs, which, unlike requests per second, hardly depends
    on what else the machine runs: cores / (CPU per request) is what a node of that many cores serves."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    try:
        children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    except OSError:
        return 0.0
    for pid in children:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime (fields 14 and 15 of stat)
    return total


def load(base: str, targets: list[tuple[str, str]], *, clients: int, seconds: float, pid: int | None = None) -> dict:
    """`clients` threads GET the (url, cookie) targets round-robin for `seconds`; figures of what answered
    (with `pid`, a gunicorn master's, also the workers' CPU per request)."""
    import requests

    times: list[float] = []
    failures = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(offset: int) -> None:
        session = requests.Session()
        i = offset
        mine, bad = [], 0
        while time.perf_counter() < deadline:
            url, cookie = targets[i % len(targets)]
            i += 1
            started = time.perf_counter()
            response = session.get(base + url, headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}"},
                                   timeout=120)
            _ = response.content
            mine.append((time.perf_counter() - started) * 1000)
            bad += response.status_code != 200
        session.close()
        with lock:
            times.extend(mine)
            failures[0] += bad

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    load_before = _load()
    cpu_before = cpu_seconds(pid) if pid else 0.0
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu_before if pid else None
    times.sort()
    return {"requests": len(times), "rps": round(len(times) / elapsed, 1),
            "cpu_ms_per_request": round(cpu / len(times) * 1000, 1) if cpu and times else None,
            "median_ms": round(statistics.median(times), 1) if times else None,
            "p95_ms": round(p95(times), 1) if times else None,
            "non_200": failures[0], "load_before": load_before, "load_after": _load()}


def measure_web(config: dict, users: dict) -> dict:
    urls = {k: (role, url) for k, (role, url, _) in page_urls(config).items() if url}
    cookies = _cookies(users)
    mix = [(url, cookies[role]) for role, url in urls.values()]
    workdir = Path(config["workdir"])
    out = {"mix": list(urls), "by_workers": {}, "by_page": {}}
    for workers in config["web_workers"]:
        with _gunicorn(workers, workdir) as server:
            load(server.url, mix, clients=2, seconds=3)  # warm every worker (imports, caches, connections)
            figure = load(server.url, mix, clients=config["clients"], seconds=config["seconds"],
                          pid=server.process.pid)
            out["by_workers"][workers] = figure
            log(f"web, {workers} worker(s), {config['clients']} clients, mix: {figure}")
            if workers == config["page_workers"]:
                for key, (role, url) in urls.items():
                    figure = load(server.url, [(url, cookies[role])], clients=config["clients"],
                                  seconds=config["page_seconds"], pid=server.process.pid)
                    out["by_page"][key] = figure
                    log(f"web, {workers} worker(s), page {key}: {figure}")
    return out


def _drain(task, args_list: list[tuple], workers: int, workdir: Path) -> dict:
    from django_tasks_db.models import DBTaskResult

    DBTaskResult.objects.all().delete()
    for args in args_list:
        task.enqueue(*args)
    load_before = _load()
    procs = []
    for n in range(workers):
        log_file = (workdir / f"worker-{task.name}-{workers}-{n}.log").open("wb")
        procs.append(subprocess.Popen(
            [sys.executable, "manage.py", "db_worker", "--queue-name", "*", "--interval", "0.05",
             "--no-startup-delay", "--no-reload", "--worker-id", f"capacity-{n}"],
            cwd=ROOT, env=dict(os.environ), stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True))
    total = len(args_list)
    deadline = time.monotonic() + 900
    while DBTaskResult.objects.finished().count() < total and time.monotonic() < deadline:
        time.sleep(0.2)
    for proc in procs:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    span = DBTaskResult.objects.aggregate(first=Min("started_at"), last=Max("finished_at"))
    seconds = (span["last"] - span["first"]).total_seconds()
    done = DBTaskResult.objects.successful().count()
    return {"tasks": total, "successful": done, "seconds": round(seconds, 2),
            "tasks_per_s": round(done / seconds, 1) if seconds else None,
            "load_before": load_before, "load_after": _load()}


def measure_worker(config: dict) -> dict:
    from registry_ui.mirror.tasks import sync_model_task
    from registry_ui.scheduler.heartbeat import worker_heartbeat

    workdir = Path(config["workdir"])
    names = config["model_names"][: config["sync_tasks"]]
    out = {}
    for workers in config["task_workers"]:
        out[f"noop_{workers}"] = _drain(worker_heartbeat, [()] * config["noop_tasks"], workers, workdir)
        log(f"worker x{workers}, no-op tasks: {out[f'noop_{workers}']}")
        out[f"sync_model_{workers}"] = _drain(sync_model_task, [(n,) for n in names], workers, workdir)
        log(f"worker x{workers}, sync_model tasks: {out[f'sync_model_{workers}']}")
    return out


def run(config: dict) -> dict:
    from registry_ui.mirror.sync import sync_registry

    log("migrating the scratch database")
    call_command("migrate", verbosity=0, interactive=False)
    users = seed_audit.seed_users()
    seconds = seed_audit.seed_audit_events(config["audit_events"], config["model_names"])
    log(f"{config['audit_events']} audit events seeded in {seconds:.1f} s")
    seconds, _ = timed(lambda: sync_registry(uri=config["mlflow_url"]))
    log(f"full sync (fills the mirror) in {seconds:.1f} s")
    return {"cpus": os.cpu_count(), "full_sync_seconds": round(seconds, 1),
            "worker": measure_worker(config), "web": measure_web(config, users)}
