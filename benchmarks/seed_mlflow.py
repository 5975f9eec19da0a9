"""Bulk-seed a throw-away MLflow store through MLflow's own SQLAlchemy schema and models.

Creating 100,000 versions through REST one by one takes hours (about 55 ms a call). Here MLflow's
own store creates its schema (and runs its migrations), then plain SQLAlchemy executemany inserts
fill its tables, using its declarative models so the rows are exactly what MLflow itself reads.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

DOMAINS = ("fraud", "churn", "credit", "pricing", "ranking")
TEAMS = ("risk", "growth", "lending", "marketplace", "search")
WIDE_MODEL = "bench-wide-model"
N_PARAMS = 20
N_METRICS = 10
HISTORY_METRICS = ("loss", "val_loss")  # two of the ten metrics carry a history (on some models' runs)
FLAT_METRICS = tuple(f"m{i}" for i in range(N_METRICS - len(HISTORY_METRICS)))
VERSION_TAG_KEYS = ("validation_status", "team", "framework", "dataset_version", "owner")
CHUNK = 20_000


@dataclass
class SeedSpec:
    models: int = 1000
    versions_per_model: int = 10
    history_steps: int = 100
    # The share of models whose runs log loss/val_loss as histories of history_steps points (the wide
    # model's always do: the compare page draws them); the others log them once, at step 0, as a run
    # that logs only final figures does. Every run with full histories made MLflow's own
    # get-history-bulk the whole cost at 10,000 models: its metrics table grew to 20 million rows and
    # one read of the registry took about two hours, on our side and on the floor's alike.
    history_share: float = 0.1
    wide_versions: int = 100  # one extra model with this many versions (the "model page" figure)
    experiments: int = 10


@dataclass
class SeedResult:
    models: int = 0
    versions: int = 0
    runs: int = 0
    metric_rows: int = 0
    alias_models: list[str] = field(default_factory=list)
    model_names: list[str] = field(default_factory=list)
    seconds: float = 0.0
    reused_from: str = ""  # --mlflow-store: copied from this store, not seeded in this run

    def to_dict(self) -> dict:
        return {"models": self.models, "versions": self.versions, "runs": self.runs,
                "metric_rows": self.metric_rows, "alias_models": len(self.alias_models),
                "seconds": round(self.seconds, 3)}


def model_name(i: int) -> str:
    return f"{DOMAINS[i % len(DOMAINS)]}-model-{i:05d}"


def _stage(i: int, v: int, n: int) -> str:
    """Spread stages: a Production head for a third of the models, Staging below it for half,
    an archived tail for a quarter, None elsewhere."""
    if v == n and i % 3 == 0:
        return "Production"
    if v == n - 1 and i % 2 == 0:
        return "Staging"
    if v <= n // 3 and i % 4 == 0:
        return "Archived"
    return "None"


def create_schema(db_path: Path, artifact_root: str) -> str:
    """Let MLflow create (and migrate) both stores' schema on a fresh SQLite file."""
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

    uri = f"sqlite:///{db_path}"
    tracking = TrackingStore(uri, artifact_root)
    RegistryStore(uri)
    tracking.engine.dispose()
    return uri


