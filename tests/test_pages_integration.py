"""End to end: models created in the REAL mlflow server, mirrored by the sync engine, shown by the
pages (catalogue, model, version, lineage, comparison with history fetched from MLflow)."""

import json

import pytest
from django.urls import reverse

from tests.conftest import make_user

pytestmark = pytest.mark.mlflow


@pytest.mark.django_db
def test_models_from_real_mlflow_show_on_the_pages(client, mlflow_factory, use_mlflow_server):
    from registry_ui.mirror.sync import sync_registry

    name = mlflow_factory.unique("pages-e2e ünï")
    mlflow_factory.model(name, description="Real **MLflow** model", tags={"team": "risk"})
    dataset = {"name": "e2e-train", "digest": "e2e0d1g3", "context": "training"}
    for i in range(2):
        mlflow_factory.version(name, params={"lr": str(0.1 * (i + 1)), "depth": "4"},
                               metrics={"val_accuracy": 0.8 + i / 10, "val_loss": 0.5 - i / 10},
                               history={"train_loss": [1.0, 0.6, 0.3 - i / 10]}, dataset=dataset)
    mlflow_factory.stage(name, 2, "Production")
    mlflow_factory.alias(name, "champion", 2)

    sync_registry(uri=use_mlflow_server.url)

    client.force_login(make_user("reader", "auditor"))
    catalogue = client.get(reverse("registry:catalogue"), {"q": name}).content.decode()
    assert reverse("registry:model_detail", args=[name]) in catalogue
    model_page = client.get(reverse("registry:model_detail", args=[name])).content.decode()
    assert "Real <strong>MLflow</strong> model" in model_page
    assert "<dt>@champion</dt>" in model_page and "Production" in model_page
    version_page = client.get(reverse("registry:version_detail", args=[name, 2])).content.decode()
    splits = version_page.split('class="metrics-splits"')[1].split("</table>")[0]
    assert ">val<" in splits and ">accuracy<" in splits and ">0.9<" in splits
    assert "e2e0d1g3" in version_page and ">lr</th>" in version_page
    lineage = client.get(reverse("registry:lineage", args=[name, 2])).content.decode()
    assert "Dataset e2e-train" in lineage
    assert reverse("registry:lineage", args=[name, 1]) in lineage  # v1 was trained on the same data
    compare = client.get(reverse("registry:compare"), {"v": [f"{name}:1", f"{name}:2"]}).content.decode()
    figures = json.loads(compare.split('type="application/json">')[1].split("</script>")[0])
    curves = [f for k, f in figures.items() if k.startswith("history-")]
    assert any(f["layout"]["title"]["text"] == "train_loss" for f in curves)
