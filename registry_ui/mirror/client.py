"""The one module that imports mlflow.

Everything else in the project talks to MLflow through these functions and receives plain
dataclasses or builtins, never MLflow entities. An unreachable or failing MLflow surfaces as
`MlflowUnavailable`.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings


class MlflowUnavailable(Exception):
    """MLflow could not be reached or answered with an error we cannot act on. Raised by a write: the
    write did not land (never sent, refused by MLflow, or read back and not there)."""


class WriteRefused(MlflowUnavailable):
    """Not sent: MLflow's state, read just before the write, forbids it (e.g. deleting a version that
    holds a stage or an alias)."""


class WriteOutcomeUnknown(MlflowUnavailable):
    """A write was sent, no usable answer came back, and MLflow could not be read back to tell whether
    it landed: only a later read of MLflow settles it."""


@dataclass(frozen=True)
class Budget:
    timeout: float
    retries: int


def web_budget() -> Budget:
    return Budget(settings.MLFLOW_WEB_TIMEOUT, settings.MLFLOW_WEB_RETRIES)


def sync_budget() -> Budget:
    return Budget(settings.MLFLOW_SYNC_TIMEOUT, settings.MLFLOW_SYNC_RETRIES)


def write_budget() -> Budget:
    """Writes are never re-sent by the HTTP layer: a retried POST whose first copy was applied but
    not answered is a second write. After a failure the caller reads MLflow back and decides."""
    return Budget(settings.MLFLOW_WEB_TIMEOUT, 0)


# The budget of the calling context (a web request waits briefly; the sync may wait longer). A
# ContextVar, not os.environ: each gunicorn thread keeps its own, so one thread's budget never leaks
# into another's call.
_current_budget: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("mlflow_budget", default=None)
_configure_lock = threading.Lock()
_configured = False


@contextlib.contextmanager
def _budget(budget: Budget) -> Iterator[None]:
    token = _current_budget.set(budget)
    try:
        yield
    finally:
        _current_budget.reset(token)


def configure() -> None:
    """Once per process, before the first call: MLflow's REST layer takes its timeout and retries from
    the budget of the calling context. MLflow reads them from environment variables per request, and
    its defaults (120 s, 7 retries with backoff) would block a caller for minutes against a dead
    server; writing os.environ per call is not safe under threads, so the REST function is wrapped
    once instead, and explicit arguments of MLflow's own callers still win."""
    global _configured
    if _configured:
        return
    with _configure_lock:
        if _configured:
            return
        # Import mlflow once, whole, under the lock: two threads importing its circular package
        # graph at the same moment see half-initialised modules. Every import of mlflow in this
        # module is therefore preceded by configure().
        import mlflow  # noqa: F401
        import mlflow.tracking  # noqa: F401
        from mlflow.utils import rest_utils

        original = rest_utils.http_request

        def budgeted_http_request(*args, **kwargs):
            budget = _current_budget.get() or web_budget()
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = max(1.0, budget.timeout)
            if kwargs.get("max_retries") is None:
                kwargs["max_retries"] = budget.retries
            if kwargs.get("backoff_factor") is None:
                kwargs["backoff_factor"] = 1
            return original(*args, **kwargs)

        rest_utils.http_request = budgeted_http_request
        # urllib3 logs each retry as a warning; the caller reports the one outcome that matters.
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
        _configured = True


def tracking_uri() -> str:
    return settings.MLFLOW_TRACKING_URI


def _client(uri: str | None = None):
    configure()
    from mlflow.tracking import MlflowClient

    uri = uri or tracking_uri()
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


# --------------------------------------------------------------------------------------------------
# Reading the registry: paged scans, targeted reads, batched run fetches.
# --------------------------------------------------------------------------------------------------

# MLflow caps search_registered_models at 1000 a page; search_model_versions allows far more.
MODELS_PAGE_MAX = 1000
VERSIONS_PAGE_MAX = 10_000
# A `name IN (...)` filter travels in a GET query string; keep it well under the server's line limit.
_FILTER_CHARS_MAX = 4_000
RUN_BATCH = 100


@dataclass(frozen=True)
class ModelRecord:
    name: str
    description: str
    tags: dict[str, str]
    aliases: dict[str, int]  # alias -> version (normalised to int: the REST API sends strings)
    created_ms: int | None
    updated_ms: int | None


@dataclass(frozen=True)
class VersionRecord:
    name: str
    version: int
    stage: str
    status: str
    source: str
    run_id: str
    run_link: str
    description: str
    tags: dict[str, str]
    user_id: str
    created_ms: int | None
    updated_ms: int | None
    logged_model_id: str = ""


@dataclass(frozen=True)
class DatasetRecord:
    name: str
    digest: str
    source_type: str
    source: str
    context: str
    schema: str
    profile: str


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    experiment_id: str
    experiment_name: str
    run_name: str
    user: str
    status: str
    lifecycle_stage: str
    start_ms: int | None
    end_ms: int | None
    params: dict[str, str]
    metrics: dict[str, Any]  # final values; NaN/inf as strings ("NaN", "Infinity", "-Infinity")
    tags: dict[str, str]
    datasets: tuple[DatasetRecord, ...]
    logged_model_id: str
    # The step of each metric's latest value: a metric logged past step 0 has a history worth a curve.
    metric_steps: dict[str, int] = field(default_factory=dict)


