"""Version comparison: pandas table (best per row, deltas, params diff), the page, CSV, JSON API, and
the metric histories the sync mirrors (real MLflow server; and MLflow down)."""

import csv
import io
import json
import math

import pytest
from django.urls import reverse

from governance.tokens.services import api_token_create
from registry_ui.mirror.models import MetricHistory
from registry_ui.mirror.sync import sync_model
from registry_ui.pages.compare import compare, lower_is_better
from registry_ui.pages.selectors import BadSelection, CompareItem, VersionRef, parse_version_refs
from tests.conftest import make_user


class FakeRun:
    def __init__(self, metrics, params):
        self.metrics, self.params, self.run_id = metrics, params, "r"


def item(name, version, metrics, params=None):
    return CompareItem(ref=VersionRef(name, version), version=None, run=FakeRun(metrics, params or {}))


# --- pure comparison -------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "lower"), [
    ("val_loss", True), ("train_loss", True), ("rmse", True), ("test_rmse", True), ("mae", True),
    ("val_error", True), ("log_loss", True), ("test_mape", True), ("latency_ms", True),
    ("accuracy", False), ("val_auc", False), ("f1", False), ("r2", False), ("precision", False),
    ("test_accuracy_score", False), ("recall", False),
])
def test_knows_which_metrics_are_lower_is_better(key, lower):
    assert lower_is_better(key) is lower


def test_best_per_row_follows_the_metric_direction_and_deltas_use_the_baseline():
    items = [item("m", 1, {"val_accuracy": 0.90, "val_loss": 0.30}),
             item("m", 2, {"val_accuracy": 0.95, "val_loss": 0.20}),
             item("m", 3, {"val_accuracy": 0.80, "val_loss": 0.40})]
    result = compare(items, baseline="m v3")
    rows = {r.key: r for r in result.metric_rows}
    assert [c["label"] for c in rows["val_accuracy"].cells if c["best"]] == ["m v2"]
    assert [c["label"] for c in rows["val_loss"].cells if c["best"]] == ["m v2"]
    deltas = {c["label"]: c["delta"] for c in rows["val_accuracy"].cells}
    assert deltas == {"m v1": 0.1, "m v2": 0.15, "m v3": None}  # baseline has no delta, no float noise
    loss = {c["label"]: (c["delta_text"], c["better"]) for c in rows["val_loss"].cells}
    assert loss["m v2"] == ("−0.2", True)  # a lower loss is better
    assert loss["m v1"] == ("−0.1", True)
    assert result.baseline == "m v3"


def test_missing_and_non_finite_metrics_never_win_and_ties_all_win():
    items = [item("m", 1, {"acc": "NaN", "f1": 0.5, "only_one": 1.0}),
             item("m", 2, {"acc": 0.7, "f1": 0.5}),
             item("m", 3, {"acc": 0.6, "f1": 0.4})]
    rows = {r.key: r for r in compare(items).metric_rows}
    assert [c["label"] for c in rows["acc"].cells if c["best"]] == ["m v2"]
    assert [c["label"] for c in rows["f1"].cells if c["best"]] == ["m v1", "m v2"]
    assert not any(c["best"] for c in rows["only_one"].cells)  # nothing to compare against
    assert rows["acc"].cells[0]["text"] == "nan" and rows["acc"].cells[0]["value"] is None


