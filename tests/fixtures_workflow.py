"""Fixtures of the workflow tests (registered in tests/conftest.py).

The mirror is filled by copying what the real MLflow server reports (a tiny stand-in for the sync
engine, which has tests of its own), so the workflow is tested against MLflow's real answers.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

_RUNS: dict = {}


def mirror_model(client, name: str):
    """Copy one registered model (versions, aliases, runs, dataset inputs) from MLflow to the mirror."""
    from registry_ui.mirror.models import DatasetInput, ModelAlias, ModelVersion, RegisteredModel, RunSnapshot

    rm = client.get_registered_model(name)
    model, _ = RegisteredModel.objects.update_or_create(
        name=name, defaults={"description": rm.description or "", "tags": dict(rm.tags or {})})
    for mv in client.search_model_versions(f"name='{name}'"):
        ModelVersion.objects.update_or_create(
            model=model, version=int(mv.version),
            defaults={"stage": mv.current_stage or "None", "status": str(mv.status), "source": mv.source or "",
                      "run_id": mv.run_id or "", "tags": dict(mv.tags or {}), "description": mv.description or ""})
        if mv.run_id and not RunSnapshot.objects.filter(run_id=mv.run_id).exists():
            if mv.run_id not in _RUNS:  # runs are immutable in these tests: read each once
                run = client.get_run(mv.run_id)
                _RUNS[mv.run_id] = (dict(run.data.params), dict(run.data.metrics), dict(run.data.tags), [
                    (ds.dataset.name, ds.dataset.digest, ds.dataset.source,
                     {t.key: t.value for t in ds.tags}.get("mlflow.data.context", ""))
                    for ds in (run.inputs.dataset_inputs if run.inputs else [])])
            params, metrics, tags, datasets = _RUNS[mv.run_id]
            snap = RunSnapshot.objects.create(run_id=mv.run_id, params=params, metrics=metrics, tags=tags)
            for name_, digest, source, context in datasets:
                DatasetInput.objects.create(run=snap, name=name_, digest=digest, source=source, context=context)
    ModelAlias.objects.filter(model=model).exclude(alias__in=list(rm.aliases)).delete()
    for alias, version in (rm.aliases or {}).items():
        ModelAlias.objects.update_or_create(model=model, alias=alias, defaults={"version": int(version)})
    return model


@dataclass
class Promo:
    """A model in the real MLflow: v1 in Production and @champion, v2 a better validated candidate,
    v3 not validated; all mirrored."""

    name: str
    model: object
    factory: object

    def mirror(self):
        self.model = mirror_model(self.factory.client, self.name)
        return self.model


@pytest.fixture
def role_perms(db):
    """Transactional tests flush the group permissions the data migration made: put them back."""
    from governance.access import ensure_role_groups, ensure_role_permissions

    ensure_role_groups()
    ensure_role_permissions()


_PROMO_RUNS: dict = {}


def promo_runs(factory) -> list[str]:
    """Three finished runs, made once per MLflow server and shared by every promo model."""
    if factory.uri not in _PROMO_RUNS:
        dataset = {"name": "train", "digest": "abc123", "context": "training"}
        experiment = factory.experiment()
        _PROMO_RUNS[factory.uri] = [
            factory.run(experiment_id=experiment, metrics={"accuracy": 0.80}, params={"depth": 3}, dataset=dataset),
            factory.run(experiment_id=experiment, metrics={"accuracy": 0.90}, params={"depth": 5}, dataset=dataset),
            factory.run(experiment_id=experiment, metrics={"accuracy": 0.70}, params={"depth": 1}),
        ]
    return _PROMO_RUNS[factory.uri]


def build_promo(factory, name: str | None = None) -> Promo:
    name = factory.model(name or factory.unique("promo"))
    r1, r2, r3 = promo_runs(factory)
    v1 = factory.version(name, run_id=r1, tags={"validation_status": "passed"})
    factory.version(name, run_id=r2, tags={"validation_status": "passed"})
    factory.version(name, run_id=r3, tags={"validation_status": "pending"})
    factory.stage(name, v1, "Production")
    factory.alias(name, "champion", v1)
    promo = Promo(name=name, model=None, factory=factory)
    # build_promo may run outside a test's database access (module fixtures): mirror later then.
    return promo


@pytest.fixture
def promo(role_perms, mlflow_factory, use_mlflow_server) -> Promo:
    promo = build_promo(mlflow_factory)
    promo.mirror()
    return promo


@pytest.fixture(scope="module")
def shared_promo_name(mlflow_server) -> str:
    """One promo model in MLflow for a whole module (tests that write to MLflow use their own alias)."""
    from tests.conftest import MlflowFactory

    factory = MlflowFactory(mlflow_server.url)
    return build_promo(factory).name


@pytest.fixture
def shared_promo(shared_promo_name, role_perms, mlflow_factory, use_mlflow_server) -> Promo:
    promo = Promo(name=shared_promo_name, model=None, factory=mlflow_factory)
    promo.mirror()
    return promo
