"""`manage.py demo` on a fresh embedded store: real trained models, users, and idempotent re-runs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# The demo/settings/collectstatic run on a database of their own (or none): the PostgreSQL suite would
# repeat them unchanged, so CI runs them in the SQLite suite only (.ci/run).
pytestmark = pytest.mark.own_database

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory):
    var = tmp_path_factory.mktemp("demo-var")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "MLFLOW_"))}
    env.update({"MGC_VAR_DIR": str(var), "DATABASE_URL": f"sqlite:///{var / 'console.sqlite3'}"})
    return var, env


def run_demo(env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", "demo", "--no-serve"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def wait_for_login_page(base: str, server: subprocess.Popen, log: Path, seconds: float = 180) -> str:
    import time
    import urllib.request

    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(f"{base}/accounts/login/", timeout=2) as response:
                return response.read().decode()
        except OSError:
            assert server.poll() is None, f"demo exited before serving: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"demo did not serve within {seconds} s"
            time.sleep(0.5)


def sign_in(base: str, username: str, password: str):
    """(the signed-in opener, the page the sign-in lands on)"""
    import http.cookiejar
    import re
    import urllib.parse
    import urllib.request

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = opener.open(f"{base}/accounts/login/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    data = urllib.parse.urlencode({"username": username, "password": password,
                                   "csrfmiddlewaretoken": token}).encode()
    request = urllib.request.Request(f"{base}/accounts/login/", data=data,
                                     headers={"Referer": f"{base}/accounts/login/"})
    return opener, opener.open(request, timeout=10).read().decode()


def test_demo_builds_a_real_registry_and_users_then_reruns_without_duplicates_and_serves(demo_env):
    """`make demo` twice: the first run builds everything; the second (the README's command as it is, so
    it goes on to serve) adds nothing, and every printed user signs in on the site it serves."""
    from tests.conftest import free_port

    var, env = demo_env
    first = run_demo(env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "10 new model versions trained and registered" in first.stdout
    # A first run is quiet: no "Registered model ... already exists" per version, no MLflow INFO lines.
    assert "already exists" not in first.stderr, first.stderr[-3000:]
    assert "INFO mlflow" not in first.stderr, first.stderr[-3000:]
    for username in ("scientist", "engineer", "operator", "auditor", "admin"):
        assert username in first.stdout
    assert "deployed by operator" in first.stdout
    assert "demand-forecaster v3 -> @champion: requested (Tier 3: one approval)" in first.stdout
    assert "fraud-detector v2: blocking finding raised by engineer, owned by scientist\n" in first.stdout
    assert "card approved by engineer (still incomplete for Tier 1)" in first.stdout
    check_registry(var)

    # The second run serves: its output goes to a file (a pipe nobody drains would stall the server).
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = var / "second-run.log"
    with log.open("w") as out:
        server = subprocess.Popen([sys.executable, "manage.py", "demo", "--addrport", f"127.0.0.1:{port}"],
                                  cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        page = wait_for_login_page(base, server, log)
        assert "Sign in" in page
        second = log.read_text()
        assert "0 new model versions trained and registered" in second
        assert "demo requests already there" in second
        assert "demo model risk already there" in second
        credentials = json.loads((var / "demo_credentials.json").read_text())
        for username, password in credentials.items():
            # The printed passwords are the ones that work, and they do not change between runs.
            assert f"{username:<10} {password}" in second
            opener, home = sign_in(base, username, password)
            assert f"Welcome, {username}" in home, username
            if username == "auditor":
                portfolio = opener.open(f"{base}/portfolio/portfolio.csv", timeout=30).read().decode()
        _portfolio_equals_the_database(portfolio, var / "console.sqlite3")
    finally:
        server.terminate()
        server.wait(20)
    check_registry(var)


def check_registry(var: Path) -> None:
    """What the demo leaves in MLflow, read back with MLflow's own client."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{var / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    models = {m.name: m for m in client.search_registered_models()}
    assert set(models) == {"churn-classifier", "fraud-detector", "demand-forecaster"}
    # (the local store answers ints where the REST API answers strings)
    # The demo's deployed request moved @champion from v2 to v3 through the workflow; @rollback keeps v2.
    assert {k: int(v) for k, v in models["churn-classifier"].aliases.items()} == {"champion": 3, "challenger": 3,
                                                                              "rollback": 2}
    # Model risk: demand-forecaster is Tier 3 and its v3 went to @champion with one approval.
    assert {k: int(v) for k, v in models["demand-forecaster"].aliases.items()}["champion"] == 3
    versions = client.search_model_versions("name='churn-classifier'")
    assert sorted(int(v.version) for v in versions) == [1, 2, 3, 4]
    assert {int(v.version): v.current_stage for v in versions}[2] == "Production"
    run = client.get_run(client.get_model_version("churn-classifier", "2").run_id)
    for split in ("train", "val", "test"):
        assert 0.5 < run.data.metrics[f"{split}_accuracy"] <= 1.0
    assert run.data.params["n_estimators"] == "60"
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) == 60
    assert {d.dataset.name for d in run.inputs.dataset_inputs} == {"churn-train", "churn-eval"}
    assert all(len(d.dataset.digest) >= 8 for d in run.inputs.dataset_inputs)
    assert len(run.data.tags["mlflow.source.git.commit"]) == 40
    # A real model artifact was logged: it loads and predicts.
    import mlflow.sklearn

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)  # another test of this process may have pointed the registry elsewhere
    model = mlflow.sklearn.load_model("models:/churn-classifier@champion")
    assert model.n_estimators == 120


def _portfolio_equals_the_database(portfolio_csv: str, database: Path) -> None:
    """The portfolio (as the auditor downloads it) against counts made with SQL on the demo's database."""
    import csv
    import io
    import sqlite3

    rows = {r["model"]: r for r in csv.DictReader(io.StringIO(portfolio_csv))}
    with sqlite3.connect(database) as db:
        models = [name for (name,) in db.execute("SELECT name FROM registry_ui_registeredmodel")]
        tiers = dict(db.execute("SELECT m.name, t.tier FROM governance_modelrisktier t "
                                "JOIN registry_ui_registeredmodel m ON m.id = t.model_id"))
        findings = {(name, severity): n for name, severity, n in db.execute(
            "SELECT m.name, f.severity, COUNT(*) FROM governance_finding f JOIN registry_ui_registeredmodel m "
            "ON m.id = f.model_id WHERE f.state IN ('open', 'closure_proposed') GROUP BY m.name, f.severity")}
        deploys = dict(db.execute("SELECT model_name, COUNT(*) FROM governance_deployment WHERE state = 'succeeded' "
                                  "AND kind IN ('stage', 'alias') GROUP BY model_name"))
    assert sorted(rows) == sorted(models)
    for name, row in rows.items():
        assert row["tier"] == tiers.get(name, ""), name
        for severity in ("blocking", "major", "minor"):
            assert int(row[f"open_{severity}"]) == findings.get((name, severity), 0), (name, severity)
        assert int(row["deploys_in_period"]) == deploys.get(name, 0), name  # every demo deploy is recent
    # What the demo shows a first-time user: a Tier 1 model held by a blocking finding, a Tier 3 model.
    assert (rows["fraud-detector"]["tier"], rows["fraud-detector"]["open_blocking"]) == ("tier1", "1")
    assert (rows["demand-forecaster"]["tier"], rows["demand-forecaster"]["deploys_in_period"]) == ("tier3", "1")