def test_params_diff_keeps_only_differing_params_by_default():
    items = [item("a", 1, {}, {"lr": "0.1", "depth": "4", "seed": "1"}),
             item("b", 7, {}, {"lr": "0.2", "depth": "4"})]
    result = compare(items)
    assert [r.key for r in result.differing_param_rows] == ["lr", "seed"]  # seed missing on one side differs
    assert [r.key for r in result.param_rows] == ["depth", "lr", "seed"]
    seed = next(r for r in result.param_rows if r.key == "seed")
    assert [c["value"] for c in seed.cells] == ["1", None]


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"model": "m", "versions": ["1,2,3"]}, [("m", 1), ("m", 2), ("m", 3)]),
    ({"versions": ["model-a:1,model-b:2"]}, [("model-a", 1), ("model-b", 2)]),
    ({"versions": ["odd:name,with comma:4", "x:1"]}, [("odd:name,with comma", 4), ("x", 1)]),
    ({"versions": ["odd,name:4"]}, [("odd,name", 4)]),  # the split does not parse: one name
    ({"versions": ["a:1", "a:1", "b:2"]}, [("a", 1), ("b", 2)]),
    ({"model": "m", "versions": ["2", "other:5"]}, [("m", 2), ("other", 5)]),
])
def test_parse_version_refs(kwargs, expected):
    assert [(r.model, r.version) for r in parse_version_refs(**kwargs)] == expected


@pytest.mark.parametrize("versions", [["1,2"], ["a:b"], ["a:1,x"]])
def test_parse_version_refs_rejects_what_it_cannot_read(versions):
    with pytest.raises(BadSelection):
        parse_version_refs(versions=versions)


def test_parse_version_refs_caps_the_number_of_versions(settings):
    settings.REGISTRY_COMPARE_MAX_VERSIONS = 3
    with pytest.raises(BadSelection, match="at most 3"):
        parse_version_refs(model="m", versions=["1,2,3,4"])


# --- the page, CSV and API -------------------------------------------------------------------------


@pytest.fixture
def two_models(mirror):
    a = mirror.model("model-a")
    b = mirror.model("model-b")
    mirror.version(a, metrics={"val_accuracy": 0.8, "val_loss": 0.5}, params={"lr": "0.1", "depth": "3"},
                   history={"val_loss": [0.9, 0.7, 0.5]})
    mirror.version(a, metrics={"val_accuracy": 0.9, "val_loss": 0.4}, params={"lr": "0.2", "depth": "3"},
                   history={"val_loss": [0.8, 0.6, 0.4]})
    mirror.version(b, metrics={"val_accuracy": 0.85, "val_loss": 0.45}, params={"lr": "=HYPERLINK(1)", "depth": "3"})
    return a, b


@pytest.fixture
def reader(db, client):
    user = make_user("reader", "data_scientist")
    client.force_login(user)
    return user


def test_compare_page_highlights_best_and_shows_deltas(client, two_models, reader):
    body = client.get(reverse("registry:compare"), {"v": ["model-a:1", "model-a:2", "model-b:1"],
                                                     "baseline": "model-a v1"}).content.decode()
    table = body.split('id="compare-metrics"')[1].split("</table>")[0]
    accuracy = table.split(">val_accuracy")[1].split("</tr>")[0]
    assert 'class="num best" aria-label="0.9, best">0.9' in accuracy
    assert "+0.1" in accuracy and "+0.05" in accuracy
    loss = table.split(">val_loss")[1].split("</tr>")[0]
    assert 'aria-label="lower is better"' in loss and 'aria-label="0.4, best"' in loss
    assert '<span class="delta better">−0.1</span>' in loss
    params = body.split('id="compare-params"')[1].split("</table>")[0]
    assert ">lr<" in params and ">depth<" not in params  # identical params hidden by default
    assert "1 identical hidden" in body
    shown = client.get(reverse("registry:compare"), {"v": ["model-a:1", "model-a:2"], "params": "all"}).content.decode()
    assert ">depth<" in shown.split('id="compare-params"')[1].split("</table>")[0]