def why(exc: BaseException) -> str:
    """The cause of a failed MLflow call in a few words (the transport's own text runs to several
    hundred characters of pool and retry internals)."""
    import requests
    from urllib3.exceptions import NameResolutionError, ProtocolError, ResponseError

    seen: set[int] = set()
    stack: list[object] = [exc]
    while stack:
        item = stack.pop(0)
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, ConnectionRefusedError) or "Connection refused" in str(item) and \
                isinstance(item, OSError | requests.ConnectionError):
            return "connection refused"
        if isinstance(item, NameResolutionError):
            return "host name not found"
        if isinstance(item, requests.ConnectTimeout):
            return "no connection within the timeout"
        if isinstance(item, requests.ReadTimeout | TimeoutError):
            return "no answer within the timeout"
        if isinstance(item, ResponseError):
            return f"MLflow kept answering with an error ({item})"
        if isinstance(item, ConnectionResetError | ProtocolError):
            return "connection closed without an answer"
        if isinstance(item, BaseException):
            stack.extend([item.__cause__, item.__context__, getattr(item, "reason", None), *item.args])
    text = " ".join(str(getattr(exc, "message", None) or exc).split())
    return text[:300] or type(exc).__name__


@contextlib.contextmanager
def _reading(budget: Budget | None, what: str = "reading the registry", uri: str | None = None) -> Iterator[None]:
    """Apply the budget and turn every MLflow/transport failure into MlflowUnavailable, in one line:
    what was tried, where, why it failed."""
    import requests
    configure()
    from mlflow.exceptions import MlflowException

    budget = budget or sync_budget()
    with _budget(budget):
        try:
            yield
        except (MlflowException, requests.RequestException, OSError) as exc:
            retried = f" (after {budget.retries} retries)" if budget.retries else ""
            raise MlflowUnavailable(f"{what} at {uri or tracking_uri()} failed: {why(exc)}{retried}") from exc


def _model_record(rm) -> ModelRecord:
    return ModelRecord(
        name=rm.name,
        description=rm.description or "",
        tags=dict(rm.tags or {}),
        aliases={str(k): int(v) for k, v in (rm.aliases or {}).items()},
        created_ms=rm.creation_timestamp,
        updated_ms=rm.last_updated_timestamp,
    )


def _version_record(mv) -> VersionRecord:
    return VersionRecord(
        name=mv.name,
        version=int(mv.version),
        stage=mv.current_stage or "None",
        status=mv.status or "",
        source=mv.source or "",
        run_id=mv.run_id or "",
        run_link=mv.run_link or "",
        description=mv.description or "",
        tags=dict(mv.tags or {}),
        user_id=mv.user_id or "",
        created_ms=mv.creation_timestamp,
        updated_ms=mv.last_updated_timestamp,
        logged_model_id=getattr(mv, "model_id", None) or "",
    )


def registered_model_pages(*, uri: str | None = None, page_size: int = MODELS_PAGE_MAX,
                           budget: Budget | None = None) -> Iterator[tuple[list[ModelRecord], bool]]:
    """Every registered model, one page at a time, in a stable order (page tokens are offsets), each
    page with whether MLflow said it was the last one (MLflow has no count: this is how many there are)."""
    client = _client(uri)
    token = None
    pages = 0
    while True:
        with _reading(budget, f"listing registered models (page {pages + 1})", uri):
            page = client.search_registered_models(max_results=min(page_size, MODELS_PAGE_MAX),
                                                   order_by=["name ASC"], page_token=token)
            records = [_model_record(rm) for rm in page]
        pages += 1
        token = page.token
        if records or not token:
            yield records, not token
        if not token:
            return


def iter_registered_model_pages(*, uri: str | None = None, page_size: int = MODELS_PAGE_MAX,
                                budget: Budget | None = None) -> Iterator[list[ModelRecord]]:
    """Every registered model, one page at a time (see registered_model_pages)."""
    for records, _last in registered_model_pages(uri=uri, page_size=page_size, budget=budget):
        if records:
            yield records


def _name_chunks(names: list[str]) -> Iterator[list[str]]:
    chunk: list[str] = []
    size = 0
    for name in names:
        cost = len(name.encode("utf-8")) * 3 + 4  # percent-encoding of non-ASCII, quotes, comma
        if chunk and size + cost > _FILTER_CHARS_MAX:
            yield chunk
            chunk, size = [], 0
        chunk.append(name)
        size += cost
    if chunk:
        yield chunk


def _search_versions(client, filter_string: str, budget: Budget | None) -> list[VersionRecord]:
    records: list[VersionRecord] = []
    token = None
    while True:
        with _reading(budget, "listing model versions"):
            page = client.search_model_versions(filter_string=filter_string, max_results=VERSIONS_PAGE_MAX,
                                                order_by=["name ASC", "version_number ASC"], page_token=token)
            records.extend(_version_record(mv) for mv in page)
        token = page.token
        if not token:
            return records


def model_versions_for(names: list[str], *, uri: str | None = None,
                       budget: Budget | None = None) -> dict[str, list[VersionRecord]]:
    """All live versions of the named models, read completely (every page) or not at all."""
    client = _client(uri)
    result: dict[str, list[VersionRecord]] = {name: [] for name in names}
    plain = [n for n in names if "'" not in n and '"' not in n and "\\" not in n]
    odd = [n for n in names if n not in set(plain)]
    for chunk in _name_chunks(plain):
        listed = ", ".join(f"'{n}'" for n in chunk)
        for record in _search_versions(client, f"name IN ({listed})", budget):
            if record.name in result:
                result[record.name].append(record)
    for name in odd:
        # No quoting survives every name MLflow accepts: match quotes and backslashes with the LIKE
        # wildcard "_" and keep the exact name from what comes back.
        pattern = "".join("_" if c in "'\"\\" else c for c in name)
        found = _search_versions(client, f"name LIKE '{pattern}'", budget)
        result[name] = [r for r in found if r.name == name]
    return result


