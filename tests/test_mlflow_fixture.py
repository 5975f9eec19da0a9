"""The real MLflow server fixture and the factory the other tests build on."""

import pytest


@pytest.mark.mlflow
def test_factory_creates_models_versions_and_runs_in_a_real_server(mlflow_server, mlflow_factory):
    assert mlflow_server.is_healthy()
    name = mlflow_factory.model(description="hello", tags={"team": "risk"})
    v1 = mlflow_factory.version(name, params={"lr": 0.1}, metrics={"val_auc": 0.9},
                                dataset={"name": "train", "digest": "abc123"})
    v2 = mlflow_factory.version(name, with_run=False)
    mlflow_factory.stage(name, v1, "Production")
    mlflow_factory.alias(name, "champion", v1)

    client = mlflow_factory.client
    model = client.get_registered_model(name)
    assert model.aliases == {"champion": "1"}
    assert model.tags == {"team": "risk"}
    assert (v1, v2) == (1, 2)
    mv = client.get_model_version(name, "1")
    assert mv.current_stage == "Production"
    run = client.get_run(mv.run_id)
    assert run.data.params == {"lr": "0.1"}
    assert run.data.metrics["val_auc"] == 0.9
    assert [d.dataset.digest for d in run.inputs.dataset_inputs] == ["abc123"]
