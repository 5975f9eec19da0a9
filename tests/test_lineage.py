"""Lineage graph: version -> run -> experiment, datasets, code, parent run, logged model, versions
sharing the training data; gaps explicit; every node a link; scope respected."""

import pytest
from django.urls import reverse

from registry_ui.mirror.models import RegisteredModel
from registry_ui.pages.lineage import layout_svg, version_lineage
from tests.conftest import make_user

TRAIN = {"name": "tx-train", "digest": "d1g3st-train", "context": "training"}
EVAL = {"name": "tx-eval", "digest": "d1g3st-eval", "context": "evaluation"}


def graph(mv):
    return version_lineage(mv, RegisteredModel.objects.all())


@pytest.mark.django_db
def test_complete_lineage_has_every_node_and_no_gap(mirror, settings):
    settings.REGISTRY_MLFLOW_UI_URL = "http://mlflow.example"
    parent = mirror.run(run_name="sweep")
    m = mirror.model("fraud")
    mv = mirror.version(m, datasets=[TRAIN, EVAL], parent_run_id=parent.run_id, logged_model_id="m-abc123",
                        experiment="fraud-exp", experiment_id="7")
    other = mirror.model("fraud-lite")
    sibling = mirror.version(other, datasets=[{**TRAIN, "name": "same data"}])
    mirror.version(other, datasets=[EVAL])  # shares only the evaluation set: not "same training data"
    lin = graph(mv)
    kinds = [n.kind for n in lin.nodes]
    assert kinds.count("dataset") == 2
    assert {"version", "run", "experiment", "source", "parent_run", "logged_model", "shared_version"} <= set(kinds)
    assert lin.gaps == []
    assert [n.label for n in lin.nodes if n.kind == "shared_version"] == [f"fraud-lite v{sibling.version}"]
    urls = {n.kind: n.url for n in lin.nodes}
    assert urls["version"] == reverse("registry:version_detail", args=["fraud", mv.version])
    assert urls["run"] == f"http://mlflow.example/#/experiments/7/runs/{mv.run_id}"
    assert urls["experiment"] == "http://mlflow.example/#/experiments/7"
    assert urls["shared_version"] == reverse("registry:lineage", args=["fraud-lite", sibling.version])
    assert all(n.url for n in lin.nodes)
    edges = {(e.source, e.target): e.label for e in lin.edges}
    assert edges[("run", "dataset-0")] in ("training", "evaluation")
    assert edges[("run", "parent")] == "child of"


@pytest.mark.django_db
def test_missing_lineage_shows_up_as_gaps(mirror):
    m = mirror.model("bare")
    mv = mirror.version(m, git_commit="", entry_point="", source_name="")
    lin = graph(mv)
    assert {n.label for n in lin.gaps} == {"No dataset logged", "No git commit"}
    assert not any(n.kind in ("parent_run", "logged_model", "shared_version", "source") for n in lin.nodes)


@pytest.mark.django_db
def test_version_without_run_or_with_unmirrored_run_is_a_gap(mirror):
    m = mirror.model("norun")
    assert [n.label for n in graph(mirror.version(m, with_run=False)).gaps] == ["No source run"]
    from registry_ui.mirror.models import ModelVersion

    ghost = ModelVersion.objects.create(model=m, version=9, run_id="deadbeef" * 4)
    assert graph(ghost).gaps[0].label.startswith("Run deadbeefdead not mirrored")


@pytest.mark.django_db
def test_shared_versions_stay_inside_the_viewers_scope(mirror):
    a, b = mirror.model("visible"), mirror.model("hidden")
    mv = mirror.version(a, datasets=[TRAIN])
    mirror.version(b, datasets=[TRAIN])
    lin = version_lineage(mv, RegisteredModel.objects.filter(name="visible"))
    assert lin.shared == []


@pytest.mark.django_db
def test_layout_places_every_node_inside_the_svg(mirror):
    m = mirror.model("layout")
    mv = mirror.version(m, datasets=[TRAIN, EVAL])
    for _ in range(6):
        mirror.version(m, datasets=[TRAIN])
    svg = layout_svg(graph(mv))
    for n in svg["nodes"]:
        assert 0 <= n.x and n.x + svg["node_w"] <= svg["width"]
        assert 0 <= n.y and n.y + svg["node_h"] <= svg["height"]
    assert len(svg["edges"]) == len(graph(mv).edges)


@pytest.mark.django_db
def test_lineage_page_draws_linked_svg_nodes_and_lists_gaps(client, mirror):
    m = mirror.model("page")
    mirror.version(m, datasets=[TRAIN], git_commit="")
    client.force_login(make_user("reader", "auditor"))
    body = client.get(reverse("registry:lineage", args=["page", 1])).content.decode()
    svg = body.split('<svg class="lineage"')[1].split("</svg>")[0]
    assert svg.count('<a href="') == svg.count("<rect ")  # every node is a link
    assert "GAP: No git commit" in svg and "node-gap" in svg
    assert "1 gap in lineage" in body
    assert "d1g3st-train" in body