def get_registered_model(name: str, *, uri: str | None = None, budget: Budget | None = None) -> ModelRecord | None:
    """One model (with aliases), or None when MLflow has no such registered model."""
    configure()
    from mlflow.exceptions import MlflowException

    client = _client(uri)
    try:
        with _budget(budget or sync_budget()):
            return _model_record(client.get_registered_model(name))
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise MlflowUnavailable(" ".join(str(exc).split())[:500]) from exc
    except Exception as exc:  # transport errors of the REST client
        raise MlflowUnavailable(" ".join(str(exc).split())[:500] or exc.__class__.__name__) from exc


def ping(*, timeout: float = 2.0, uri: str | None = None) -> None:
    """Is MLflow answering? One cheap read with `timeout` and no retry (readiness probes); raises
    MlflowUnavailable otherwise."""
    client = _client(uri)
    with _reading(Budget(timeout, 0), "asking whether MLflow answers", uri):
        client.search_registered_models(max_results=1)


def list_experiments(*, uri: str | None = None, budget: Budget | None = None) -> dict[str, str]:
    """experiment id -> name, including deleted experiments (a version's run may live in one)."""
    configure()
    from mlflow.entities import ViewType

    client = _client(uri)
    found: dict[str, str] = {}
    token = None
    while True:
        with _reading(budget, "listing experiments", uri):
            page = client.search_experiments(view_type=ViewType.ALL, max_results=1000, page_token=token)
            found.update({e.experiment_id: e.name for e in page})
        token = page.token
        if not token:
            return found


def _metric_value(value: float) -> Any:
    if value != value:  # NaN
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _run_record(run, experiments: dict[str, str]) -> RunRecord:
    info, data = run.info, run.data
    datasets = []
    for di in getattr(run.inputs, "dataset_inputs", None) or []:
        ds = di.dataset
        context = next((t.value for t in di.tags or [] if t.key == "mlflow.data.context"), "")
        datasets.append(DatasetRecord(name=ds.name or "", digest=ds.digest or "", source_type=ds.source_type or "",
                                      source=ds.source or "", context=context or "", schema=ds.schema or "",
                                      profile=ds.profile or ""))
    outputs = getattr(run, "outputs", None)
    model_outputs = getattr(outputs, "model_outputs", None) or []
    return RunRecord(
        run_id=info.run_id,
        experiment_id=str(info.experiment_id),
        experiment_name=experiments.get(str(info.experiment_id), ""),
        run_name=info.run_name or "",
        user=info.user_id or "",
        status=info.status or "",
        lifecycle_stage=info.lifecycle_stage or "",
        start_ms=info.start_time,
        end_ms=info.end_time,
        params=dict(data.params or {}),
        metrics={k: _metric_value(v) for k, v in (data.metrics or {}).items()},
        tags=dict(data.tags or {}),
        datasets=tuple(datasets),
        logged_model_id=model_outputs[0].model_id if model_outputs else "",
        metric_steps={m.key: int(m.step or 0) for m in getattr(data, "_metric_objs", None) or []},
    )


def fetch_runs(run_ids: list[str], *, experiments: dict[str, str], uri: str | None = None,
               budget: Budget | None = None) -> dict[str, RunRecord]:
    """The runs with these ids (deleted runs included), fetched RUN_BATCH at a time with search_runs.
    Ids MLflow no longer knows are absent from the result."""
    configure()
    from mlflow.entities import ViewType

    client = _client(uri)
    found: dict[str, RunRecord] = {}
    ids = sorted({r for r in run_ids if r})
    if not ids or not experiments:
        return found
    experiment_ids = sorted(experiments)
    for start in range(0, len(ids), RUN_BATCH):
        batch = ids[start:start + RUN_BATCH]
        listed = ", ".join(f"'{r}'" for r in batch if "'" not in r)
        if not listed:
            continue
        token = None
        while True:
            with _reading(budget, "reading runs", uri):
                page = client.search_runs(experiment_ids, filter_string=f"attributes.run_id IN ({listed})",
                                          run_view_type=ViewType.ALL, max_results=1000, page_token=token)
                for run in page:
                    found[run.info.run_id] = _run_record(run, experiments)
            token = page.token
            if not token:
                break
    return found


# --------------------------------------------------------------------------------------------------
# Webhooks: registering the console's receiver in MLflow.
# --------------------------------------------------------------------------------------------------

# Every registry event MLflow 3 can deliver (no stage transitions, deletions or description edits).
WEBHOOK_EVENTS = (
    "registered_model.created",
    "model_version.created",
    "model_version_tag.set",
    "model_version_tag.deleted",
    "model_version_alias.created",
    "model_version_alias.deleted",
)


@dataclass(frozen=True)
class WebhookInfo:
    webhook_id: str
    name: str
    url: str
    events: tuple[str, ...]
    status: str
    created: bool  # False when an existing webhook of that name was updated


def register_webhook(*, name: str, url: str, secret: str, events: tuple[str, ...] = WEBHOOK_EVENTS,
                     description: str = "", uri: str | None = None) -> WebhookInfo:
    """Create the webhook, or update the one with this name (so re-running is safe)."""
    client = _client(uri)
    with _reading(web_budget()):
        existing = None
        token = None
        while existing is None:
            page = client.list_webhooks(max_results=100, page_token=token)
            existing = next((w for w in page if w.name == name), None)
            token = page.token
            if not token:
                break
        if existing is None:
            hook = client.create_webhook(name=name, url=url, events=list(events), description=description,
                                         secret=secret, status="ACTIVE")
        else:
            hook = client.update_webhook(existing.webhook_id, url=url, events=list(events),
                                         description=description, secret=secret, status="ACTIVE")
    status = str(getattr(hook.status, "value", hook.status))
    return WebhookInfo(webhook_id=hook.webhook_id, name=hook.name, url=hook.url,
                       events=tuple(str(e) for e in hook.events), status=status, created=existing is None)


