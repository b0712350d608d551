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


def seconds_of_call(fn: Callable[[], object]) -> float:
    """Wall time of one call, waiting for JAX's asynchronous results."""
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> tuple[float, float]:
    """(median seconds per call after ``warmup`` calls, seconds of the first call incl. compile)."""
    first = seconds_of_call(fn)
    for _ in range(warmup - 1):
        seconds_of_call(fn)
    return statistics.median(seconds_of_call(fn) for _ in range(repeats)), first


def interleaved_medians(
    fns: dict[str, Callable[[], object]], repeats: int, rounds: int = 3
) -> dict[str, tuple[float, float]]:
    """Per function: (seconds per call, seconds of the first call incl. compile).

    Each round times every function in turn, ``repeats`` consecutive calls each after one untimed
    call, and takes the median; the result is the smallest round median. Rounds spread slow drifts
    of the machine over all candidates, and consecutive calls keep one program's caches warm, as in
    a training loop.
    """
    first = {name: seconds_of_call(fn) for name, fn in fns.items()}
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            best[name] = min(best[name], median_seconds(fn, repeats)[0])
    return {name: (best[name], first[name]) for name in fns}


def emit(row: dict) -> None:
    """One JSON line per configuration on stdout."""
    print(json.dumps(row), flush=True)
    sys.stdout.flush()
