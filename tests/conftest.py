"""Shared fixtures: a real `mlflow server`, an MLflow factory, role users, and Playwright on Chromium."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.servers import ChildServer, free_port

# Each area keeps its fixtures in a module of its own (fewer merge conflicts than one big conftest).
pytest_plugins = [
    "tests.fixtures_sync",
    "tests.fixtures_workflow",
    "tests.fixtures_audit",
    "tests.fixtures_pages",
    "tests.fixtures_tasks",
    "tests.fixtures_notify",
]

# Playwright's sync API runs an event loop in the test thread; Django then refuses ORM calls from
# that thread unless told the loop is not serving requests there.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS_DIR = Path(os.environ.get("TEST_ARTIFACTS_DIR", Path(__file__).resolve().parent.parent / "test-artifacts"))
ROLE_USERS = {
    "scientist": "data_scientist",
    "engineer": "ml_engineer",
    "ops": "ops",
    "auditor": "auditor",
}
TEST_PASSWORD = "correct-horse-battery-staple-42"


# --------------------------------------------------------------------------------------------------
# A real MLflow tracking server
# --------------------------------------------------------------------------------------------------


class MlflowServer(ChildServer):
    """`mlflow server` as a child process (start/stop/kill in benchmarks.servers.ChildServer, which the
    benchmark uses too)."""

    def __init__(self, *, port: int, backend_uri: str, workdir: Path, env: dict, args: list):
        super().__init__("mlflow server", args, url=f"http://127.0.0.1:{port}", probe="/health", env=env,
                         log=workdir / "mlflow-server.log")
        self.port, self.backend_uri, self.workdir = port, backend_uri, workdir

    def is_healthy(self) -> bool:
        return self.healthy()


def _mlflow_server(workdir: Path) -> MlflowServer:
    port = free_port()
    backend = f"sqlite:///{workdir / 'mlflow.db'}"
    mlflow_bin = str(Path(sys.executable).with_name("mlflow"))
    args = [
        mlflow_bin, "server",
        "--backend-store-uri", backend,
        "--artifacts-destination", (workdir / "artifacts").as_uri(),
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1",
    ]
    env = {
        **os.environ,
        # Webhook tests deliver to a live server on http://127.0.0.1.
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        # The session's server has served events before the webhook test registers its hook; with
        # MLflow's default 60 s cache of "who listens to this event" it would not deliver to it yet.
        "MLFLOW_WEBHOOK_CACHE_TTL": "0",
        # MLflow 3's job runner (half a dozen huey worker processes, for GenAI scorers and trace
        # roll-ups) has nothing to do for a model registry and costs seconds of CPU per server.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": os.environ.get("MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY", ""),
    }
    if not env["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"]:
        env.pop("MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY")
    return MlflowServer(port=port, backend_uri=backend, workdir=workdir, env=env, args=args)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> Iterator[MlflowServer]:
    """One real `mlflow server` for the session, on a free loopback port with a throw-away store."""
    server = _mlflow_server(tmp_path_factory.mktemp("mlflow-server"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def private_mlflow_server(tmp_path) -> Iterator[MlflowServer]:
    """A server of the test's own, for tests that kill or restart it."""
    server = _mlflow_server(tmp_path)
    server.start()
    yield server
    server.stop()


class CuttableMlflow:
    """A TCP relay in front of a running `mlflow server`: kill() cuts it like a killed server (open
    connections reset, new ones refused) and start() puts it back on the same port like a restarted one.
    Tests of MLflow dying mid-operation use it instead of starting a server of their own."""

    def __init__(self, upstream: MlflowServer):
        self.upstream_port = upstream.port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.up = False
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> CuttableMlflow:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self._listener, self.up = listener, True
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def kill(self) -> None:
        self.up = False
        listener, self._listener = self._listener, None
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        # shutdown() first: close() alone would not wake a thread blocked on the socket, and the
        # kernel would keep the connection (and the port) open.
        for sock in [listener, *sockets] if listener is not None else sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    stop = kill

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets |= {client, upstream}
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            with self._lock:
                self._sockets -= {src, dst}


@pytest.fixture
def cuttable_mlflow(mlflow_server) -> Iterator[CuttableMlflow]:
    """The session's MLflow server behind a relay the test may cut and restore."""
    relay = CuttableMlflow(mlflow_server).start()
    yield relay
    relay.kill()


@pytest.fixture
def private_cuttable_mlflow(private_mlflow_server) -> Iterator[CuttableMlflow]:
    """A server of the test's own (a registry nobody else writes to) behind a relay it may cut."""
    relay = CuttableMlflow(private_mlflow_server).start()
    yield relay
    relay.kill()