# --------------------------------------------------------------------------------------------------
# Metric histories: read by the sync for the comparison's curves.
# --------------------------------------------------------------------------------------------------

HISTORY_RUNS_MAX = 100  # run ids per bulk history request (MLflow's limit)
HISTORY_POINTS_MAX = 2500  # points per run of a sampled request (MLflow's limit)
HISTORY_BULK_POINTS = 25_000  # points per full-history request (MLflow's limit: beyond it, cut short)
_HISTORY_BULK = "/ajax-api/2.0/mlflow/metrics/get-history-bulk"
_HISTORY_SAMPLED = "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"


def metric_history_bulk(run_ids: list[str], key: str, *, max_points: int = 1000, sampled: bool = False,
                        uri: str | None = None, budget: Budget | None = None) -> dict[str, list[list]]:
    """The history of metric `key` for up to HISTORY_RUNS_MAX runs in one request:
    {run_id: [[step, value, timestamp_ms], ...]} ordered by step. One request per (runs, key) instead
    of one per (run, key), through the endpoints MLflow's own UI draws its charts from: every point
    (one SQL query on MLflow's side; the caller keeps the batch under HISTORY_BULK_POINTS), or with
    `sampled` at most `max_points` a run, evenly sampled by MLflow keeping the first and last (a query
    per run on its side: for the histories too long to read whole). A full read that came back cut
    short is read again sampled. A server without these endpoints (older MLflow) is read run by run.
    Non-finite values become None. Raises MlflowUnavailable."""
    configure()
    from mlflow.utils import rest_utils
    from mlflow.utils.credentials import get_default_host_creds

    ids = list(dict.fromkeys(r for r in run_ids if r))[:HISTORY_RUNS_MAX]
    out: dict[str, list[list]] = {r: [] for r in ids}
    if not ids:
        return out
    points = max(1, min(int(max_points), HISTORY_POINTS_MAX))
    uri = uri or tracking_uri()
    if not uri.startswith(("http://", "https://")):  # a local store (the demo's SQLite file) has no REST endpoint
        return {r: rows[:points] for r, rows in _histories_one_by_one(ids, key, uri, budget).items()}
    if sampled:
        endpoint, params = _HISTORY_SAMPLED, {"run_ids": ids, "metric_key": key, "max_results": points}
    else:
        endpoint, params = _HISTORY_BULK, {"run_id": ids, "metric_key": key, "max_results": HISTORY_BULK_POINTS}
    with _reading(budget, f"reading the history of {key!r}", uri):
        response = rest_utils.http_request(get_default_host_creds(uri), endpoint, "GET", params=params,
                                           raise_on_status=False)
        if response.status_code == 404:  # no such endpoint (a run MLflow lacks just has no points)
            return {r: rows[:points] for r, rows in _histories_one_by_one(ids, key, uri, budget).items()}
        rest_utils.verify_rest_response(response, endpoint)
        metrics = response.json().get("metrics", [])
    if not sampled and len(metrics) >= HISTORY_BULK_POINTS:
        return metric_history_bulk(ids, key, max_points=points, sampled=True, uri=uri, budget=budget)
    for m in metrics:
        if m.get("run_id") in out:
            value = m.get("value")
            value = float(value) if isinstance(value, int | float) and math.isfinite(value) else None
            out[m["run_id"]].append([int(m.get("step", 0)), value, int(m.get("timestamp", 0))])
    for rows in out.values():
        rows.sort(key=lambda r: (r[0], r[2]))
    return out


def _histories_one_by_one(run_ids: list[str], key: str, uri: str, budget: Budget | None) -> dict[str, list[list]]:
    out = {}
    for run_id in run_ids:
        out[run_id] = metric_histories(run_id, [key], uri=uri, budget=budget or sync_budget()).get(key, [])
    return out


def metric_histories(run_id: str, keys: list[str], *, uri: str | None = None,
                     budget: Budget | None = None) -> dict[str, list[list]]:
    """Every logged value of `keys` for one run: {key: [[step, value, timestamp_ms], ...]} by step.

    Non-finite values become None (JSON has no NaN). A run MLflow no longer has gives empty lists.
    Raises MlflowUnavailable when MLflow cannot answer within the budget (web budget by default).
    """
    configure()
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
# Deploy: the only writes governance makes to MLflow, and their confirmation reads.
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionState:
    """One model version as MLflow reports it now."""

    name: str
    version: int
    stage: str
    status: str
    source: str
    run_id: str
    tags: dict


@dataclass(frozen=True)
class ModelPointers:
    """Where a registered model's aliases point and the stage of each version, as MLflow reports it."""

    aliases: dict  # alias -> version (int)
    stages: dict  # version (int) -> stage
    tags: dict = field(default_factory=dict)  # version (int) -> {key: value}
    updated_ms: dict = field(default_factory=dict)  # version (int) -> MLflow's last_updated_timestamp

    def stage_holders(self, stage: str) -> list[int]:
        return sorted(v for v, s in self.stages.items() if s == stage)


