"""The validation child: `python -m registry_ui.mirror.validate_child` reads one job (JSON) on stdin
and writes one result (JSON) on the stdout it was given; everything else it or a library prints goes
to stderr.

It runs in its own process, started by registry_ui.mirror.validation.run_job with a wall-clock limit,
under an address-space limit it sets on itself before importing anything heavy: a model that hangs,
crashes or allocates without end takes this process down, never the worker that started it.

It imports mlflow (allowed by the import contract for this module only): it loads the candidate and
the incumbent with mlflow.pyfunc, scores both with mlflow.models.evaluate and judges the candidate with
MetricThreshold through mlflow.validate_evaluation_results; it times prediction, compares prediction
distributions (PSI, KS via scipy), checks the signature, the input example and the pinned requirements.
Evaluation runs are logged to a throw-away local store: validation never writes the registry's server.

Job: {"tracking_uri", "candidate": {"name", "version"}, "incumbent": {...} | null, "spec": {...},
"memory_mb"}. Spec keys (all optional but "dataset"): dataset (an artifact URI: runs:/<run>/<path>,
or a dataset logged with mlflow.data: dataset:<run_id>/<name>), target, model_type, thresholds
{metric: {"min"|"max": x}}, relative {metric: {"max_drop": x} | {"min_gain": x}}, latency {batch_size,
warmup, repeats}, max_latency_p95_ms, max_psi, max_ks, class_rate {"min", "max"}, require_signature,
require_pinned.
"""

from __future__ import annotations

import json
import os
import sys
import time

_started = time.monotonic()


def _limit_memory(mb: int) -> None:
    if mb:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (mb * 1024 * 1024, mb * 1024 * 1024))


def _peak_rss_mb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def _check(name, passed, detail, value=None, limit=None) -> dict:
    return {"name": name, "passed": bool(passed), "detail": detail, "value": value, "limit": limit}


def _num(x):
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return None if x != x else round(x, 6)


# --------------------------------------------------------------------------------------------------
# Reading the model and the dataset
# --------------------------------------------------------------------------------------------------


def _requirements(local: str) -> list[dict]:
    """Each requirement of requirements.txt and of conda.yaml's pip list, marked pinned (==) or not.
    conda's own `python=` and `pip` lines are the interpreter and the installer, not inference
    dependencies, and are not judged."""
    import re

    import yaml

    pinned = re.compile(r"^[A-Za-z0-9_.\-]+(\[[A-Za-z0-9_,.\-]+\])?==[^=<>!~*,;\s]+(\s*;.*)?$")
    found: list[dict] = []
    req = os.path.join(local, "requirements.txt")
    if os.path.exists(req):
        with open(req) as fh:
            for line in fh:
                line = line.split("#", 1)[0].strip()
                if line and not line.startswith("-"):
                    found.append({"file": "requirements.txt", "line": line, "pinned": bool(pinned.match(line))})
    conda = os.path.join(local, "conda.yaml")
    if os.path.exists(conda):
        with open(conda) as fh:
            env = yaml.safe_load(fh) or {}
        for dep in env.get("dependencies") or []:
            if isinstance(dep, dict):
                for line in dep.get("pip") or []:
                    line = str(line).strip()
                    if line and not line.startswith("-"):
                        found.append({"file": "conda.yaml", "line": line, "pinned": bool(pinned.match(line))})
    return found


def _describe_model(local: str, source: str) -> dict:
    from mlflow.models import Model

    meta = Model.load(local)
    sig = meta.signature
    example = None
    try:
        loaded = meta.load_input_example(local)
        if loaded is not None:
            example = loaded.head(3).to_dict(orient="records") if hasattr(loaded, "head") else loaded
    except Exception as exc:  # a missing or unreadable example is reported, not fatal
        example = {"error": str(exc)[:300]}
    pyfunc = meta.flavors.get("python_function", {})
    return {
        "signature": {"inputs": sig.inputs.to_dict() if sig and sig.inputs else None,
                      "outputs": sig.outputs.to_dict() if sig and sig.outputs else None} if sig else None,
        "input_example": example,
        "requirements": _requirements(local),
        "python_version": pyfunc.get("python_version", ""),
        "flavors": sorted(meta.flavors),
        "artifact_location": source,
        "mlflow_version": meta.mlflow_version or "",
    }