def seed(db_path: Path, spec: SeedSpec, *, artifact_root: str) -> SeedResult:
    import sqlalchemy as sa
    from mlflow.store.model_registry.dbmodels import models as reg
    from mlflow.store.tracking.dbmodels import models as trk

    started = time.perf_counter()
    uri = create_schema(db_path, artifact_root)
    engine = sa.create_engine(uri)

    @sa.event.listens_for(engine, "connect")
    def _fast_pragmas(dbapi_conn, _record):  # a throw-away store: durability is not needed while seeding
        for pragma in ("synchronous=OFF", "journal_mode=MEMORY", "cache_size=-262144", "temp_store=MEMORY"):
            dbapi_conn.execute(f"PRAGMA {pragma}")

    result = SeedResult()
    now = int(time.time() * 1000)

    buffers: dict = {}

    def add(model, row: dict, conn) -> None:
        rows = buffers.setdefault(model, [])
        rows.append(row)
        if len(rows) >= CHUNK:
            for parent_first in order:
                flush(parent_first, conn)

    def flush(model, conn) -> None:
        # Driver-level executemany of tuples: SQLAlchemy's per-row dict processing would triple the
        # time for the two million metric rows of the small preset. Every row of one model carries the
        # same keys; columns left out (workspace) take MLflow's server defaults.
        rows = buffers.get(model)
        if rows:
            columns = list(rows[0])
            quoted = ", ".join(f'"{c}"' for c in columns)
            marks = ", ".join("?" * len(columns))
            sql = f'INSERT INTO "{model.__tablename__}" ({quoted}) VALUES ({marks})'  # noqa: S608 - our names
            conn.exec_driver_sql(sql, [tuple(r.values()) for r in rows])
            rows.clear()

    # Parents before children (runs before params/metrics, models before versions) so a flush
    # order that follows this list never violates a foreign key.
    order = [trk.SqlExperiment, trk.SqlRun, trk.SqlDataset, trk.SqlInput, trk.SqlInputTag, trk.SqlParam,
             trk.SqlTag, trk.SqlMetric, trk.SqlLatestMetric, reg.SqlRegisteredModel, reg.SqlRegisteredModelTag,
             reg.SqlModelVersion, reg.SqlModelVersionTag, reg.SqlRegisteredModelAlias]

    with engine.begin() as conn:
        experiment_ids = []
        for e in range(spec.experiments):
            res = conn.execute(sa.insert(trk.SqlExperiment.__table__).values(
                name=f"bench-experiment-{e}", artifact_location=f"{artifact_root}/{e + 1}",
                lifecycle_stage="active", creation_time=now, last_update_time=now))
            experiment_ids.append(res.inserted_primary_key[0])

        stride = max(1, round(1 / spec.history_share)) if spec.history_share > 0 else 0

        def run_for(i: int, v: int, conn, *, histories: bool) -> str:
            run_id = uuid.uuid4().hex
            exp = experiment_ids[i % len(experiment_ids)]
            t0 = now - (spec.versions_per_model - v + 1) * 3_600_000
            add(trk.SqlRun, {"run_uuid": run_id, "name": f"train-{i}-{v}", "source_type": "LOCAL",
                             "source_name": "train.py", "entry_point_name": "", "user_id": "bench",
                             "status": "FINISHED", "start_time": t0, "end_time": t0 + 60_000,
                             "source_version": hashlib.sha1(run_id.encode()).hexdigest(),  # noqa: S324
                             "lifecycle_stage": "active", "artifact_uri": f"{artifact_root}/{exp}/{run_id}/artifacts",
                             "experiment_id": exp}, conn)
            for k in range(N_PARAMS):
                add(trk.SqlParam, {"key": f"p{k:02d}", "value": str((i * 7 + v * 3 + k) % 97), "run_uuid": run_id},
                    conn)
            for key, value in (("mlflow.runName", f"train-{i}-{v}"), ("mlflow.user", "bench"),
                               ("mlflow.source.name", "train.py"), ("mlflow.source.type", "LOCAL"),
                               ("mlflow.source.git.commit", hashlib.sha1(run_id.encode()).hexdigest())):  # noqa: S324
                add(trk.SqlTag, {"key": key, "value": value, "run_uuid": run_id}, conn)
            for k, key in enumerate(FLAT_METRICS):
                value = ((i + v + k) % 100) / 100
                row = {"key": key, "value": value, "timestamp": t0, "step": 0, "is_nan": False, "run_uuid": run_id}
                add(trk.SqlMetric, row, conn)
                add(trk.SqlLatestMetric, dict(row), conn)
                result.metric_rows += 1
            for key in HISTORY_METRICS:
                value = 0.0
                steps = spec.history_steps if histories else 1
                for step in range(steps):
                    value = 1.0 / (step + 1 + v) + (0.05 if key == "val_loss" else 0.0)
                    add(trk.SqlMetric, {"key": key, "value": value, "timestamp": t0 + step, "step": step,
                                        "is_nan": False, "run_uuid": run_id}, conn)
                add(trk.SqlLatestMetric, {"key": key, "value": value, "timestamp": t0 + steps - 1,
                                          "step": steps - 1, "is_nan": False, "run_uuid": run_id}, conn)
                result.metric_rows += steps
            dataset_uuid = uuid.uuid4().hex
            digest = hashlib.md5(f"{i}-{v}".encode()).hexdigest()[:8]  # noqa: S324 - a dataset digest, not security
            add(trk.SqlDataset, {"dataset_uuid": dataset_uuid, "experiment_id": exp, "name": f"train-{i}",
                                 "digest": digest, "dataset_source_type": "local",
                                 "dataset_source": json.dumps({"uri": f"/data/{i}/train.csv"}),
                                 "dataset_schema": json.dumps({"mlflow_colspec": [{"name": "x", "type": "double"}]}),
                                 "dataset_profile": json.dumps({"num_rows": 1000 + i})}, conn)
            input_uuid = uuid.uuid4().hex
            add(trk.SqlInput, {"input_uuid": input_uuid, "source_type": "DATASET", "source_id": dataset_uuid,
                               "destination_type": "RUN", "destination_id": run_id, "step": 0}, conn)
            add(trk.SqlInputTag, {"input_uuid": input_uuid, "name": "mlflow.data.context", "value": "training"}, conn)
            result.runs += 1
            return run_id

        def add_model(i: int, name: str, n_versions: int, conn) -> None:
            created = now - 30 * 86_400_000 + i
            add(reg.SqlRegisteredModel, {"name": name, "creation_time": created, "last_updated_time": created,
                                         "description": f"Synthetic {DOMAINS[i % len(DOMAINS)]} model number {i}."},
                conn)
            add(reg.SqlRegisteredModelTag, {"name": name, "key": "team", "value": TEAMS[i % len(TEAMS)]}, conn)
            add(reg.SqlRegisteredModelTag, {"name": name, "key": "domain", "value": DOMAINS[i % len(DOMAINS)]}, conn)
            histories = name == WIDE_MODEL or (stride > 0 and i % stride == 0)
            for v in range(1, n_versions + 1):
                run_id = run_for(i, v, conn, histories=histories)
                add(reg.SqlModelVersion, {"name": name, "version": v, "creation_time": created + v,
                                          "last_updated_time": created + v, "description": f"v{v} of {name}",
                                          "user_id": "bench", "current_stage": _stage(i, v, n_versions),
                                          "source": f"runs:/{run_id}/model",
                                          "storage_location": f"{artifact_root}/models/{name}/{v}",
                                          "run_id": run_id, "run_link": "", "status": "READY"}, conn)
                tags = ("passed" if v % 5 else "failed", TEAMS[i % len(TEAMS)], "sklearn", f"2026-{v:02d}", "bench")
                for key, value in zip(VERSION_TAG_KEYS, tags, strict=True):
                    add(reg.SqlModelVersionTag, {"name": name, "version": v, "key": key, "value": value}, conn)
                result.versions += 1
            if i % 10 == 0 and n_versions >= 2:
                add(reg.SqlRegisteredModelAlias, {"name": name, "alias": "champion", "version": n_versions}, conn)
                add(reg.SqlRegisteredModelAlias, {"name": name, "alias": "challenger", "version": n_versions - 1},
                    conn)
                result.alias_models.append(name)
            result.models += 1
            result.model_names.append(name)

        for i in range(spec.models):
            add_model(i, model_name(i), spec.versions_per_model, conn)
        if spec.wide_versions:
            add_model(spec.models, WIDE_MODEL, spec.wide_versions, conn)
        for model in order:
            flush(model, conn)
    engine.dispose()
    result.seconds = time.perf_counter() - started
    return result