@contextlib.contextmanager
def _deploy_call(budget: Budget | None, what: str = "", uri: str | None = None) -> Iterator[None]:
    """Short explicit budget; every failure to talk to MLflow becomes MlflowUnavailable, in one line."""
    configure()
    where = f" ({what} at {uri or tracking_uri()})" if what else ""
    with _budget(budget or web_budget()), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # stages are deprecated, still governed
        try:
            yield
        except MlflowUnavailable:
            raise
        except Exception as exc:  # MLflow errors, connection refused, timeouts, bad gateway
            raise MlflowUnavailable(f"MLflow unreachable{where}: {why(exc)}") from exc


def read_version(name: str, version: int, *, budget: Budget | None = None,
                 uri: str | None = None) -> VersionState | None:
    """The version as MLflow has it now; None when MLflow has no such version."""
    configure()
    from mlflow.exceptions import MlflowException

    with _deploy_call(budget, f"reading {name} v{version}", uri):
        try:
            mv = _client(uri).get_model_version(name, str(version))
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        return VersionState(name=mv.name, version=int(mv.version), stage=mv.current_stage or "None",
                            status=str(mv.status or ""), source=mv.source or "", run_id=mv.run_id or "",
                            tags=dict(mv.tags or {}))


def read_model_pointers(name: str, *, budget: Budget | None = None, uri: str | None = None) -> ModelPointers:
    """Aliases (normalised to int versions) and every version's stage of one registered model."""
    with _deploy_call(budget, f"reading the versions and aliases of {name}", uri):
        client = _client(uri)
        model = client.get_registered_model(name)
        aliases = {alias: int(v) for alias, v in (model.aliases or {}).items()}
        stages, tags, updated, token = {}, {}, {}, None
        quoted = name.replace("\\", "\\\\").replace("'", "\\'")
        while True:
            page = client.search_model_versions(f"name='{quoted}'", max_results=1000, page_token=token)
            for mv in page:
                stages[int(mv.version)] = mv.current_stage or "None"
                tags[int(mv.version)] = dict(mv.tags or {})
                updated[int(mv.version)] = mv.last_updated_timestamp
            token = page.token
            if not token:
                break
        return ModelPointers(aliases=aliases, stages=stages, tags=tags, updated_ms=updated)


@dataclass(frozen=True)
class VersionEvidence:
    """One version as a decision judges it, read from MLflow at that moment: the version (status, run
    id, stage, tags), the aliases pointing at it, and its run (None: the version names no run, or
    MLflow no longer has it; a deleted run is still returned, with lifecycle_stage "deleted")."""

    version: VersionRecord
    aliases: tuple[str, ...]
    run: RunRecord | None


@dataclass(frozen=True)
class DecisionEvidence:
    """What a promotion decision judges, read from MLflow in one pass: the candidate version and the
    current holder of the target (the incumbent), each with its run; None where MLflow has none."""

    model: str
    read_at: datetime
    candidate: VersionEvidence | None
    incumbent: VersionEvidence | None


def read_decision_evidence(name: str, version: int, *, target_stage: str = "", target_alias: str = "",
                           budget: Budget | None = None, uri: str | None = None) -> DecisionEvidence:
    """The candidate `version` of model `name` and the incumbent of the target (the version the alias
    points at; for a stage, its newest version in that stage), each with its run's lifecycle stage,
    status, latest metrics, params, tags and dataset inputs, as MLflow reports them now. Raises
    MlflowUnavailable when MLflow does not answer: a decision is never made on anything else.

    One model-wide listing of versions rather than a read per version: it gives the stage holders
    and the candidate from the same answer."""
    configure()
    from mlflow.exceptions import MlflowException

    with _deploy_call(budget, f"reading the evidence for {name} v{version}", uri):
        client = _client(uri)
        try:
            model = client.get_registered_model(name)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return DecisionEvidence(model=name, read_at=datetime.now(tz=UTC), candidate=None, incumbent=None)
            raise
        aliases = {str(alias): int(v) for alias, v in (model.aliases or {}).items()}
        versions: dict[int, VersionRecord] = {}
        token = None
        quoted = name.replace("\\", "\\\\").replace("'", "\\'")
        while True:
            page = client.search_model_versions(f"name='{quoted}'", max_results=1000, page_token=token)
            for mv in page:
                if mv.name == name:
                    versions[int(mv.version)] = _version_record(mv)
            token = page.token
            if not token:
                break
        if target_alias:
            held = aliases.get(target_alias)
        elif target_stage:
            held = max((v for v, r in versions.items() if r.stage == target_stage), default=None)
        else:
            held = None
        runs: dict[str, RunRecord | None] = {}

        def run_of(record: VersionRecord) -> RunRecord | None:
            if not record.run_id:
                return None
            if record.run_id not in runs:
                try:
                    runs[record.run_id] = _run_record(client.get_run(record.run_id), {})
                except MlflowException as exc:
                    if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                        raise
                    runs[record.run_id] = None  # deleted and garbage-collected: MLflow has no such run
            return runs[record.run_id]

        def evidence(number: int | None) -> VersionEvidence | None:
            record = versions.get(number) if number is not None else None
            if record is None:
                return None
            return VersionEvidence(version=record, run=run_of(record),
                                   aliases=tuple(sorted(a for a, v in aliases.items() if v == number)))

        return DecisionEvidence(model=name, candidate=evidence(int(version)), incumbent=evidence(held),
                                read_at=datetime.now(tz=UTC))