def _download_model(client, name: str, version: int, dst: str) -> tuple[str, str]:
    import mlflow

    mv = client.get_model_version(name, str(version))
    path = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=dst)
    return path, mv.source


def _load_dataset(uri: str, dst: str):
    """(DataFrame, sha256 of the file, how it was found). `dataset:<run_id>/<name>`: a dataset
    logged to the run with mlflow.data, loaded from its recorded source."""
    import hashlib

    import mlflow
    import pandas as pd

    if uri.startswith("dataset:"):
        run_id, _, name = uri.removeprefix("dataset:").partition("/")
        run = mlflow.MlflowClient().get_run(run_id)
        matches = [d.dataset for d in run.inputs.dataset_inputs if d.dataset.name == name]
        if not matches:
            raise ValueError(f"run {run_id} has no dataset input named {name!r}")
        ds = mlflow.data.get_source(matches[0])
        path = ds.load(dst_path=dst)
        mlflow_digest = f"{matches[0].name}@{matches[0].digest}"
    else:
        path = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=dst)
        mlflow_digest = ""
        if uri.startswith("runs:/"):
            # The run that holds the file may also have logged it with mlflow.data: show that digest too.
            run = mlflow.MlflowClient().get_run(uri.removeprefix("runs:/").split("/", 1)[0])
            inputs = [d.dataset for d in (run.inputs.dataset_inputs if run.inputs else [])]
            if len(inputs) == 1:
                mlflow_digest = f"{inputs[0].name}@{inputs[0].digest}"
    with open(path, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    frame = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
    return frame, digest, mlflow_digest


# --------------------------------------------------------------------------------------------------
# Scoring, timing, distributions
# --------------------------------------------------------------------------------------------------


def _scores(model, features):
    """A continuous score per row (the positive class's probability when the model has one) and the
    predicted labels."""
    import numpy as np

    labels = np.asarray(model.predict(features)).reshape(len(features), -1)[:, 0]
    raw = None
    try:
        raw = model.get_raw_model()
    except Exception:  # noqa: S110 - a flavor without a raw model: the prediction is the score
        pass
    if raw is not None and hasattr(raw, "predict_proba"):
        proba = np.asarray(raw.predict_proba(features))
        return proba[:, -1].astype(float), labels
    return labels.astype(float), labels


def _latency(model, features, batch: int, warmup: int, repeats: int) -> dict:
    import numpy as np

    n = len(features)
    rows = [features.iloc[[(i * batch + j) % n for j in range(batch)]] for i in range(max(1, repeats))]
    for i in range(warmup):
        model.predict(rows[i % len(rows)])
    times = []
    for chunk in rows:
        t = time.perf_counter()
        model.predict(chunk)
        times.append((time.perf_counter() - t) * 1000)
    p50, p95, p99 = np.percentile(times, [50, 95, 99])
    return {"batch_size": batch, "repeats": len(times), "p50_ms": round(float(p50), 3),
            "p95_ms": round(float(p95), 3), "p99_ms": round(float(p99), 3)}


def _psi(expected, actual, bins: int = 10) -> float:
    """Population stability index of `actual` against `expected` on the expected's quantile bins."""
    import numpy as np

    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)))
    if len(edges) < 3:  # a (near) constant reference: fall back to equal-width bins over both
        lo, hi = float(min(expected.min(), actual.min())), float(max(expected.max(), actual.max()))
        edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
    edges[0], edges[-1] = -np.inf, np.inf
    e = np.histogram(expected, edges)[0] / len(expected)
    a = np.histogram(actual, edges)[0] / len(actual)
    e, a = np.clip(e, 1e-4, None), np.clip(a, 1e-4, None)
    return float(np.sum((a - e) * np.log(a / e)))


def _histogram(candidate, incumbent, bins: int = 20) -> dict:
    import numpy as np

    values = np.concatenate([candidate] + ([incumbent] if incumbent is not None else []))
    lo, hi = float(values.min()), float(values.max())
    edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
    return {"edges": [round(float(x), 6) for x in edges],
            "candidate": np.histogram(candidate, edges)[0].tolist(),
            "incumbent": np.histogram(incumbent, edges)[0].tolist() if incumbent is not None else None}


