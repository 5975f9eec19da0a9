"""Models and data of the validation tests, logged once per module to the real MLflow server.

The PythonModel classes live in an importable module: MLflow pickles them by reference, and the
validation child (started in the project root) imports them from here when it loads the model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

FEATURES = ["tenure", "charges", "calls", "noise"]


class SlowModel(mlflow.pyfunc.PythonModel):
    """Right answers, slowly: every call sleeps."""

    def __init__(self, seconds: float = 0.2):
        self.seconds = seconds

    def predict(self, context, model_input, params=None):
        time.sleep(self.seconds)
        return np.zeros(len(model_input), dtype=int)


class HangingModel(mlflow.pyfunc.PythonModel):
    """Never answers."""

    def predict(self, context, model_input, params=None):
        time.sleep(3600)
        return np.zeros(len(model_input), dtype=int)


class GreedyModel(mlflow.pyfunc.PythonModel):
    """Allocates without end: 256 MiB blocks of address space, never written, so no page is touched and
    the machine's memory is never at risk. It does so only under an address-space limit (the validation
    child sets one; MLflow also predicts on the input example while logging, in the test process), and
    gives up at 64 GiB, so a missing limit shows as a passing model rather than as a long loop."""

    def predict(self, context, model_input, params=None):
        import resource

        if resource.getrlimit(resource.RLIMIT_AS)[0] == resource.RLIM_INFINITY:
            return np.zeros(len(model_input), dtype=int)
        held = [np.empty(256 * 2**20, dtype=np.uint8) for _ in range(256)]
        return np.zeros(len(model_input) + 0 * len(held), dtype=int)


def churn_data(n: int, seed: int) -> pd.DataFrame:
    """A churn-like table (about 15% positive): two informative features, one weak, one noise."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES)
    logit = 1.6 * X.tenure + 1.0 * X.charges + 0.3 * X.calls - 2.3
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X.assign(label=y)


def pinned_requirements() -> list[str]:
    import sklearn

    return [f"scikit-learn=={sklearn.__version__}", f"pandas=={pd.__version__}", f"numpy=={np.__version__}",
            f"mlflow=={mlflow.__version__}"]


@dataclass
class Logged:
    name: str
    dataset_uri: str
    versions: dict  # role -> version number


def log_validation_models(tracking_uri: str, name: str, roles: tuple[str, ...]) -> Logged:
    """Register `name` with one version per role (in that order) and log an evaluation dataset as a
    run artifact. Roles: incumbent, good, worse, shifted, unpinned, slow, hanging, greedy."""
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    train, holdout = churn_data(600, 1), churn_data(300, 2)
    X, y = train[FEATURES], train.label
    experiment = mlflow.set_experiment(f"validation-{name}")
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(experiment_id=experiment.experiment_id) as run:
        path = Path(tmp) / "holdout.csv"
        holdout.to_csv(path, index=False)
        mlflow.log_artifact(str(path), "eval")
        mlflow.log_input(mlflow.data.from_pandas(holdout, name="churn-holdout", targets="label"),
                         context="evaluation")
    dataset_uri = f"runs:/{run.info.run_id}/eval/holdout.csv"
    signature = ModelSignature(inputs=Schema([ColSpec("double", c) for c in FEATURES]))
    example = X.head(3)
    versions = {}
    for role in roles:
        with mlflow.start_run(experiment_id=experiment.experiment_id):
            kwargs = {"name": "model", "registered_model_name": name, "pip_requirements": pinned_requirements()}
            if role in ("incumbent", "good", "worse", "shifted", "unpinned"):
                if role == "worse":
                    model = LogisticRegression().fit(X.assign(tenure=0.0), y)  # blind to the strongest feature
                else:
                    model = LogisticRegression(C=1.0 if role != "good" else 0.5).fit(X, y)
                if role == "shifted":
                    model.intercept_ = model.intercept_ + 3.0  # same ranking, far more churners predicted
                if role in ("unpinned", "shifted"):
                    kwargs["pip_requirements"] = ["scikit-learn", "pandas>=2.0", f"numpy=={np.__version__}"]
                info = mlflow.sklearn.log_model(model, input_example=example, **kwargs)
            elif role == "slow":
                info = mlflow.pyfunc.log_model(python_model=SlowModel(), input_example=example, **kwargs)
            elif role == "hanging":
                info = mlflow.pyfunc.log_model(python_model=HangingModel(), signature=signature, **kwargs)
            elif role == "greedy":
                info = mlflow.pyfunc.log_model(python_model=GreedyModel(), signature=signature,
                                               input_example=example, **kwargs)
            else:
                raise ValueError(role)
        versions[role] = int(info.registered_model_version)
    return Logged(name=name, dataset_uri=dataset_uri, versions=versions)
