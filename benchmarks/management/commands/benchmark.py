"""`manage.py benchmark`: seed a registry of a chosen size, serve it with a real `mlflow server`, and
measure the sync and the pages against it in a throw-away console database. Prints a table and writes
the same as JSON. See README, "Benchmark"."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

PRESETS = {
    "small": {"models": 1000, "versions_per_model": 10, "audit_events": 100_000},
    "large": {"models": 10_000, "versions_per_model": 10, "audit_events": 1_000_000},
}


class Command(BaseCommand):
    help = "Benchmark the sync and the pages at registry scale against a real, bulk-seeded MLflow server."

    def add_arguments(self, parser):
        parser.add_argument("--preset", choices=sorted(PRESETS), default="small",
                            help="small: 1,000 models x 10 versions, 100,000 audit events (default); "
                                 "large: 10,000 x 10, 1,000,000 events")
        parser.add_argument("--models", type=int, help="registered models (overrides the preset)")
        parser.add_argument("--versions-per-model", type=int, help="versions per model (overrides the preset)")
        parser.add_argument("--audit-events", type=int, help="audit events to seed (overrides the preset)")
        parser.add_argument("--wide-versions", type=int, default=100,
                            help="versions of the extra model the model page is measured on (default 100)")
        parser.add_argument("--history-steps", type=int, default=100, help="metric history length (default 100)")
        parser.add_argument("--history-share", type=float, default=0.1,
                            help="share of models whose runs log metric histories (default 0.1; the wide model's "
                                 "always do); the other runs log their metrics once")
        parser.add_argument("--no-spread", dest="spread", action="store_false",
                            help="skip the spread sync over 1 and 2 task workers (two more full syncs)")
        parser.add_argument("--repeat", type=int, default=2,
                            help="runs of each sync/floor figure (default 2: reading 10,000 runs from MLflow "
                                 "alone takes a minute or two, and the small preset must stay under 10 minutes)")
        parser.add_argument("--run-batch", type=int, default=100,
                            help="run ids per search_runs call in the floor (default 100; match the sync's)")
        parser.add_argument("--page-samples", type=int, default=30, help="requests per page figure (default 30)")
        parser.add_argument("--database-url",
                            help="PostgreSQL server to create a scratch database bench_<pid> on (default: "
                                 "DATABASE_URL if it is postgres://, else a temp SQLite file)")
        parser.add_argument("--json", dest="json_path", help="write the figures as JSON to this path")
        parser.add_argument("--no-rss-probe", dest="rss_probe", action="store_false",
                            help="skip the peak-memory figure, which costs one more full sync in a fresh process")
        parser.add_argument("--keep", action="store_true", help="keep the temp directory (logs, stores)")
        parser.add_argument("--mlflow-store", dest="mlflow_store",
                            help="a seeded MLflow store to reuse (SQLite file): when PATH exists and was seeded for "
                                 "the same sizes it is copied instead of seeding again (seeding the large preset "
                                 "takes over a minute); when it does not exist, the fresh seed is saved there")
        parser.add_argument("--audit-only", action="store_true",
                            help="measure only the audit rows (seeding, search pages, verify): no REST floor, sync "
                                 "or other pages; with a small --models the MLflow seed takes seconds")
        parser.add_argument("--load", action="store_true",
                            help="also run the web under load: a locust scenario (headless) of --load-users "
                                 "concurrent users in the roles' usual mix against a gunicorn it starts")
        parser.add_argument("--load-users", type=int, default=50, help="concurrent users for --load (default 50)")
        parser.add_argument("--load-seconds", type=int, default=60, help="duration of --load (default 60 s)")
        parser.add_argument("--load-workers", type=int, default=4,
                            help="gunicorn sync workers for --load (default 4, as the Procfile: 2 per core here)")
        parser.add_argument("--report", nargs="+", metavar="JSON",
                            help="measure nothing: combine these runs' JSON (e.g. a SQLite and a PostgreSQL run) "
                                 "into one table; with --html, a page with charts; with --json, the combined JSON")
        parser.add_argument("--html", dest="html_path", help="with --report: write the HTML report here")
        parser.add_argument("--worker", help=argparse.SUPPRESS)
        parser.add_argument("--sync-probe", help=argparse.SUPPRESS)

    def handle(self, *args, **opts):
        if opts["worker"]:
            return self._worker(Path(opts["worker"]))
        if opts["report"]:
            return self._combine(opts)
        if opts["sync_probe"]:
            from benchmarks.worker import sync_probe

            self.stdout.write(json.dumps(sync_probe(opts["sync_probe"])))
            return None
        try:
            report = self._run(opts)
        except (RuntimeError, OSError, ValueError, subprocess.CalledProcessError) as exc:
            raise CommandError(f"benchmark failed: {exc}") from exc
        from benchmarks.report import table, write_json

        self.stdout.write(table(report))
        if opts["json_path"]:
            write_json(opts["json_path"], report)
            self.stdout.write(f"\nJSON written to {opts['json_path']}")
        return None

    def _combine(self, opts) -> None:
        from benchmarks.html_report import combine, to_html

        try:
            combined = combine(opts["report"])
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read the reports: {exc}") from exc
        names = [r["name"] for r in combined["runs"]]
        for row in combined["rows"]:
            cells = "  ".join(f"{c['p95'] if c['p95'] is not None else '-'}({c['verdict']})" for c in row["runs"])
            self.stdout.write(f"{row['figure']:32} {row['target']:26} {cells}")
        self.stdout.write("runs: " + ", ".join(names))
        if opts["html_path"]:
            Path(opts["html_path"]).write_text(to_html(combined))
            self.stdout.write(f"HTML written to {opts['html_path']}")
        if opts["json_path"]:
            Path(opts["json_path"]).write_text(json.dumps(combined, indent=2) + "\n")
            self.stdout.write(f"JSON written to {opts['json_path']}")

    def _run(self, opts) -> dict:
        from benchmarks import scratch_db, servers
        from benchmarks.report import to_json
        from benchmarks.seed_mlflow import SeedSpec

        preset = PRESETS[opts["preset"]]
        spec = SeedSpec(models=opts["models"] if opts["models"] is not None else preset["models"],
                        versions_per_model=opts["versions_per_model"] or preset["versions_per_model"],
                        history_steps=opts["history_steps"], wide_versions=opts["wide_versions"],
                        history_share=opts["history_share"])
        audit_events = opts["audit_events"] if opts["audit_events"] is not None else preset["audit_events"]
        database_url = opts["database_url"] or os.environ.get("DATABASE_URL")
        if (spec.models < 1 or spec.versions_per_model < 2 or spec.wide_versions < 10 or opts["repeat"] < 1
                or opts["run_batch"] < 1 or not 0 <= opts["history_share"] <= 1):
            raise ValueError("need --models >= 1, --versions-per-model >= 2, --wide-versions >= 10, --repeat >= 1, "
                             "--run-batch >= 1, 0 <= --history-share <= 1")

        # mkdtemp, not TemporaryDirectory: the latter's finalizer removed a --keep directory at exit.
        workdir = Path(tempfile.mkdtemp(prefix="mgc-bench-"))
        self.stderr.write(f"benchmark: {spec.models} models x {spec.versions_per_model} versions "
                          f"(+1 model x {spec.wide_versions}), {audit_events} audit events, workdir {workdir}")
        mlflow = scratch = None
        try:
            started = time.perf_counter()
            seeded = self._seed(spec, workdir, opts["mlflow_store"])
            mlflow = servers.mlflow_server(f"sqlite:///{workdir / 'mlflow.db'}", workdir / "artifacts", workdir)
            mlflow.start()
            scratch = scratch_db.create(database_url, workdir)
            config = {
                "spec": asdict(spec), "audit_events": audit_events, "repeat": opts["repeat"],
                "page_samples": opts["page_samples"], "run_batch": opts["run_batch"], "rss_probe": opts["rss_probe"],
                "spread": opts["spread"],
                "audit_only": opts["audit_only"],
                "load": {"users": opts["load_users"], "seconds": opts["load_seconds"],
                         "workers": opts["load_workers"]} if opts["load"] else None,
                "mlflow_url": mlflow.url, "workdir": str(workdir),
                "seed": seeded.to_dict(), "model_names": seeded.model_names[:-1] if spec.wide_versions
                else seeded.model_names, "alias_models": seeded.alias_models,
            }
            config_path, result_path = workdir / "config.json", workdir / "result.json"
            config_path.write_text(json.dumps(config))
            var = workdir / "var"
            (var / "static").mkdir(parents=True)  # whitenoise warns about a missing STATIC_ROOT
            env = {**os.environ, "DATABASE_URL": scratch.url, "MLFLOW_TRACKING_URI": mlflow.url,
                   "DJANGO_SECRET_KEY": secrets.token_urlsafe(50), "MGC_VAR_DIR": str(var),
                   "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "registry_ui.settings"),
                   "DJANGO_DEBUG": "0", "DJANGO_HTTPS": "0", "BENCH_RESULT": str(result_path),
                   # Signed checkpoints (into the scratch var/) for the incremental verify figure.
                   "AUDIT_SIGNING_KEY": secrets.token_urlsafe(32), "AUDIT_CHECKPOINT_DIR": str(var / "checkpoints")}
            subprocess.run([sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "benchmark",
                            "--worker", str(config_path)], env=env, check=True)
            figures = json.loads(result_path.read_text())
            if seeded.reused_from:
                figures["seed_mlflow"].update(note=f"reused {seeded.reused_from} (not seeded in this run)",
                                              **seeded.to_dict())
            else:
                figures["seed_mlflow"].update(median=round(seeded.seconds, 4), p95=round(seeded.seconds, 4), n=1,
                                              note=f"{seeded.versions} versions, {seeded.runs} runs, "
                                                   f"{seeded.metric_rows} metric rows", **seeded.to_dict())
            public = {k: v for k, v in config.items() if k not in ("model_names", "alias_models", "workdir")}
            public.update(database=scratch.vendor, total_seconds=round(time.perf_counter() - started, 1),
                          preset=opts["preset"])
            return to_json(public, figures)
        finally:
            if mlflow:
                mlflow.stop()
            if scratch:
                scratch.drop()
            if opts["keep"]:
                self.stderr.write(f"kept {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)

    def _seed(self, spec, workdir: Path, store: str | None):
        """Seed MLflow in `workdir`, or copy the store seeded earlier for the same spec (--mlflow-store)."""
        from benchmarks.seed_mlflow import describe, seed, spec_key

        target = workdir / "mlflow.db"
        if store:
            store_path, key_path = Path(store), Path(f"{store}.spec.json")
            if store_path.exists():
                stored = json.loads(key_path.read_text()) if key_path.exists() else None
                if stored != spec_key(spec):
                    raise ValueError(f"--mlflow-store {store} was seeded for {stored}, not {spec_key(spec)}; "
                                     "remove it or pass another path")
                shutil.copyfile(store_path, target)
                seeded = describe(target, spec)
                seeded.reused_from = str(store_path)
                self.stderr.write(f"reused the MLflow store {store_path}: {seeded.to_dict()}")
                return seeded
        seeded = seed(target, spec, artifact_root=(workdir / "artifacts").as_uri())
        self.stderr.write(f"seeded MLflow in {seeded.seconds:.1f} s: {seeded.to_dict()}")
        if store:
            shutil.copyfile(target, store)
            Path(f"{store}.spec.json").write_text(json.dumps(spec_key(spec)))
        return seeded

    def _worker(self, config_path: Path) -> None:
        from benchmarks.worker import run

        config = json.loads(config_path.read_text())
        figures = run(config)
        Path(os.environ["BENCH_RESULT"]).write_text(json.dumps(figures))