def test_compare_page_embeds_figures_as_json_and_loads_plotly(client, two_models, reader):
    body = client.get(reverse("registry:compare"), {"v": ["model-a:1", "model-a:2", "model-b:1"]}).content.decode()
    data = json.loads(body.split('<script id="compare-figures" type="application/json">')[1].split("</script>")[0])
    bars = [f for k, f in data.items() if k.startswith("bars-")]
    assert {f["layout"]["title"]["text"] for f in bars} == {"accuracy", "loss"}
    assert [t["name"] for t in bars[0]["data"]] == ["model-a v1", "model-a v2", "model-b v1"]
    curves = [f for k, f in data.items() if k.startswith("history-")]
    assert len(curves) == 1 and [t["y"] for t in curves[0]["data"]] == [[0.9, 0.7, 0.5], [0.8, 0.6, 0.4]]
    assert [t["name"] for t in data["parcoords"]["data"]] == ["model-a v1", "model-a v2", "model-b v1"]
    # charts.js loads the partial plotly bundle named in its data-plotly when the first chart needs it.
    assert 'data-plotly="/static/vendor/plotly-scatter-bar.min.js"' in body and "js/charts.js" in body


def test_compare_page_with_fewer_than_two_versions_shows_the_picker(client, two_models, reader):
    body = client.get(reverse("registry:compare"), {"pick": "model-b", "v": ["model-a:2"]}).content.decode()
    assert "Pick at least two versions" in body
    assert 'value="model-a:2" checked' in body  # the earlier pick survives choosing another model
    assert 'value="model-b:1"' in body


def test_compare_page_rejects_unreadable_selection_with_400(client, two_models, reader):
    response = client.get(reverse("registry:compare"), {"versions": "a:b"})
    assert response.status_code == 400 and "Cannot read version" in response.content.decode()


def test_compare_csv_download(client, two_models, reader):
    response = client.get(reverse("registry:compare_csv"), {"v": ["model-a:1", "model-b:1"]})
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["kind", "key", "model-a v1", "model-b v1", "delta model-b v1 vs model-a v1", "best"]
    assert ["metric", "val_accuracy", "0.8", "0.85", "0.05", "model-b v1"] in rows
    assert ["param", "lr", "0.1", "'=HYPERLINK(1)", "", ""] in rows  # no spreadsheet formula injection


def test_compare_api_one_model(client, two_models, reader):
    response = client.get(reverse("compare_api:compare"), {"model": "model-a", "versions": "1,2"})
    assert response.status_code == 200
    data = response.json()
    assert [v["label"] for v in data["versions"]] == ["model-a v1", "model-a v2"]
    loss = next(m for m in data["metrics"] if m["key"] == "val_loss")
    assert loss == {"key": "val_loss", "lower_is_better": True, "best": ["model-a v2"],
                    "values": {"model-a v1": 0.5, "model-a v2": 0.4}, "deltas": {"model-a v2": -0.1}}
    assert {p["key"]: p["differs"] for p in data["params"]} == {"depth": False, "lr": True}


def test_compare_api_across_models_with_token_auth(two_models):
    from rest_framework.test import APIClient

    _token, secret = api_token_create(actor=make_user("ci-bot", "ml_engineer"), name="ci", scope="read")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    data = api.get(reverse("compare_api:compare"), {"versions": "model-a:2,model-b:1", "baseline": "model-b v1"}).json()
    assert data["baseline"] == "model-b v1"
    assert [(v["model"], v["version"]) for v in data["versions"]] == [("model-a", 2), ("model-b", 1)]


@pytest.mark.parametrize(("params", "status", "detail"), [
    ({"versions": "a:b"}, 400, "Cannot read version"),
    ({"model": "model-a", "versions": "1"}, 400, "at least two versions"),
    ({"model": "model-a", "versions": "1,9"}, 404, "model-a v9"),
])
def test_compare_api_errors_are_json_detail(client, two_models, reader, params, status, detail):
    response = client.get(reverse("compare_api:compare"), params)
    assert response.status_code == status
    assert detail in response.json()["detail"]


# --- metric histories: mirrored by the sync from the real MLflow server; the page never asks MLflow ----


def _figures(body: str) -> dict:
    return json.loads(body.split('<script id="compare-figures" type="application/json">')[1].split("</script>")[0])


