"""Fixtures of the pages tests (registered in tests/conftest.py): a factory of mirror rows."""

from __future__ import annotations

import itertools
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

_seq = itertools.count(1)


class MirrorFactory:
    """Creates mirror rows (what the sync would write) directly, for page tests."""

    def __init__(self):
        self.now = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

    def model(self, name: str | None = None, *, description: str = "", tags: dict | None = None):
        from registry_ui.mirror.models import RegisteredModel

        return RegisteredModel.objects.create(
            name=name or f"model-{next(_seq)}", description=description, tags=tags or {},
            created_at=self.now, updated_at=self.now, synced_at=self.now,
        )

    def run(self, *, run_id: str | None = None, params: dict | None = None, metrics: dict | None = None,
            history: dict | None = None, datasets: list[dict] | None = None, store_history: bool = True,
            experiment: str = "exp", **fields):
        """A run snapshot. `history` {key: [values...]} is stored as MetricHistory; with
        `store_history` every other metric gets a one-point history, so pages never ask MLflow."""
        from registry_ui.mirror.models import DatasetInput, MetricHistory, RunSnapshot

        defaults = {
            "experiment_id": "1", "experiment_name": experiment, "run_name": f"run-{next(_seq)}", "user": "alice",
            "status": "FINISHED", "lifecycle_stage": "active", "source_name": "train.py", "entry_point": "train.py",
            "git_commit": "0123456789abcdef0123456789abcdef01234567",
        }
        defaults.update(fields)
        run = RunSnapshot.objects.create(
            run_id=run_id or uuid.uuid4().hex, params=params or {}, metrics=metrics or {}, fetched_at=self.now,
            start_time=self.now, end_time=self.now, **defaults,
        )
        for d in datasets or []:
            DatasetInput.objects.create(run=run, name=d.get("name", "data"), digest=d.get("digest", "d1g3st"),
                                        source_type=d.get("source_type", "local"),
                                        source=d.get("source", '{"uri": "/data/train.csv"}'),
                                        context=d.get("context", "training"))
        rows = []
        ts = int(time.time() * 1000)
        for key, values in (history or {}).items():
            rows.append(MetricHistory(run=run, key=key, points=[[i, v, ts + i] for i, v in enumerate(values)]))
        if store_history:
            for key, value in (metrics or {}).items():
                if key not in (history or {}):
                    rows.append(MetricHistory(run=run, key=key, points=[[0, value, ts]]))
        MetricHistory.objects.bulk_create(rows)
        return run

    def version(self, model, version: int | None = None, *, stage: str = "None", run=None, with_run: bool = True,
                description: str = "", tags: dict | None = None, status: str = "READY", **run_kwargs):
        from registry_ui.mirror.models import ModelVersion

        if version is None:
            version = (model.versions.order_by("-version").values_list("version", flat=True).first() or 0) + 1
        if run is None and with_run:
            run = self.run(**run_kwargs)
        return ModelVersion.objects.create(
            model=model, version=version, stage=stage, status=status, run_id=run.run_id if run else "",
            source=f"runs:/{run.run_id}/model" if run else f"s3://models/{model.name}/{version}",
            description=description, tags=tags or {}, user_id="alice",
            created_at=self.now + timedelta(minutes=version), updated_at=self.now, synced_at=self.now,
        )

    def alias(self, model, alias: str, version: int):
        from registry_ui.mirror.models import ModelAlias

        return ModelAlias.objects.create(model=model, alias=alias, version=version)

    def synced(self, *, ok_at: datetime | None = None, error_at: datetime | None = None, error: str = ""):
        from registry_ui.mirror.models import SyncState

        state = SyncState.get()
        state.last_success_at = ok_at
        state.last_error_at = error_at
        state.last_error = error
        state.save()
        return state

    def bulk_models(self, n: int, *, prefix: str = "bulk", versions: int = 2) -> None:
        """n models with `versions` versions each (no runs), inserted in bulk for size tests."""
        from registry_ui.mirror.models import ModelAlias, ModelVersion, RegisteredModel

        models = RegisteredModel.objects.bulk_create(
            [RegisteredModel(name=f"{prefix}-{i:05d}", description=f"bulk model {i}", tags={"team": "bulk"},
                             synced_at=self.now) for i in range(n)],
            batch_size=2000,
        )
        if not models[0].pk:  # backends that do not return ids from bulk_create
            models = list(RegisteredModel.objects.filter(name__startswith=f"{prefix}-"))
        ModelVersion.objects.bulk_create(
            [ModelVersion(model=m, version=v, stage="Production" if v == versions else "None", status="READY")
             for m in models for v in range(1, versions + 1)],
            batch_size=5000,
        )
        ModelAlias.objects.bulk_create([ModelAlias(model=m, alias="champion", version=versions) for m in models],
                                       batch_size=5000)


@pytest.fixture
def mirror(db) -> MirrorFactory:
    return MirrorFactory()


@pytest.fixture
def mlflow_down(settings):
    """Point the app at an MLflow that refuses connections (nothing listens on port 9)."""
    settings.MLFLOW_TRACKING_URI = "http://127.0.0.1:9"
    settings.MLFLOW_WEB_RETRIES = 0
    return settings.MLFLOW_TRACKING_URI