def _skip_evaluation_plots() -> None:
    """The console keeps evaluate()'s numbers, not its images: the default evaluator's matplotlib
    plots (ROC, PR, lift, calibration, confusion matrix) cost about 3.7 s of CPU per model and have no
    switch. They are private methods; a later MLflow without them simply draws them again."""
    from mlflow.models.evaluation.evaluators import classifier

    for name in ("_log_binary_classifier_artifacts", "_log_multiclass_classifier_artifacts", "_log_confusion_matrix"):
        if hasattr(classifier.ClassifierEvaluator, name):
            setattr(classifier.ClassifierEvaluator, name, lambda self: None)


def _evaluate(model, frame, target: str, model_type: str):
    import mlflow

    with mlflow.start_run():
        return mlflow.models.evaluate(model, frame, targets=target, model_type=model_type,
                                      evaluator_config={"log_model_explainability": False})


def _threshold_checks(spec: dict, cand_result, inc_result) -> list[dict]:
    """Each threshold judged by MLflow's own MetricThreshold. A relative rule "no worse than the
    incumbent by more than d" is a threshold at (incumbent - d): MetricThreshold's min_absolute_change
    must be positive, i.e. it can only demand an improvement (a "min_gain")."""
    import mlflow
    from mlflow.models import MetricThreshold
    from mlflow.models.evaluation.validation import ModelValidationFailedException

    def judge(name: str, metric: str, threshold: MetricThreshold, baseline, value, limit) -> dict:
        if metric not in cand_result.metrics:
            return _check(name, False, f"the evaluation produced no {metric}", None, limit)
        try:
            mlflow.validate_evaluation_results({metric: threshold}, cand_result, baseline)
            return _check(name, True, f"{metric} = {value} (required {limit})", value, limit)
        except ModelValidationFailedException as exc:
            return _check(name, False, str(exc).strip(), value, limit)

    checks = []
    cand = cand_result.metrics
    for metric, bounds in sorted((spec.get("thresholds") or {}).items()):
        value = _num(cand.get(metric))
        if "min" in bounds:
            checks.append(judge(f"metric:{metric}", metric, MetricThreshold(threshold=float(bounds["min"]),
                                greater_is_better=True), None, value, f">= {bounds['min']}"))
        if "max" in bounds:
            checks.append(judge(f"metric:{metric}", metric, MetricThreshold(threshold=float(bounds["max"]),
                                greater_is_better=False), None, value, f"<= {bounds['max']}"))
    for metric, rule in sorted((spec.get("relative") or {}).items()):
        name = f"vs_incumbent:{metric}"
        value = _num(cand.get(metric))
        if inc_result is None:
            checks.append(_check(name, True, "no incumbent holds the target: nothing to compare with", value))
            continue
        base = _num(inc_result.metrics.get(metric))
        higher = bool(rule.get("higher_is_better", True))
        if base is None:
            checks.append(_check(name, True, f"the incumbent has no {metric}: nothing to compare with", value))
        elif "min_gain" in rule:
            checks.append(judge(name, metric, MetricThreshold(min_absolute_change=float(rule["min_gain"]),
                                greater_is_better=higher), inc_result, value,
                                f"incumbent {base} {'+' if higher else '-'} {rule['min_gain']}"))
        else:
            drop = float(rule.get("max_drop", 0))
            limit = base - drop if higher else base + drop
            checks.append(judge(name, metric, MetricThreshold(threshold=limit, greater_is_better=higher), None,
                                value, f"{'>=' if higher else '<='} incumbent {base} {'-' if higher else '+'} "
                                       f"{drop} = {round(limit, 6)}"))
    return checks


# --------------------------------------------------------------------------------------------------
# The job
# --------------------------------------------------------------------------------------------------