@pytest.mark.mlflow
def test_the_sync_mirrors_histories_and_the_page_draws_them_with_mlflow_down(
        client, reader, mlflow_factory, use_mlflow_server, settings):
    from mlflow.entities import Metric

    name = mlflow_factory.model()
    run_a = mlflow_factory.run(metrics={"val_acc": 0.9}, history={"loss": [1.0, 0.5, 0.25, 0.2]})
    run_b = mlflow_factory.run(metrics={"val_acc": 0.8}, history={"loss": [1.0, 0.7, float("nan")]})
    mlflow_factory.version(name, run_id=run_a)
    mlflow_factory.version(name, run_id=run_b)
    mlflow_factory.alias(name, "champion", 1)  # the champion's run is re-read by every sync

    assert sync_model(name).histories_fetched == 2  # loss of each run; val_acc has a single step
    stored = {(h.run.run_id, h.key): h.points for h in MetricHistory.objects.select_related("run")}
    assert [p[:2] for p in stored[(run_a, "loss")]] == [[0, 1.0], [1, 0.5], [2, 0.25], [3, 0.2]]
    assert stored[(run_b, "loss")][2][1] is None  # NaN stored as null
    assert sync_model(name).histories_fetched == 0  # nothing new: nothing read, nothing written
    mlflow_factory.client.log_batch(run_a, metrics=[Metric("loss", 0.1, 0, 4)])
    again = sync_model(name)
    assert again.histories_fetched == 1
    assert [p[:2] for p in MetricHistory.objects.get(run__run_id=run_a, key="loss").points][-1] == [4, 0.1]

    settings.MLFLOW_TRACKING_URI, settings.MLFLOW_WEB_RETRIES = "http://127.0.0.1:9", 0  # MLflow is down
    body = client.get(reverse("registry:compare"), {"v": [f"{name}:1", f"{name}:2"]}).content.decode()
    loss = next(f for k, f in _figures(body).items()
                if k.startswith("history-") and f["layout"]["title"]["text"] == "loss")
    assert {t["name"]: t["y"] for t in loss["data"]}[f"{name} v1"] == [1.0, 0.5, 0.25, 0.2, 0.1]
    assert "Curves as mirrored by the sync, read from MLflow" in body


def test_when_mlflow_is_down_the_comparison_still_renders(client, mirror, reader, mlflow_down):
    m = mirror.model("offline")
    mirror.version(m, metrics={"acc": 0.5}, store_history=False)
    mirror.version(m, metrics={"acc": 0.6}, store_history=False)
    response = client.get(reverse("registry:compare"), {"v": ["offline:1", "offline:2"]})
    assert response.status_code == 200
    body = response.content.decode()
    assert "No metric history in the mirror for these versions" in body
    assert 'aria-label="0.6, best">0.6' in body  # the mirror's data is still compared
    assert not MetricHistory.objects.exists()


def test_chart_builders_are_pure_and_skip_non_finite_values():
    import pandas as pd

    from registry_ui.pages import charts

    frame = pd.DataFrame({"v1": {"train_acc": 0.9, "val_acc": math.nan}, "v2": {"train_acc": 0.8, "val_acc": 0.7}})
    figs = charts.grouped_metric_bars(frame, split_of=lambda k: tuple(k.split("_", 1)))
    assert len(figs) == 1 and figs[0]["layout"]["barmode"] == "group"
    assert figs[0]["data"][0] == {**figs[0]["data"][0], "x": ["train", "val"], "y": [0.9, None], "name": "v1"}
    params = pd.DataFrame({"v1": {"lr": "0.1", "opt": "adam"}, "v2": {"lr": "0.2", "opt": "sgd"}})
    par = charts.parallel_coordinates(params, frame, "train_acc")
    assert par["layout"]["xaxis"]["ticktext"] == ["lr", "opt", "train_acc"]
    assert [t["y"] for t in par["data"]] == [[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]]  # normalised per axis
    assert [t["customdata"] for t in par["data"]] == [["0.1", "adam", "0.9"], ["0.2", "sgd", "0.8"]]
    assert {a["text"] for a in par["layout"]["annotations"]} == {"0.1", "0.2", "adam", "sgd", "0.8", "0.9"}
    assert charts.parallel_coordinates(params, frame, "nope") is None
    json.dumps(figs + [par], allow_nan=False)  # plain JSON, nothing plotly-specific


