"""Run one validation job in a child process (registry_ui.mirror.validate_child) with a wall-clock
limit and a memory limit, and return its result as a dict. The caller (a task in a worker) never
imports mlflow for this and never shares memory with the model: a child that hangs is killed with its
whole process group at the limit, one that crashes or runs out of memory ends in a result with a
reason; the worker goes on.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent.parent


def _tail(text: str, lines: int = 3) -> str:
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept)[-600:]


def _die_with_parent() -> None:
    """In the child, before exec: Linux sends it SIGKILL when the worker that started it dies, so a
    stopped or crashed worker leaves no validation running behind it."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the wall-clock limit still bounds the child
        pass


def run_job(job: dict, *, timeout: float, memory_mb: int) -> dict:
    """{"status": "passed"|"failed", "reason", "checks", ...}; never raises for the child's failures."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": job["tracking_uri"], "PYTHONUNBUFFERED": "1",
           # One thread per math library: stable latency figures, and no thread pool's address space
           # counted against the memory limit.
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    job = {**job, "memory_mb": memory_mb}
    started = time.monotonic()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-m", "registry_ui.mirror.validate_child"], cwd=ROOT, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                start_new_session=True, preexec_fn=_die_with_parent)
        try:
            out, _ = proc.communicate(json.dumps(job).encode(), timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return {"status": "failed", "checks": [], "elapsed_s": round(time.monotonic() - started, 3),
                    "reason": f"killed after {timeout:g} s: the wall-clock limit of a validation "
                              "(the model hangs or is far too slow)"}
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    elapsed = round(time.monotonic() - started, 3)
    if proc.returncode != 0 or not out.strip():
        if proc.returncode and proc.returncode < 0:
            how = f"killed by signal {signal.Signals(-proc.returncode).name}"
        else:
            how = f"exited with status {proc.returncode}"
        oom = "MemoryError" in stderr or proc.returncode == -signal.SIGKILL
        memory = f" (it may have run out of its memory limit of {memory_mb} MB)" if oom else ""
        return {"status": "failed", "checks": [], "elapsed_s": elapsed,
                "reason": f"the validation process {how}{memory}: {_tail(stderr) or 'no output'}"}
    try:
        result = json.loads(out)
    except ValueError:
        return {"status": "failed", "checks": [], "elapsed_s": elapsed,
                "reason": f"the validation process wrote no readable result: {_tail(out.decode(errors='replace'))}"}
    result["wall_s"] = elapsed
    return result


def default_limits() -> tuple[float, int]:
    return float(settings.VALIDATION_TIMEOUT_SECONDS), int(settings.VALIDATION_MEMORY_MB)