def spec_key(spec: SeedSpec) -> dict:
    from dataclasses import asdict

    return asdict(spec)


def describe(db_path: Path, spec: SeedSpec) -> SeedResult:
    """The SeedResult of a store seed() made earlier for the same spec (names are deterministic; the
    counts are read back from the store, so a store that was changed since shows it)."""
    import sqlite3

    result = SeedResult()
    result.model_names = [model_name(i) for i in range(spec.models)] + ([WIDE_MODEL] if spec.wide_versions else [])
    result.alias_models = [model_name(i) for i in range(0, spec.models, 10) if spec.versions_per_model >= 2]
    if spec.wide_versions >= 2 and spec.models % 10 == 0:  # seed() numbers the wide model spec.models
        result.alias_models.append(WIDE_MODEL)
    with sqlite3.connect(db_path) as conn:
        (result.models,) = conn.execute("SELECT COUNT(*) FROM registered_models").fetchone()
        (result.versions,) = conn.execute("SELECT COUNT(*) FROM model_versions").fetchone()
        (result.runs,) = conn.execute("SELECT COUNT(*) FROM runs").fetchone()
        (result.metric_rows,) = conn.execute("SELECT COUNT(*) FROM metrics").fetchone()
    if result.models != len(result.model_names):
        raise ValueError(f"the stored MLflow {db_path} has {result.models} models, this spec {len(result.model_names)}")
    return result