def _never_sent(exc: BaseException) -> bool:
    """The connection was never made, so the request never reached MLflow (refused, no route, connect
    timeout). Anything later (read timeout, reset, a 5xx) may come after MLflow applied the write."""
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    seen: set[int] = set()
    stack: list[object] = [exc]
    while stack:
        item = stack.pop()
        if id(item) in seen or item is None:
            continue
        seen.add(id(item))
        if isinstance(item, NewConnectionError | ConnectTimeoutError | ConnectionRefusedError):
            return True
        if isinstance(item, BaseException):
            stack.extend([item.__cause__, item.__context__, getattr(item, "reason", None), *item.args])
    return False


def _refused_by_mlflow(exc: BaseException) -> bool:
    """MLflow answered with a client error (4xx): it refused the write, nothing changed."""
    configure()
    from mlflow.exceptions import MlflowException

    if not isinstance(exc, MlflowException):  # transport failures arrive as INTERNAL_ERROR (500)
        return False
    try:
        return 400 <= exc.get_http_status_code() < 500
    except Exception:  # noqa: BLE001 - an unknown code: do not presume it was refused
        return False


def _send_write(what: str, send, landed, *, name: str, uri: str | None, read_back=None) -> None:
    """Send one write with no HTTP-level retry. When no usable answer comes back, read MLflow and
    decide from what it shows: there -> landed; not there -> not applied (MlflowUnavailable, the
    caller may send it again later); MLflow unreadable -> WriteOutcomeUnknown. `read_back` (default:
    the model's pointers) is what `landed` judges."""
    where = uri or tracking_uri()
    try:
        with _budget(write_budget()), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # stages are deprecated, still governed
            send(_client(uri))
        return
    except Exception as exc:  # noqa: BLE001 - classified below, never swallowed
        error = exc
    if _never_sent(error):
        raise MlflowUnavailable(f"{what} at {where} not sent: {why(error)}") from error
    if _refused_by_mlflow(error):
        raise MlflowUnavailable(f"{what} at {where} refused by MLflow: {getattr(error, 'message', error)}") from error
    try:
        pointers = read_back() if read_back else read_model_pointers(name, budget=web_budget(), uri=uri)
    except MlflowUnavailable as read_error:
        raise WriteOutcomeUnknown(f"{what} at {where}: no answer ({why(error)}); reading it back failed "
                                  f"too ({read_error})") from error
    if landed(pointers):
        return
    raise MlflowUnavailable(f"{what} at {where}: no answer ({why(error)}); read back, MLflow does not "
                            "show it: not applied") from error


def _mark(name: str, version: int, marker: tuple[str, str] | None, pointers: ModelPointers,
          uri: str | None) -> bool:
    if marker is None or pointers.tags.get(version, {}).get(marker[0]) == marker[1]:
        return False
    key, value = marker
    _send_write(f"setting tag {key} on {name} v{version}",
                lambda c: c.set_model_version_tag(name, str(version), key, value),
                lambda p: p.tags.get(version, {}).get(key) == value, name=name, uri=uri)
    return True


def deploy_stage(name: str, version: int, stage: str, *, archive_existing: bool = False,
                 current: ModelPointers | None = None, marker: tuple[str, str] | None = None,
                 budget: Budget | None = None, uri: str | None = None) -> bool:
    """Move a version to a stage, after marking the version with `marker` (key, value) so a reader can
    tell this write from anyone else's. Idempotent: no move is sent when MLflow already shows the
    result (`current`: pointers just read, saves a read). Returns whether a move was sent."""
    pointers = current or read_model_pointers(name, budget=budget, uri=uri)

    def landed(p: ModelPointers) -> bool:
        others = [v for v in p.stage_holders(stage) if v != version] if archive_existing else []
        return p.stages.get(version) == stage and not others

    _mark(name, version, marker, pointers, uri)
    if landed(pointers):
        return False
    _send_write(f"moving {name} v{version} to stage {stage}",
                lambda c: c.transition_model_version_stage(name, str(version), stage,
                                                           archive_existing_versions=archive_existing),
                landed, name=name, uri=uri)
    return True


def deploy_alias(name: str, alias: str, version: int, *, current: ModelPointers | None = None,
                 marker: tuple[str, str] | None = None, budget: Budget | None = None,
                 uri: str | None = None) -> bool:
    """Point an alias at a version, after marking the version (see deploy_stage). Idempotent: no move
    is sent when it already points there. Returns whether a move was sent."""
    return _point_alias(name, alias, version, current=current, marker=marker, budget=budget, uri=uri)


def deploy_rollback_alias(name: str, alias: str, version: int, *, current: ModelPointers | None = None,
                          marker: tuple[str, str] | None = None, budget: Budget | None = None,
                          uri: str | None = None) -> bool:
    """The rollback alias a deploy gives the previous holder of the target it takes, in the same
    attempt and with the same kind of mark (under the rollback alias's key)."""
    return _point_alias(name, alias, version, current=current, marker=marker, budget=budget, uri=uri)


def _point_alias(name: str, alias: str, version: int, *, current: ModelPointers | None,
                 marker: tuple[str, str] | None, budget: Budget | None, uri: str | None) -> bool:
    pointers = current or read_model_pointers(name, budget=budget, uri=uri)
    _mark(name, version, marker, pointers, uri)
    if pointers.aliases.get(alias) == version:
        return False
    _send_write(f"setting alias @{alias} of {name} to v{version}",
                lambda c: c.set_registered_model_alias(name, alias, str(version)),
                lambda p: p.aliases.get(alias) == version, name=name, uri=uri)
    return True