class MlflowFactory:
    """Creates registered models, versions and runs in a real MLflow through MlflowClient."""

    def __init__(self, tracking_uri: str):
        from mlflow.tracking import MlflowClient

        self.uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self._counter = 0

    def unique(self, prefix: str = "model") -> str:
        self._counter += 1
        return f"{prefix}-{os.getpid()}-{time.monotonic_ns()}-{self._counter}"

    def experiment(self, name: str | None = None) -> str:
        name = name or self.unique("exp")
        found = self.client.get_experiment_by_name(name)
        return found.experiment_id if found else self.client.create_experiment(name)

    def run(self, *, experiment_id: str | None = None, params: dict | None = None,
            metrics: dict | None = None, history: dict | None = None, tags: dict | None = None,
            dataset: dict | None = None) -> str:
        """A finished run. `dataset` = {"name", "digest", "source", "context"} logs a dataset input."""
        from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag

        experiment_id = experiment_id or self.experiment()
        run = self.client.create_run(experiment_id, tags=tags or {})
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        metric_rows = [Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()]
        for key, values in (history or {}).items():
            metric_rows += [Metric(key, float(v), now + i, i) for i, v in enumerate(values)]
        self.client.log_batch(
            run_id,
            metrics=metric_rows,
            params=[Param(k, str(v)) for k, v in (params or {}).items()],
            tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
        )
        if dataset:
            ds = Dataset(name=dataset["name"], digest=dataset["digest"], source_type="local",
                         source=dataset.get("source", '{"uri": "/data/train.csv"}'))
            self.client.log_inputs(run_id, [DatasetInput(ds, [InputTag("mlflow.data.context",
                                                                       dataset.get("context", "training"))])])
        self.client.set_terminated(run_id)
        return run_id

    def model(self, name: str | None = None, *, description: str = "", tags: dict | None = None) -> str:
        name = name or self.unique()
        self.client.create_registered_model(name, tags=tags or {}, description=description)
        return name

    def version(self, model: str, *, run_id: str | None = None, with_run: bool = True,
                description: str = "", tags: dict | None = None, **run_kwargs) -> int:
        if with_run and run_id is None:
            run_id = self.run(**run_kwargs)
        source = f"runs:/{run_id}/model" if run_id else f"s3://models/{model}/v-norun"
        mv = self.client.create_model_version(model, source, run_id=run_id, tags=tags or {},
                                              description=description)
        return int(mv.version)

    def stage(self, model: str, version: int, stage: str, archive_existing: bool = False) -> None:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            self.client.transition_model_version_stage(model, str(version), stage,
                                                       archive_existing_versions=archive_existing)

    def alias(self, model: str, alias: str, version: int) -> None:
        self.client.set_registered_model_alias(model, alias, str(version))


@pytest.fixture
def mlflow_factory(mlflow_server) -> MlflowFactory:
    return MlflowFactory(mlflow_server.url)


@pytest.fixture
def use_mlflow_server(settings, mlflow_server) -> MlflowServer:
    """Point the app at the session's real MLflow server."""
    settings.MLFLOW_TRACKING_URI = mlflow_server.url
    return mlflow_server


@pytest.fixture(autouse=True)
def _role_groups(request):
    """Transactional tests (browser, concurrency) end with a flush that empties every table, including
    the role groups and their permissions made by data migrations; a later test would then see no
    roles, depending on the order. Put them back before every database test."""
    marker = request.node.get_closest_marker("django_db")
    names = set(request.fixturenames)
    if marker is None and not names & {"db", "transactional_db", "live_server"}:
        return
    transactional = bool(names & {"transactional_db", "live_server"}) or bool(
        marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])))
    request.getfixturevalue("transactional_db" if transactional else "db")
    from governance.access import ensure_role_permissions

    ensure_role_permissions()  # creates the groups too


# --------------------------------------------------------------------------------------------------
# Users in each role
# --------------------------------------------------------------------------------------------------


def make_user(username: str, role: str | None = None, *, staff: bool = False):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from governance.access import ensure_role_groups

    ensure_role_groups()  # transactional tests flush the groups the data migration made
    user = get_user_model().objects.create_user(username=username, password=TEST_PASSWORD,
                                                email=f"{username}@example.com")
    if staff:
        user.is_staff = user.is_superuser = True
        user.save()
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def scientist(db):
    return make_user("scientist", "data_scientist")


@pytest.fixture
def engineer(db):
    return make_user("engineer", "ml_engineer")


@pytest.fixture
def ops_user(db):
    return make_user("ops", "ops")


@pytest.fixture
def auditor(db):
    return make_user("auditor", "auditor")


@pytest.fixture
def outsider(db):
    """Signed in, but in no role group."""
    return make_user("outsider")


@pytest.fixture
def admin_user(db):
    return make_user("admin", staff=True)


@pytest.fixture
def real_password_hashers(settings):
    """The project's password hashers (PBKDF2 first) instead of the suite's cheap one (tests/settings.py)."""
    settings.PASSWORD_HASHERS = settings.PROJECT_PASSWORD_HASHERS
    return settings.PASSWORD_HASHERS


@pytest.fixture
def role_users(scientist, engineer, ops_user, auditor, outsider, admin_user) -> dict:
    return {"scientist": scientist, "engineer": engineer, "ops": ops_user, "auditor": auditor,
            "outsider": outsider, "admin": admin_user}


# --------------------------------------------------------------------------------------------------
# Playwright on Debian's Chromium (never a downloaded browser)
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    # A missing browser fails the browser tests: a skip would report a green suite that never
    # opened a page.
    if not Path(CHROMIUM).exists() or not shutil.which(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}, so the browser tests cannot run: install it with "
                    "'apt-get update && apt-get install -y chromium' (or set CHROMIUM_PATH)", pytrace=False)
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "headless": True,
        "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1366, "height": 768}}


@pytest.fixture
def screenshot(page):
    """screenshot("name") saves the current page as test-artifacts/screenshots/name.png."""
    folder = ARTIFACTS_DIR / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def browser_login(page, live_server, username: str, password: str = TEST_PASSWORD) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("domcontentloaded")


def draw_every_chart(page) -> None:
    """Charts are drawn as they come near the viewport (static/js/charts.js): scroll to each in turn and
    wait until plotly drew it."""
    from playwright.sync_api import expect

    for chart in page.locator("[data-figure], [data-validation-figure]").all():
        chart.scroll_into_view_if_needed()
        expect(chart).to_have_attribute("data-drawn", "true")
