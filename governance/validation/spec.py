"""What a policy's validation spec may say, checked when the policy is saved (admin, API, command).

The child that runs a validation reads the spec with `.get()`: a misspelt key ("max_pis") or a
number written as text would otherwise be ignored or fail much later, in the worker, as a failed
validation of a model that did nothing wrong. A spec is refused at save with every problem named.

The evaluation dataset is read through MLflow only: a file artifact of a run (`runs:/<run_id>/<path>`)
or a dataset logged to a run with mlflow.data (`dataset:<run_id>/<name>`). Other artifact URIs
(http, s3, a local path) would let a policy make the worker fetch anything from anywhere.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

NUMBER_LIMITS = ("max_latency_p95_ms", "max_psi", "max_ks")
FLAGS = ("require_signature", "require_pinned")
MODEL_TYPES = ("classifier", "regressor")
KEYS = {"dataset", "target", "model_type", "thresholds", "relative", "latency", "class_rate", "targets",
        "timeout_seconds", "memory_mb", *NUMBER_LIMITS, *FLAGS}
LATENCY_KEYS = {"batch_size": 1, "warmup": 0, "repeats": 1}  # the smallest value each may take


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _dataset_problem(value) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "dataset: required, runs:/<run_id>/<path> or dataset:<run_id>/<name>"
    for prefix in ("runs:/", "dataset:"):
        if value.startswith(prefix):
            run_id, _, rest = value.removeprefix(prefix).partition("/")
            if run_id and rest:
                return None
            return f"dataset: {value!r} names no run and no {'path' if prefix == 'runs:/' else 'name'}"
    return f"dataset: {value!r} is neither runs:/<run_id>/<path> nor dataset:<run_id>/<name>"


def _bounds_problems(key: str, value, allowed: set[str]) -> list[str]:
    if not isinstance(value, dict) or not value:
        return [f"{key}: a non-empty object of metric -> rule"]
    problems = []
    for metric, rule in value.items():
        if not isinstance(rule, dict) or not rule:
            problems.append(f"{key}.{metric}: an object with {' or '.join(sorted(allowed))}")
            continue
        for name, x in rule.items():
            if name not in allowed:
                problems.append(f"{key}.{metric}: unknown rule {name!r} (known: {', '.join(sorted(allowed))})")
            elif name == "higher_is_better":
                if not isinstance(x, bool):
                    problems.append(f"{key}.{metric}.higher_is_better: true or false")
            elif not _is_number(x):
                problems.append(f"{key}.{metric}.{name}: a number, not {x!r}")
            elif name in ("max_drop", "min_gain") and x < 0:
                problems.append(f"{key}.{metric}.{name}: not negative")
        if key == "relative" and {"max_drop", "min_gain"} <= rule.keys():
            problems.append(f"relative.{metric}: max_drop or min_gain, not both")
        if {"min", "max"} <= rule.keys() and _is_number(rule["min"]) and _is_number(rule["max"]) \
                and rule["min"] > rule["max"]:
            problems.append(f"{key}.{metric}: min is above max")
    return problems


def spec_problems(spec) -> list[str]:
    """Each thing wrong with a validation spec, in words a policy author acts on; [] when it is good."""
    if spec is None:
        return []
    if not isinstance(spec, dict):
        return ["a JSON object such as {\"dataset\": \"runs:/<run_id>/eval/holdout.csv\"}"]
    problems = [f"unknown key {key!r} (known: {', '.join(sorted(KEYS))})" for key in sorted(spec.keys() - KEYS)]
    if (p := _dataset_problem(spec.get("dataset"))) is not None:
        problems.append(p)
    if "target" in spec and (not isinstance(spec["target"], str) or not spec["target"].strip()):
        problems.append("target: the name of the label column")
    if "model_type" in spec and spec["model_type"] not in MODEL_TYPES:
        problems.append(f"model_type: one of {', '.join(MODEL_TYPES)}")
    if "thresholds" in spec:
        problems += _bounds_problems("thresholds", spec["thresholds"], {"min", "max"})
    if "relative" in spec:
        problems += _bounds_problems("relative", spec["relative"], {"max_drop", "min_gain", "higher_is_better"})
    for key in NUMBER_LIMITS:
        if key in spec and not (_is_number(spec[key]) and spec[key] >= 0):
            problems.append(f"{key}: a number, 0 or more")
    for key in FLAGS:
        if key in spec and not isinstance(spec[key], bool):
            problems.append(f"{key}: true or false")
    for key in ("timeout_seconds", "memory_mb"):
        if key in spec and not (_is_number(spec[key]) and spec[key] > 0):
            problems.append(f"{key}: a number above 0")
    if "latency" in spec:
        latency = spec["latency"]
        if not isinstance(latency, dict):
            problems.append(f"latency: an object with {', '.join(LATENCY_KEYS)}")
        else:
            for key, x in latency.items():
                if key not in LATENCY_KEYS:
                    problems.append(f"latency: unknown key {key!r} (known: {', '.join(LATENCY_KEYS)})")
                elif not (isinstance(x, int) and not isinstance(x, bool) and x >= LATENCY_KEYS[key]):
                    problems.append(f"latency.{key}: a whole number, {LATENCY_KEYS[key]} or more")
    if "class_rate" in spec:
        rate = spec["class_rate"]
        if not isinstance(rate, dict) or not rate or rate.keys() - {"min", "max"}:
            problems.append("class_rate: an object with min and/or max between 0 and 1")
        elif not all(_is_number(x) and 0 <= x <= 1 for x in rate.values()):
            problems.append("class_rate: min and max are numbers between 0 and 1")
        elif rate.get("min", 0) > rate.get("max", 1):
            problems.append("class_rate: min is above max")
    if "targets" in spec and not (isinstance(spec["targets"], list) and spec["targets"]
                                  and all(isinstance(t, str) and t.strip() for t in spec["targets"])):
        problems.append("targets: a non-empty list of stages or aliases, e.g. [\"Production\", \"@champion\"]")
    return problems


def validate_spec(spec) -> None:
    """Model-field validator of ModelPolicy.validation (full_clean runs it in every door)."""
    problems = spec_problems(spec)
    if problems:
        raise ValidationError("; ".join(problems), code="invalid_validation_spec")
