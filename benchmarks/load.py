"""The web tier under concurrent users: a locust scenario (locust as a library, headless) against the
gunicorn the benchmark started, with the roles' usual mix of pages.

Locust patches the standard library for gevent when imported, which must not happen inside the
Django process that measures everything else: `run_load` runs this module as a child process
(`python -m benchmarks.load CONFIG`), which prints its figures as one JSON line. The scenario is
bounded in users, time and requests and only ever targets the loopback server it is given.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# Relative weights of the roles among the simulated users (requesters browse most, ops least).
ROLE_WEIGHTS = {"requester": 4, "reviewer": 3, "auditor": 2, "ops": 1}


def run_load(*, host: str, cookie_name: str, roles: dict[str, dict], users: int, seconds: float,
             spawn_rate: float, workdir: Path) -> dict:
    """`roles`: {role: {"cookie": session value, "urls": {label: path}}}. Returns the figures (or
    {"error": ...} when the child failed)."""
    if not host.startswith(("http://127.", "http://localhost", "http://[::1]")):
        raise ValueError(f"the load scenario only targets a loopback server, not {host}")
    config = workdir / "load.json"
    config.write_text(json.dumps({"host": host, "cookie_name": cookie_name, "roles": roles, "users": users,
                                  "seconds": seconds, "spawn_rate": spawn_rate}))
    proc = subprocess.run([sys.executable, "-m", "benchmarks.load", str(config)], capture_output=True, text=True,
                          timeout=seconds + 120, check=False, cwd=Path(__file__).resolve().parent.parent)
    (workdir / "load.log").write_text(proc.stderr)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"load scenario failed (exit {proc.returncode}): {tail[:200]}"}
    return json.loads(lines[-1])


def _scenario(config: dict) -> dict:
    import random

    import gevent
    from locust import HttpUser, between, task
    from locust.env import Environment

    classes = []
    for role, spec in config["roles"].items():
        urls = sorted(spec["urls"].items())
        if not urls:
            continue

        class RoleUser(HttpUser):
            wait_time = between(1, 3)  # a person reads a page before opening the next
            weight = ROLE_WEIGHTS.get(role, 1)
            _role, _urls, _cookie = role, urls, spec["cookie"]

            def on_start(self):
                self.client.cookies.set(config["cookie_name"], self._cookie)

            @task
            def browse(self):
                label, path = random.choice(self._urls)  # noqa: S311 - a load mix, not a secret
                with self.client.get(path, name=f"{self._role}:{label}", catch_response=True,
                                     allow_redirects=False) as response:
                    if response.status_code != 200:
                        response.failure(f"HTTP {response.status_code}")

        RoleUser.__name__ = f"{role.title()}User"
        classes.append(RoleUser)
    # At the end each user finishes the request it is waiting on (up to 30 s) rather than dropping it.
    env = Environment(user_classes=classes, host=config["host"], stop_timeout=30)
    runner = env.create_local_runner()
    runner.start(config["users"], spawn_rate=config["spawn_rate"])
    gevent.sleep(config["seconds"])
    runner.stop()  # graceful: waits for the requests in flight (stop_timeout)
    runner.quit()
    total = env.stats.total
    pages = {}
    for (name, _method), entry in sorted(env.stats.entries.items()):
        pages[name] = {"requests": entry.num_requests, "failures": entry.num_failures,
                       "median_ms": entry.get_response_time_percentile(0.5),
                       "p95_ms": entry.get_response_time_percentile(0.95)}
    errors = [{"name": e.name, "error": str(e.error)[:200], "occurrences": e.occurrences}
              for e in env.stats.errors.values()]
    duration = max(1e-9, (total.last_request_timestamp or 0) - (total.start_time or 0))
    return {"users": config["users"], "seconds": config["seconds"], "requests": total.num_requests,
            "failures": total.num_failures, "median_ms": total.get_response_time_percentile(0.5),
            "p95_ms": total.get_response_time_percentile(0.95), "p99_ms": total.get_response_time_percentile(0.99),
            "throughput_rps": round(total.num_requests / duration, 2) if total.num_requests else 0.0,
            "pages": pages, "errors": errors[:20]}


if __name__ == "__main__":
    print(json.dumps(_scenario(json.loads(Path(sys.argv[1]).read_text()))), flush=True)