def run(job: dict) -> dict:
    import tempfile

    import mlflow
    from scipy import stats

    spec = job["spec"]
    timings: dict[str, float] = {}
    mark = time.monotonic()

    def lap(what: str) -> None:
        nonlocal mark
        now = time.monotonic()
        timings[what] = round(now - mark, 3)
        mark = now

    result: dict = {"checks": [], "timings": timings}
    work = tempfile.mkdtemp(prefix="validate-")
    mlflow.set_tracking_uri(job["tracking_uri"])
    mlflow.set_registry_uri(job["tracking_uri"])
    client = mlflow.MlflowClient()
    cand_ref, inc_ref = job["candidate"], job.get("incumbent")

    stage = "reading the candidate's artifacts"
    try:
        cand_path, cand_source = _download_model(client, cand_ref["name"], cand_ref["version"],
                                                 os.path.join(work, "candidate"))
        result["model"] = _describe_model(cand_path, cand_source)
        inc_path = None
        if inc_ref:
            stage = f"reading the incumbent v{inc_ref['version']}'s artifacts"
            inc_path, _ = _download_model(client, inc_ref["name"], inc_ref["version"], os.path.join(work, "incumbent"))
        stage = f"reading the evaluation dataset {spec.get('dataset')!r}"
        frame, digest, mlflow_digest = _load_dataset(spec["dataset"], os.path.join(work, "data"))
        result["dataset"] = {"uri": spec["dataset"], "digest": digest, "mlflow_digest": mlflow_digest,
                             "rows": len(frame), "columns": list(frame.columns)}
        lap("download")
        target = spec.get("target") or "label"
        if target not in frame.columns:
            raise _Failed(f"the evaluation dataset has no target column {target!r} (columns: "
                          f"{', '.join(map(str, frame.columns))})")
        features = frame.drop(columns=[target])
        sig_inputs = (result["model"]["signature"] or {}).get("inputs")
        if sig_inputs:
            wanted = [c.get("name") for c in sig_inputs if c.get("name")]
            missing = [c for c in wanted if c not in features.columns]
            if missing:
                raise _Failed(f"the evaluation dataset lacks the model's input columns {', '.join(missing)}")
            features = features[wanted]
            frame = features.assign(**{target: frame[target]})

        # Evaluation runs go to a local store that disappears with this process: validating never writes
        # the registry's server, and a model's id is not looked up in a store that does not have it. A
        # file store, not a fresh SQLite one: creating an SQLite store runs MLflow's migrations (seconds).
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
        mlflow.set_tracking_uri(f"file://{os.path.join(work, 'eval-store')}")
        mlflow.set_experiment("validation")
        _skip_evaluation_plots()
        stage = "loading the candidate with mlflow.pyfunc"
        cand_model = mlflow.pyfunc.load_model(cand_path)
        cand_model._model_id = None  # see above: evaluate() would link results to the registry's logged model
        inc_model = None
        if inc_path:
            stage = "loading the incumbent with mlflow.pyfunc"
            inc_model = mlflow.pyfunc.load_model(inc_path)
            inc_model._model_id = None
        lap("load")

        checks = result["checks"]
        model_info = result["model"]
        if spec.get("require_signature", True):
            checks.append(_check("signature", model_info["signature"] is not None,
                                 "the model has a signature" if model_info["signature"] else
                                 "the model was logged without a signature"))
            example = model_info["input_example"]
            if example is None or (isinstance(example, dict) and "error" in example):
                checks.append(_check("input_example", False, "the model has no readable input example"))
            else:
                stage = "predicting the input example"
                try:
                    cand_model.predict(mlflow.models.Model.load(cand_path).load_input_example(cand_path))
                    checks.append(_check("input_example", True, "the input example validates against the "
                                                                "signature and predicts"))
                except MemoryError:
                    raise  # the model's own appetite, not the example: reported as the memory limit below
                except Exception as exc:
                    checks.append(_check("input_example", False, f"the input example fails: {_line(exc)}"))
        if spec.get("require_pinned", True):
            loose = list(dict.fromkeys(r["line"] for r in model_info["requirements"] if not r["pinned"]))
            none = not model_info["requirements"]
            checks.append(_check("deps_pinned", not loose and not none,
                                 "no requirements.txt or conda.yaml" if none else
                                 (f"not pinned with ==: {', '.join(loose)}" if loose else
                                  f"all {len(model_info['requirements'])} requirements pinned with =="),
                                 len(loose)))

        model_type = spec.get("model_type") or "classifier"
        stage = "scoring the candidate with mlflow.models.evaluate"
        cand_eval = _evaluate(cand_model, frame, target, model_type)
        inc_eval = None
        if inc_model is not None:
            stage = "scoring the incumbent with mlflow.models.evaluate"
            inc_eval = _evaluate(inc_model, frame, target, model_type)
        result["metrics"] = {"candidate": {k: _num(v) for k, v in cand_eval.metrics.items()},
                             "incumbent": {k: _num(v) for k, v in inc_eval.metrics.items()} if inc_eval else None}
        checks.extend(_threshold_checks(spec, cand_eval, inc_eval))
        lap("evaluate")

        stage = "timing prediction"
        lat = spec.get("latency") or {}
        warmup, repeats = int(lat.get("warmup", 3)), int(lat.get("repeats", 20))
        result["latency"] = [_latency(cand_model, features, 1, warmup, repeats)]
        if int(lat.get("batch_size", 32)) > 1:
            result["latency"].append(_latency(cand_model, features, int(lat.get("batch_size", 32)), warmup, repeats))
        if spec.get("max_latency_p95_ms") is not None:
            p95, limit = result["latency"][0]["p95_ms"], float(spec["max_latency_p95_ms"])
            checks.append(_check("latency_p95_ms", p95 <= limit, f"p95 at batch 1 is {p95} ms (limit {limit} ms)",
                                 p95, limit))
        lap("latency")

        stage = "comparing prediction distributions"
        cand_scores, cand_labels = _scores(cand_model, features)
        inc_scores = inc_labels = None
        if inc_model is not None:
            inc_scores, inc_labels = _scores(inc_model, features)
        dist: dict = {"histogram": _histogram(cand_scores, inc_scores)}
        positive = _positive_rate(cand_labels)
        dist["class_rate_candidate"] = positive
        dist["class_rate_incumbent"] = _positive_rate(inc_labels) if inc_labels is not None else None
        if inc_scores is not None:
            dist["psi"] = round(_psi(inc_scores, cand_scores), 6)
            ks = stats.ks_2samp(cand_scores, inc_scores)
            dist["ks"], dist["ks_pvalue"] = round(float(ks.statistic), 6), float(ks.pvalue)
        result["distribution"] = dist
        for key, name in (("max_psi", "psi"), ("max_ks", "ks")):
            if spec.get(key) is None:
                continue
            limit = float(spec[key])
            if dist.get(name) is None:
                checks.append(_check(name, True, "no incumbent: nothing to compare with", None, limit))
            else:
                checks.append(_check(name, dist[name] <= limit, f"{name.upper()} candidate vs incumbent = "
                                     f"{dist[name]} (limit {limit})", dist[name], limit))
        rate = spec.get("class_rate") or {}
        if rate and positive is not None:
            lo, hi = float(rate.get("min", 0)), float(rate.get("max", 1))
            checks.append(_check("class_rate", lo <= positive <= hi, f"predicted positive rate {positive} "
                                 f"(expected {lo}-{hi})", positive, f"{lo}-{hi}"))
        lap("distribution")
    except _Failed as exc:
        result["reason"] = str(exc)
    except MemoryError:
        result["reason"] = f"ran out of memory while {stage} (limit {job.get('memory_mb')} MB)"
    except Exception as exc:
        result["reason"] = f"failed while {stage}: {_line(exc)}"
    failed = [c["name"] for c in result["checks"] if not c["passed"]]
    if result.get("reason"):
        result["status"] = "failed"
    else:
        result["status"] = "failed" if failed else "passed"
        result["reason"] = f"failed checks: {', '.join(failed)}" if failed else ""
    result["peak_rss_mb"] = _peak_rss_mb()
    result["elapsed_s"] = round(time.monotonic() - _started, 3)
    return result


def _positive_rate(labels):
    import numpy as np

    try:
        values = np.asarray(labels, dtype=float)
    except (TypeError, ValueError):
        return None
    return round(float(np.mean(values > 0.5)), 6)


def _line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:400]}"


class _Failed(Exception):
    """A validation that cannot go on, with the one reason to show."""


def main() -> None:
    # The result goes to the stdout we were given; whatever libraries print goes to stderr.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    job = json.loads(sys.stdin.read())
    _limit_memory(int(job.get("memory_mb") or 0))
    try:
        result = run(job)
    except MemoryError:
        result = {"status": "failed", "reason": f"ran out of memory (limit {job.get('memory_mb')} MB)", "checks": []}
    out.write(json.dumps(result, default=str))
    out.flush()


if __name__ == "__main__":
    main()
