"""The one module that imports mlflow.

Everything else in the project talks to MLflow through these functions and receives plain
dataclasses or builtins, never MLflow entities. An unreachable or failing MLflow surfaces as
`MlflowUnavailable`.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings


class MlflowUnavailable(Exception):
    """MLflow could not be reached or answered with an error we cannot act on."""


@dataclass(frozen=True)
class Budget:
    timeout: float
    retries: int


def web_budget() -> Budget:
    return Budget(settings.MLFLOW_WEB_TIMEOUT, settings.MLFLOW_WEB_RETRIES)


def sync_budget() -> Budget:
    return Budget(settings.MLFLOW_SYNC_TIMEOUT, settings.MLFLOW_SYNC_RETRIES)


@contextlib.contextmanager
def _budget(budget: Budget) -> Iterator[None]:
    # MLflow's REST client reads these per request; its defaults (120 s, 7 retries with backoff)
    # would block a caller for minutes against a dead server.
    saved = {k: os.environ.get(k) for k in ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES")}
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(int(max(1, budget.timeout)))
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(budget.retries)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def tracking_uri() -> str:
    return settings.MLFLOW_TRACKING_URI


def _client(uri: str | None = None):
    from mlflow.tracking import MlflowClient

    uri = uri or tracking_uri()
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


# --------------------------------------------------------------------------------------------------
# Reading the registry (sync issue): paged scans, targeted reads, batched run fetches.
# --------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------
# Webhooks (sync issue): registering the console's receiver in MLflow.
# --------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------
# Metric histories (pages issue): fetched when a chart first needs them.
# --------------------------------------------------------------------------------------------------


def metric_histories(run_id: str, keys: list[str], *, uri: str | None = None,
                     budget: Budget | None = None) -> dict[str, list[list]]:
    """Every logged value of `keys` for one run: {key: [[step, value, timestamp_ms], ...]} by step.

    Non-finite values become None (JSON has no NaN). A run MLflow no longer has gives empty lists.
    Raises MlflowUnavailable when MLflow cannot answer within the budget (web budget by default).
    """
    from mlflow.exceptions import MlflowException

    out: dict[str, list[list]] = {}
    with _budget(budget or web_budget()):
        client = _client(uri)
        for key in keys:
            try:
                points = client.get_metric_history(run_id, key)
            except MlflowException as exc:
                if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                    out[key] = []
                    continue
                raise MlflowUnavailable(str(exc)) from exc
            except Exception as exc:  # connection refused, timeouts: the server is not answering
                raise MlflowUnavailable(f"{type(exc).__name__}: {exc}") from exc
            rows = sorted(
                ([int(m.step), float(m.value) if math.isfinite(m.value) else None, int(m.timestamp)] for m in points),
                key=lambda r: (r[0], r[2]),
            )
            out[key] = rows
    return out


# --------------------------------------------------------------------------------------------------
# Deploy (workflow issue): the only writes governance makes to MLflow, and their confirmation reads.
# --------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------
# Writing runs and versions: used by the demo (and nothing on a request path).
# --------------------------------------------------------------------------------------------------


def registered_model_tags(name: str, *, uri: str | None = None) -> dict[str, str] | None:
    """The model's tags, or None when MLflow has no such registered model."""
    from mlflow.exceptions import MlflowException

    try:
        return dict(_client(uri).get_registered_model(name).tags)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise MlflowUnavailable(str(exc)) from exc


def delete_registered_model(name: str, *, uri: str | None = None) -> None:
    _client(uri).delete_registered_model(name)


def set_registered_model_tag(name: str, key: str, value: str, *, uri: str | None = None) -> None:
    _client(uri).set_registered_model_tag(name, key, value)


def create_registered_model(name: str, *, description: str = "", tags: dict[str, str] | None = None,
                            uri: str | None = None) -> None:
    _client(uri).create_registered_model(name, tags=tags or {}, description=description)


@dataclass(frozen=True)
class TrainingRecord:
    """What a training script produced, to be logged as one MLflow run and registered as a version."""

    experiment: str
    run_name: str
    sk_model: Any
    params: dict[str, Any]
    metrics: dict[str, float]
    history: dict[str, list[float]]
    train_df: Any  # pandas DataFrame, logged as the training dataset input
    eval_df: Any  # pandas DataFrame, logged as the evaluation dataset input
    target: str
    dataset_name: str
    dataset_source: str
    tags: dict[str, str]
    input_example: Any


def log_training_run(record: TrainingRecord, *, registered_model: str, artifact_root: str,
                     uri: str | None = None) -> tuple[str, int]:
    """Log a trained scikit-learn model as a run with params, metrics, history, datasets and tags,
    and register it. Returns (run_id, version)."""
    import mlflow
    import mlflow.data
    import mlflow.sklearn

    warnings.filterwarnings("ignore", module=r"mlflow\..*")  # stage deprecation, source-resolver chatter
    uri = uri or tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = _client(uri)
    experiment = client.get_experiment_by_name(record.experiment)
    experiment_id = (
        experiment.experiment_id
        if experiment
        else client.create_experiment(record.experiment, artifact_location=f"{artifact_root}/{record.experiment}")
    )
    with mlflow.start_run(experiment_id=experiment_id, run_name=record.run_name, tags=record.tags) as run:
        mlflow.log_params(record.params)
        mlflow.log_metrics(record.metrics)
        for key, values in record.history.items():
            for step, value in enumerate(values):
                mlflow.log_metric(key, value, step=step)
        train = mlflow.data.from_pandas(record.train_df, source=record.dataset_source, targets=record.target,
                                        name=f"{record.dataset_name}-train")
        evaluation = mlflow.data.from_pandas(record.eval_df, source=record.dataset_source, targets=record.target,
                                             name=f"{record.dataset_name}-eval")
        mlflow.log_input(train, context="training")
        mlflow.log_input(evaluation, context="evaluation")
        info = mlflow.sklearn.log_model(
            sk_model=record.sk_model,
            name="model",
            input_example=record.input_example,
            # Naming the requirements skips MLflow's slow requirement inference.
            pip_requirements=["scikit-learn", "pandas"],
            registered_model_name=registered_model,
            # We trained this model ourselves in this process; skops asks us to vouch for tree nodes.
            skops_trusted_types=["sklearn.tree._tree.Tree"],
        )
        version = int(info.registered_model_version)
    return run.info.run_id, version


def set_version_stage(name: str, version: int, stage: str, *, archive_existing: bool = False,
                      uri: str | None = None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # stages are deprecated, still governed
        _client(uri).transition_model_version_stage(name, str(version), stage,
                                                    archive_existing_versions=archive_existing)


def set_alias(name: str, alias: str, version: int, *, uri: str | None = None) -> None:
    _client(uri).set_registered_model_alias(name, alias, str(version))


def set_version_tag(name: str, version: int, key: str, value: str, *, uri: str | None = None) -> None:
    _client(uri).set_model_version_tag(name, str(version), key, value)


def set_version_description(name: str, version: int, description: str, *, uri: str | None = None) -> None:
    _client(uri).update_model_version(name, str(version), description=description)