def test_a_figure_is_built_once_per_input_and_never_served_for_other_data(monkeypatch):
    import pandas as pd
    import plotly.graph_objects as go

    from registry_ui.pages import charts

    frame = pd.DataFrame({"v1": {"acc": 0.9, "loss": 0.3}, "v2": {"acc": 0.8, "loss": 0.25}})
    history = pd.DataFrame({"label": ["v1", "v1"], "key": ["loss", "loss"], "step": [0, 1], "value": [0.5, 0.4]})
    first = charts.grouped_metric_bars(frame), charts.history_curves(history)
    assert first == (charts.grouped_metric_bars.uncached(frame), charts.history_curves.uncached(history))

    built = []
    real = go.Figure
    monkeypatch.setattr(go, "Figure", lambda *a, **k: built.append(1) or real(*a, **k))
    # The same inputs again: the kept figures, plotly not called.
    assert (charts.grouped_metric_bars(frame), charts.history_curves(history)) == first and built == []
    # A value changed in its 16th digit, a version renamed, another split rule: built anew, each its own.
    nudged = frame.copy()
    nudged.loc["acc", "v1"] = 0.9000000000000001
    assert charts.grouped_metric_bars(nudged)[0]["data"][0]["y"] == [0.9000000000000001]
    renamed = frame.rename(columns={"v2": "v3"})
    assert charts.grouped_metric_bars(renamed)[0]["data"][1]["name"] == "v3"
    split = charts.grouped_metric_bars(frame, split_of=lambda k: ("val", k))
    assert split[0]["data"][0]["x"] == ["val"]
    assert len(built) == 3 * 2  # built anew for each of the three, a figure per metric (acc, loss)
    changed = history.assign(value=[0.5, 0.41])
    assert charts.history_curves(changed)[0]["data"][0]["y"] == [0.5, 0.41]


def test_a_cache_out_of_reach_only_costs_the_build(settings):
    import pandas as pd

    from registry_ui.pages import charts

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:9/0"}}  # nothing listens there
    frame = pd.DataFrame({"v1": {"acc": 0.61}, "v2": {"acc": 0.62}})
    assert charts.grouped_metric_bars(frame) == charts.grouped_metric_bars.uncached(frame)


def test_twenty_versions_stay_readable(client, mirror, reader):
    m = mirror.model("many")
    for i in range(20):
        mirror.version(m, metrics={"val_acc": 0.5 + i / 100, "val_loss": 1 - i / 50}, params={"lr": str(i)})
    body = client.get(reverse("registry:compare"), {"model": "many", "versions": ",".join(map(str, range(1, 21)))})
    data = json.loads(body.content.decode().split('type="application/json">')[1].split("</script>")[0])
    bars = data["bars-0"]
    assert len(bars["data"]) == 20 and len({t["marker"]["color"] for t in bars["data"]}) == 20
    assert bars["layout"]["legend"]["orientation"] == "h"


def test_chart_text_from_user_input_is_escaped_for_plotly():
    import pandas as pd

    from registry_ui.pages import charts

    frame = pd.DataFrame({"<b>m</b> v1": {"acc": 0.1}, "<a href='x'>m</a> v2": {"acc": 0.2}})
    fig = charts.grouped_metric_bars(frame)[0]
    assert [t["name"] for t in fig["data"]] == ["&lt;b&gt;m&lt;/b&gt; v1", "&lt;a href='x'&gt;m&lt;/a&gt; v2"]


def test_compare_api_hides_out_of_scope_versions_as_404(client, two_models, settings):
    settings.REGISTRY_VISIBILITY = "tests.test_pages.only_team_growth"
    client.force_login(make_user("scoped", "data_scientist"))
    response = client.get(reverse("compare_api:compare"), {"versions": "model-a:1,model-b:1"})
    assert response.status_code == 404 and "model-a v1" in response.json()["detail"]
