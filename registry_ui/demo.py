"""The demo registry: real scikit-learn models trained on generated data, logged to MLflow.

Three registered models, several versions each, trained with different hyperparameters. Each run
logs every param, metrics on train/val/test, a metric history per boosting step, the training and
evaluation datasets (with MLflow's digest) and source / git-commit tags. Versions end up in
different stages and under @champion / @challenger.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split

from registry_ui.mirror import client as gw

SEEDED_TAG = "demo.seeded"
# The registered model tag naming the demo's evaluation dataset (a file artifact of a run, also logged
# with mlflow.data); the governance demo puts it into churn-classifier's validation policy.
VALIDATION_DATASET_TAG = "demo.validation_dataset"


@dataclass
class DemoVersion:
    params: dict
    stage: str = "None"
    aliases: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    description: str = ""
    # Share of the negative training labels turned positive: a model whose predictions drift (the demo's
    # version that fails validation on its prediction distribution).
    label_shift: float = 0.0


@dataclass
class DemoModel:
    name: str
    description: str
    tags: dict[str, str]
    task: str  # "classification" | "regression"
    make_data: Callable[[], tuple[pd.DataFrame, str]]
    versions: list[DemoVersion]


def _churn_data() -> tuple[pd.DataFrame, str]:
    x, y = make_classification(n_samples=2400, n_features=8, n_informative=5, random_state=7)
    cols = ["tenure", "monthly_spend", "support_calls", "logins", "plan_age", "discount", "region", "devices"]
    df = pd.DataFrame(x, columns=cols)
    df["churned"] = y
    return df, "churned"


def _fraud_data() -> tuple[pd.DataFrame, str]:
    x, y = make_classification(
        n_samples=3000, n_features=10, n_informative=6, weights=[0.93], flip_y=0.01, random_state=11
    )
    df = pd.DataFrame(x, columns=[f"f{i}" for i in range(10)])
    df["is_fraud"] = y
    return df, "is_fraud"


def _demand_data() -> tuple[pd.DataFrame, str]:
    x, y = make_regression(n_samples=2000, n_features=6, n_informative=4, noise=12.0, random_state=5)
    df = pd.DataFrame(x, columns=["price", "promo", "weekday", "season", "stock", "competitor_price"])
    df["units"] = y
    return df, "units"


DEMO_MODELS = [
    DemoModel(
        name="churn-classifier",
        description="Predicts which **subscribers** will cancel within 30 days.\n\n"
        "- owner: growth analytics\n- retrained monthly",
        tags={"team": "growth", "task": "classification"},
        task="classification",
        make_data=_churn_data,
        versions=[
            DemoVersion({"n_estimators": 20, "learning_rate": 0.3, "max_depth": 2}, stage="Archived"),
            DemoVersion({"n_estimators": 60, "learning_rate": 0.1, "max_depth": 3}, stage="Production",
                        aliases=["champion"], tags={"validation_status": "passed"}),
            DemoVersion({"n_estimators": 120, "learning_rate": 0.05, "max_depth": 3}, stage="Staging",
                        aliases=["challenger"], tags={"validation_status": "passed"}),
            DemoVersion({"n_estimators": 80, "learning_rate": 0.1, "max_depth": 5},
                        tags={"validation_status": "pending"}, label_shift=0.35),
        ],
    ),
    DemoModel(
        name="fraud-detector",
        description="Flags card transactions for manual review. Imbalanced classes (about 7% fraud).",
        tags={"team": "risk", "task": "classification", "pii": "true"},
        task="classification",
        make_data=_fraud_data,
        versions=[
            DemoVersion({"n_estimators": 50, "learning_rate": 0.1, "max_depth": 3}, stage="Production",
                        aliases=["champion"], tags={"validation_status": "passed"}),
            DemoVersion({"n_estimators": 100, "learning_rate": 0.1, "max_depth": 4}, stage="Staging",
                        aliases=["challenger"], tags={"validation_status": "passed"}),
            DemoVersion({"n_estimators": 150, "learning_rate": 0.05, "max_depth": 4}),
        ],
    ),
    DemoModel(
        name="demand-forecaster",
        description="Daily unit demand per store and product.",
        tags={"team": "supply", "task": "regression"},
        task="regression",
        make_data=_demand_data,
        versions=[
            DemoVersion({"n_estimators": 40, "learning_rate": 0.2, "max_depth": 2}, stage="Archived"),
            DemoVersion({"n_estimators": 100, "learning_rate": 0.1, "max_depth": 3}, stage="Production",
                        aliases=["champion"], tags={"validation_status": "passed"}),
            # Validated by its pipeline: the demo moves it to @champion with one approval (a Tier 3 model).
            DemoVersion({"n_estimators": 200, "learning_rate": 0.05, "max_depth": 3},
                        aliases=["challenger"], tags={"validation_status": "passed"}),
        ],
    ),
]


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=settings.BASE_DIR)
        if out.returncode == 0 and len(out.stdout.strip()) == 40:
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return hashlib.sha1(b"model-governance-console demo", usedforsecurity=False).hexdigest()


def _dataset_file(name: str, df: pd.DataFrame) -> str:
    """Write the generated data where a reviewer can find it; the runs name this file as their source."""
    folder = settings.VAR_DIR / "datasets"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.csv"
    if not path.exists():
        df.to_csv(path, index=False)
    return str(path)


def _classification_metrics(model, x, y) -> dict[str, float]:
    pred = model.predict(x)
    proba = model.predict_proba(x)[:, 1]
    return {
        "accuracy": accuracy_score(y, pred),
        "f1": f1_score(y, pred, zero_division=0),
        "precision": precision_score(y, pred, zero_division=0),
        "recall": recall_score(y, pred, zero_division=0),
        "roc_auc": roc_auc_score(y, proba),
    }


def _regression_metrics(model, x, y) -> dict[str, float]:
    pred = model.predict(x)
    return {
        "rmse": float(np.sqrt(mean_squared_error(y, pred))),
        "mae": mean_absolute_error(y, pred),
        "r2": r2_score(y, pred),
    }


def train(spec: DemoModel, version: DemoVersion, *, commit: str) -> gw.TrainingRecord:
    df, target = spec.make_data()
    train_df, rest = train_test_split(df, test_size=0.4, random_state=1)
    val_df, test_df = train_test_split(rest, test_size=0.5, random_state=2)
    features = [c for c in df.columns if c != target]
    cls = GradientBoostingClassifier if spec.task == "classification" else GradientBoostingRegressor
    model = cls(random_state=0, **version.params)
    labels = train_df[target]
    if version.label_shift:
        flip = (labels == 0) & (np.random.default_rng(3).random(len(labels)) < version.label_shift)
        labels = labels.where(~flip, 1)
    model.fit(train_df[features], labels)
    score = _classification_metrics if spec.task == "classification" else _regression_metrics
    metrics: dict[str, float] = {}
    for split, part in (("train", train_df), ("val", val_df), ("test", test_df)):
        for key, value in score(model, part[features], part[target]).items():
            metrics[f"{split}_{key}"] = float(value)
    # One point per boosting stage: training loss and the validation score as the ensemble grows.
    history = {"train_loss": [float(v) for v in model.train_score_]}
    if spec.task == "classification":
        history["val_accuracy"] = [
            float(accuracy_score(val_df[target], p)) for p in model.staged_predict(val_df[features])
        ]
    else:
        history["val_rmse"] = [
            float(np.sqrt(mean_squared_error(val_df[target], p))) for p in model.staged_predict(val_df[features])
        ]
    return gw.TrainingRecord(
        experiment=f"{spec.name}-training",
        run_name=f"{spec.name}-" + "-".join(f"{k}{v}" for k, v in version.params.items()),
        sk_model=model,
        params={**version.params, "model_class": cls.__name__, "n_features": len(features),
                "train_rows": len(train_df)},
        metrics=metrics,
        history=history,
        train_df=train_df,
        eval_df=val_df,
        target=target,
        dataset_name=spec.name.split("-")[0],
        dataset_source=_dataset_file(spec.name, df),
        tags={
            "mlflow.source.name": "registry_ui/demo.py",
            "mlflow.source.type": "LOCAL",
            "mlflow.source.git.commit": commit,
            "team": spec.tags.get("team", ""),
        },
        input_example=train_df[features].head(3),
    )


def seed_demo_registry(*, log: Callable[[str], None] = print, uri: str | None = None) -> int:
    """Create the demo models in MLflow unless they are there. Returns the number of versions created."""
    artifact_root = settings.MLFLOW_ARTIFACT_ROOT
    if artifact_root.startswith("file://"):
        Path(artifact_root.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    commit = _git_commit()
    created = 0
    for spec in DEMO_MODELS:
        tags = gw.registered_model_tags(spec.name, uri=uri)
        if tags is not None and tags.get(SEEDED_TAG) == "true":
            log(f"  {spec.name}: already in MLflow, left as it is")
            continue
        if tags is not None:  # a demo run cut off half-way: start this model again
            gw.delete_registered_model(spec.name, uri=uri)
        gw.create_registered_model(spec.name, description=spec.description, tags=spec.tags, uri=uri)
        for demo_version in spec.versions:
            record = train(spec, demo_version, commit=commit)
            _, number = gw.log_training_run(record, registered_model=spec.name, artifact_root=artifact_root,
                                            uri=uri)
            for key, value in demo_version.tags.items():
                gw.set_version_tag(spec.name, number, key, value, uri=uri)
            if demo_version.stage != "None":
                gw.set_version_stage(spec.name, number, demo_version.stage, uri=uri)
            for alias in demo_version.aliases:
                gw.set_alias(spec.name, alias, number, uri=uri)
            created += 1
            log(f"  {spec.name} v{number}: trained {record.params}, stage {demo_version.stage}"
                + (f", @{', @'.join(demo_version.aliases)}" if demo_version.aliases else ""))
        if spec.name == "churn-classifier":
            df, target = spec.make_data()
            _, rest = train_test_split(df, test_size=0.4, random_state=1)
            _, holdout = train_test_split(rest, test_size=0.5, random_state=2)
            dataset = gw.log_evaluation_dataset(holdout, experiment=f"{spec.name}-evaluation",
                                                name="churn-holdout", target=target, artifact_root=artifact_root,
                                                uri=uri)
            gw.set_registered_model_tag(spec.name, VALIDATION_DATASET_TAG, dataset, uri=uri)
            log(f"  {spec.name}: evaluation dataset {dataset}")
        gw.set_registered_model_tag(spec.name, SEEDED_TAG, "true", uri=uri)
    return created