def deploy_unalias(name: str, alias: str, version: int, *, current: ModelPointers | None = None,
                   marker: tuple[str, str] | None = None, budget: Budget | None = None,
                   uri: str | None = None) -> bool:
    """Remove alias `alias` from `version`, after marking the version (see deploy_stage). Idempotent: no
    removal is sent when the alias no longer points there; refused (WriteRefused) when it points at
    another version, which is somebody else's to move. Returns whether a removal was sent."""
    pointers = current or read_model_pointers(name, budget=budget, uri=uri)
    held = pointers.aliases.get(alias)
    if held is not None and held != version:
        raise WriteRefused(f"@{alias} of {name} points at v{held}, not v{version}: not removed")
    _mark(name, version, marker, pointers, uri)
    if held is None:
        return False
    _send_write(f"removing alias @{alias} of {name} from v{version}",
                lambda c: c.delete_registered_model_alias(name, alias),
                lambda p: p.aliases.get(alias) != version, name=name, uri=uri)
    return True


def deploy_delete(name: str, version: int, *, budget: Budget | None = None, uri: str | None = None) -> bool:
    """Delete a version, which must be Archived and hold no alias in MLflow's state read right before
    the call (WriteRefused otherwise). No mark: the version and its tags go together, so a reader
    recognises the deletion by the version's absence. Idempotent: nothing is sent when the version is
    gone already. Returns whether a deletion was sent."""
    pointers = read_model_pointers(name, budget=budget, uri=uri)
    if version not in pointers.stages:
        return False
    held = sorted(a for a, v in pointers.aliases.items() if v == version)
    if pointers.stages[version] != "Archived" or held:
        where = f"stage {pointers.stages[version]}" + (f", aliases {', '.join('@' + a for a in held)}" if held else "")
        raise WriteRefused(f"{name} v{version} holds {where} in MLflow: a version is deleted only when "
                           "it is Archived and holds no alias; nothing was sent")
    _send_write(f"deleting {name} v{version}",
                lambda c: c.delete_model_version(name, str(version)),
                lambda p: version not in p.stages, name=name, uri=uri)
    return True


def set_version_tags(name: str, version: int, tags: dict[str, str], *, uri: str | None = None) -> None:
    """Write version tags that MLflow's users see (a deploy's write-back). Each set is idempotent, so
    a lost answer is harmless; still sent without HTTP retries, like every write."""
    for key, value in tags.items():
        _send_write(f"setting tag {key} on {name} v{version}",
                    lambda c, k=key, v=value: c.set_model_version_tag(name, str(version), k, v),
                    lambda p, k=key, v=value: p.tags.get(version, {}).get(k) == v, name=name, uri=uri)


@dataclass(frozen=True)
class VersionText:
    description: str
    tags: dict


def read_version_text(name: str, version: int, *, budget: Budget | None = None,
                      uri: str | None = None) -> VersionText | None:
    """A version's description and tags as MLflow has them now (None: no such version)."""
    configure()
    from mlflow.exceptions import MlflowException

    with _deploy_call(budget, f"reading {name} v{version}", uri):
        try:
            mv = _client(uri).get_model_version(name, str(version))
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        return VersionText(description=mv.description or "", tags=dict(mv.tags or {}))


def write_version_description(name: str, version: int, description: str, *, tags: dict[str, str] | None = None,
                              uri: str | None = None) -> bool:
    """Make a version's description `description` (a model card) and set `tags` (the link back to
    it). Reads MLflow first and sends only what differs, once, without HTTP retries; a lost answer is
    settled by reading the version back (see _send_write). WriteRefused when MLflow has no such
    version. Returns whether the description was sent."""
    current = read_version_text(name, version, uri=uri)
    if current is None:
        raise WriteRefused(f"{name} v{version} does not exist in MLflow: nothing was sent")

    def read_back() -> VersionText:
        return read_version_text(name, version, budget=web_budget(), uri=uri) or VersionText("", {})

    sent = current.description != description
    if sent:
        _send_write(f"writing the description of {name} v{version}",
                    lambda c: c.update_model_version(name, str(version), description=description),
                    lambda v: v.description == description, name=name, uri=uri, read_back=read_back)
    for key, value in (tags or {}).items():
        if current.tags.get(key) != value:
            _send_write(f"setting tag {key} on {name} v{version}",
                        lambda c, k=key, v=value: c.set_model_version_tag(name, str(version), k, v),
                        lambda t, k=key, v=value: t.tags.get(k) == v, name=name, uri=uri, read_back=read_back)
    return sent


# --------------------------------------------------------------------------------------------------
# Writing runs and versions: used by the demo (and nothing on a request path).
# --------------------------------------------------------------------------------------------------


def registered_model_tags(name: str, *, uri: str | None = None) -> dict[str, str] | None:
    """The model's tags, or None when MLflow has no such registered model."""
    configure()
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
    import json
    import time

    configure()
    import mlflow
    import mlflow.data
    import mlflow.sklearn
    from mlflow.entities import Metric
    from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

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
        # One batch for the whole history: a log_metric call per step is a store commit per step,
        # which was half of the demo's set-up time (about 1,800 steps over its ten runs).
        now_ms = int(time.time() * 1000)
        client.log_batch(run.info.run_id, metrics=[
            Metric(key, float(value), now_ms, step)
            for key, values in record.history.items() for step, value in enumerate(values)
        ])
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
            # Pinned to what trained it: validation's `deps pinned` check wants exact versions.
            pip_requirements=_pinned("scikit-learn", "pandas", "numpy"),
            # We trained this model ourselves in this process; skops asks us to vouch for tree nodes.
            skops_trusted_types=["sklearn.tree._tree.Tree"],
        )
        # Registered here rather than through log_model(registered_model_name=...): that path first
        # tries to create the registered model and prints "already exists" to stderr for every
        # version. Same source, run and logged-model link as MLflow's own registration.
        created = client.create_model_version(registered_model, source=info.model_uri, run_id=run.info.run_id,
                                              model_id=info.model_id)
        linked = json.loads(client.get_logged_model(info.model_id).tags.get(MLFLOW_MODEL_VERSIONS) or "[]")
        client.set_logged_model_tags(info.model_id, {MLFLOW_MODEL_VERSIONS: json.dumps(
            [*linked, {"name": created.name, "version": created.version}])})
    return run.info.run_id, int(created.version)


