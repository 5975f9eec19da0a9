"""Figures: repeated samples summarised as median and p95, or null with the reason why."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

NOT_BUILT = "not built yet"


def p95(samples: list[float]) -> float:
    """Nearest-rank 95th percentile (with 5 samples it is the maximum: honest for small n)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass
class Figure:
    name: str
    unit: str
    samples: list[float] = field(default_factory=list)
    note: str = ""
    ratio_to: str | None = None  # name of the figure this one is divided by
    ratio: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    @property
    def p95(self) -> float | None:
        return p95(self.samples) if self.samples else None

    def to_dict(self) -> dict:
        return {"unit": self.unit, "median": _round(self.median), "p95": _round(self.p95), "n": len(self.samples),
                "ratio": _round(self.ratio), "ratio_to": self.ratio_to, "note": self.note, **self.extra}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def vm_hwm_mib(pid: str = "self") -> float | None:
    """Peak resident set size of a process (Linux VmHWM), in MiB."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None
