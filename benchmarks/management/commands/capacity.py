"""`manage.py capacity`: requests per second of one web node (gunicorn, 1..N workers) over the main pages,
and tasks per second of one and two task workers, on a seeded registry in a throw-away database
(benchmarks/capacity.py says how). The figures of docs/scaling.md come from it."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


def _ints(value: str) -> list[int]:
    return [int(v) for v in value.split(",") if v.strip()]


class Command(BaseCommand):
    help = "Measure the capacity of one web node and one task worker on a seeded registry (docs/scaling.md)."

    def add_arguments(self, parser):
        parser.add_argument("--models", type=int, default=1000, help="registered models (default 1000)")
        parser.add_argument("--versions-per-model", type=int, default=10)
        parser.add_argument("--audit-events", type=int, default=100_000)
        parser.add_argument("--web-workers", type=_ints, default=[1, 2, 4], help="gunicorn workers to try: 1,2,4")
        parser.add_argument("--page-workers", type=int, default=2, help="workers of the per-page figures")
        parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
        parser.add_argument("--seconds", type=float, default=20, help="seconds of each mix figure")
        parser.add_argument("--page-seconds", type=float, default=8, help="seconds of each per-page figure")
        parser.add_argument("--task-workers", type=_ints, default=[1, 2], help="task workers to try: 1,2")
        parser.add_argument("--noop-tasks", type=int, default=300)
        parser.add_argument("--sync-tasks", type=int, default=200, help="targeted syncs (one model each)")
        parser.add_argument("--database-url", help="PostgreSQL server for the scratch database (default: "
                                                   "DATABASE_URL if postgres://, else a temp SQLite file)")
        parser.add_argument("--json", dest="json_path", help="write the figures as JSON here")
        parser.add_argument("--worker", help="(internal) the measuring child's config file")

    def handle(self, *args, **opts):
        if opts["worker"]:
            from benchmarks.capacity import run

            config = json.loads(Path(opts["worker"]).read_text())
            Path(os.environ["BENCH_RESULT"]).write_text(json.dumps(run(config)))
            return
        try:
            report = self._run(opts)
        except (RuntimeError, OSError, ValueError, subprocess.CalledProcessError) as exc:
            raise CommandError(f"capacity failed: {exc}") from exc
        text = json.dumps(report, indent=2)
        self.stdout.write(text)
        if opts["json_path"]:
            Path(opts["json_path"]).write_text(text + "\n")

    def _run(self, opts) -> dict:
        from benchmarks import scratch_db, servers
        from benchmarks.seed_mlflow import SeedSpec, seed

        spec = SeedSpec(models=opts["models"], versions_per_model=opts["versions_per_model"])
        with tempfile.TemporaryDirectory(prefix="mgc-capacity-") as tmp:
            workdir = Path(tmp)
            seeded = seed(workdir / "mlflow.db", spec, artifact_root=(workdir / "artifacts").as_uri())
            self.stderr.write(f"seeded MLflow in {seeded.seconds:.1f} s: {seeded.to_dict()}")
            mlflow = servers.mlflow_server(f"sqlite:///{workdir / 'mlflow.db'}", workdir / "artifacts", workdir,
                                           workers=2)
            # MLflow 3's job runner (GenAI scorers) has nothing to do for a registry and costs CPU.
            mlflow.env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
            try:
                mlflow.start(timeout=300)
            except RuntimeError:
                self.stderr.write((workdir / "mlflow-server.log").read_text()[-3000:])
                raise
            scratch = scratch_db.create(opts["database_url"] or os.environ.get("DATABASE_URL"), workdir)
            try:
                config = {"spec": {"wide_versions": spec.wide_versions}, "audit_events": opts["audit_events"],
                          "mlflow_url": mlflow.url, "workdir": str(workdir), "model_names": seeded.model_names,
                          **{k: opts[k] for k in ("web_workers", "page_workers", "clients", "seconds",
                                                  "page_seconds", "task_workers", "noop_tasks", "sync_tasks")}}
                config_path, result_path = workdir / "config.json", workdir / "result.json"
                config_path.write_text(json.dumps(config))
                var = workdir / "var"
                (var / "static").mkdir(parents=True)
                env = {**os.environ, "DATABASE_URL": scratch.url, "MLFLOW_TRACKING_URI": mlflow.url,
                       "DJANGO_SECRET_KEY": secrets.token_urlsafe(50), "MGC_VAR_DIR": str(var),
                       "DJANGO_SETTINGS_MODULE": "registry_ui.settings", "DJANGO_DEBUG": "0", "DJANGO_HTTPS": "0",
                       "BENCH_RESULT": str(result_path)}
                subprocess.run([sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "capacity",
                                "--worker", str(config_path)], env=env, check=True)
                result = json.loads(result_path.read_text())
            finally:
                mlflow.stop()
                scratch.drop()
        config.pop("model_names")
        config.pop("workdir")
        return {"config": {**config, "models": spec.models, "versions_per_model": spec.versions_per_model,
                           "database": scratch.vendor}, **result}