def set_version_stage(name: str, version: int, stage: str, *, archive_existing: bool = False,
                      uri: str | None = None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # stages are deprecated, still governed
        _client(uri).transition_model_version_stage(name, str(version), stage,
                                                    archive_existing_versions=archive_existing)


def set_alias(name: str, alias: str, version: int, *, uri: str | None = None) -> None:
    _client(uri).set_registered_model_alias(name, alias, str(version))


def delete_alias(name: str, alias: str, *, uri: str | None = None) -> None:
    _client(uri).delete_registered_model_alias(name, alias)


def delete_version(name: str, version: int, *, uri: str | None = None) -> None:
    _client(uri).delete_model_version(name, str(version))


def set_version_tag(name: str, version: int, key: str, value: str, *, uri: str | None = None) -> None:
    _client(uri).set_model_version_tag(name, str(version), key, value)


def set_version_description(name: str, version: int, description: str, *, uri: str | None = None) -> None:
    _client(uri).update_model_version(name, str(version), description=description)


def write_version_tags(name: str, version: int, tags: dict[str, str], *, uri: str | None = None) -> None:
    """Set several tags on one version (a validation's results shown in MLflow's own UI); one line
    MlflowUnavailable when MLflow does not take them. A tag write is idempotent, so retrying is safe."""
    with _deploy_call(web_budget(), f"writing tags on {name} v{version}", uri):
        client = _client(uri)
        for key, value in tags.items():
            client.set_model_version_tag(name, str(version), key, str(value))


@dataclass(frozen=True)
class ModelNeeds:
    """What a version needs to run, from its MLmodel and requirement files in MLflow's artifacts."""

    signature: dict | None
    input_example: dict | None
    requirements: list
    python_version: str
    flavors: list
    artifact_location: str
    mlflow_version: str


def read_model_needs(name: str, version: int, *, uri: str | None = None, budget: Budget | None = None) -> ModelNeeds:
    """Read the small files of a version's model (MLmodel, requirements.txt, conda.yaml, the input
    example) under the web budget, never the model's weights. MlflowUnavailable when MLflow does not answer."""
    import tempfile

    from registry_ui.mirror.validate_child import _requirements

    with _deploy_call(budget or web_budget(), f"reading the model files of {name} v{version}", uri), \
            tempfile.TemporaryDirectory() as tmp:
        import mlflow
        from mlflow.models import Model

        where = uri or tracking_uri()
        client = _client(where)
        mv = client.get_model_version(name, str(version))
        base = client.get_model_version_download_uri(name, str(version)).rstrip("/")

        def fetch(path: str) -> None:
            mlflow.artifacts.download_artifacts(artifact_uri=f"{base}/{path}", dst_path=tmp, tracking_uri=where)

        fetch("MLmodel")
        meta = Model.load(tmp)
        for extra in ("requirements.txt", "conda.yaml", getattr(meta, "saved_input_example_info", None) and
                      meta.saved_input_example_info.get("artifact_path")):
            if extra:
                try:
                    fetch(extra)
                except Exception:  # noqa: S112 - an absent file is shown as absent
                    continue
        example = None
        try:
            loaded = meta.load_input_example(tmp)
            if loaded is not None:
                example = {"rows": loaded.head(3).to_dict(orient="records")} if hasattr(loaded, "head") \
                    else {"value": str(loaded)[:500]}
        except Exception:  # noqa: S110 - shown as "no input example"
            pass
        sig = meta.signature
        return ModelNeeds(
            signature={"inputs": sig.inputs.to_dict() if sig.inputs else None,
                       "outputs": sig.outputs.to_dict() if sig.outputs else None} if sig else None,
            input_example=example, requirements=_requirements(tmp),
            python_version=meta.flavors.get("python_function", {}).get("python_version", ""),
            flavors=sorted(meta.flavors), artifact_location=mv.source or "", mlflow_version=meta.mlflow_version or "")


def _pinned(*names: str) -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in names]


def log_evaluation_dataset(frame, *, experiment: str, name: str, target: str, artifact_root: str,
                           uri: str | None = None) -> str:
    """Log a held-out table as a CSV artifact of a run of its own, and as that run's dataset input
    (mlflow.data, so MLflow shows its digest). Returns the artifact URI a validation policy names."""
    import tempfile
    from pathlib import Path

    configure()
    import mlflow
    import mlflow.data

    uri = uri or tracking_uri()
    mlflow.set_tracking_uri(uri)
    client = _client(uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(
        experiment, artifact_location=f"{artifact_root}/{experiment}")
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(experiment_id=experiment_id, run_name=name) as run:
        path = Path(tmp) / f"{name}.csv"
        frame.to_csv(path, index=False)
        mlflow.log_artifact(str(path), "eval")
        mlflow.log_input(mlflow.data.from_pandas(frame, name=name, targets=target), context="evaluation")
    return f"runs:/{run.info.run_id}/eval/{name}.csv"
