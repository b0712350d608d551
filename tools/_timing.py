"""Shared helpers for the benchmark scripts: timing medians and describing the machine."""

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

import jax


def machine_info() -> dict:
    """What ran the benchmark: backend, device kind, CPU count, versions."""
    device = jax.devices()[0]
    return {
        "backend": jax.default_backend(),
        "device_kind": device.device_kind,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "jax": jax.__version__,
    }


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> tuple[float, float]:
    """(median seconds per call after ``warmup`` calls, seconds of the first call incl. compile)."""
    start = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - start
    for _ in range(warmup - 1):
        jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times), first


def interleaved_medians(
    fns: dict[str, Callable[[], object]], repeats: int, rounds: int = 3
) -> dict[str, tuple[float, float]]:
    """Per function: (seconds per call, seconds of the first call incl. compile).

    Each round times every function in turn, ``repeats`` consecutive calls each, and takes the
    median; the result is the smallest round median. Rounds spread slow drifts of the machine over
    all candidates, and consecutive calls keep one program's caches warm, as in a training loop.
    """
    first = {}
    for name, fn in fns.items():
        start = time.perf_counter()
        jax.block_until_ready(fn())
        first[name] = time.perf_counter() - start
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            jax.block_until_ready(fn())
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                jax.block_until_ready(fn())
                times.append(time.perf_counter() - start)
            best[name] = min(best[name], statistics.median(times))
    return {name: (best[name], first[name]) for name in fns}


def emit(row: dict) -> None:
    """One JSON line per configuration on stdout."""
    print(json.dumps(row), flush=True)
    sys.stdout.flush()
