"""Sequential vs associative linear_recurrence on this machine, with and without resets.

Prints one JSON line per (method, reset, T, pass) with the median seconds over repeats after a
warm-up call, the achieved memory traffic in GB/s, and its fraction of the machine's measured copy
bandwidth. Shapes follow the R2I use: B = 16 sequences, P = 256 complex64 states, time on axis 0.

Traffic model (the minimum any implementation must move): forward reads b and writes xs,
2·T·B·P·8 bytes; forward+backward also reads the cotangent and xs and writes grad b, 5·T·B·P·8.

    uv run python tools/bench_scan.py            # T = 64 … 8192
    uv run python tools/bench_scan.py --quick    # a subset in under a minute
"""

import argparse
import functools
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from _timing import emit, interleaved_medians, machine_info

from ssmscan import linear_recurrence

BYTES_PER_STATE = 8  # complex64


def copy_bandwidth_gbps(megabytes: int = 1024, repeats: int = 5) -> float:
    """Memory bandwidth from a NumPy copy of a large array: (read + write bytes) / seconds."""
    src = np.ones(megabytes * 2**20 // 8)
    dst = np.empty_like(src)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - start)
    return 2 * src.nbytes / statistics.median(times[1:]) / 1e9


def make_inputs(T: int, B: int, P: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    radius = rng.uniform(0.5, 0.999, P)
    a = jnp.asarray(radius * np.exp(1j * rng.uniform(-np.pi, np.pi, P)), jnp.complex64)
    b = jnp.asarray(rng.standard_normal((T, B, P)) + 1j * rng.standard_normal((T, B, P)), jnp.complex64)
    reset = jnp.asarray(rng.random((T, B)) < 0.01)
    return a, b, reset


def build(method: str, with_reset: bool, backward: bool):
    def forward(a, b, reset):
        return linear_recurrence(a, b, reset if with_reset else None, method=method)

    if not backward:
        return jax.jit(forward)

    def loss(a, b, reset):
        return jnp.sum(forward(a, b, reset).real)

    return jax.jit(jax.grad(loss, argnums=(0, 1)))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="T in {64, 1024}, 5 repeats")
    parser.add_argument("--lengths", type=int, nargs="*", help="override the sequence lengths")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--state", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument(
        "--time-varying-a",
        action="store_true",
        help="pass a as a full [T, B, P] array (the generic scan path) instead of a constant [P]",
    )
    args = parser.parse_args(argv)
    lengths = args.lengths or ([64, 1024] if args.quick else [64, 256, 1024, 4096, 8192])
    repeats = args.repeats or (5 if args.quick else 9)
    info = machine_info()
    bandwidth = copy_bandwidth_gbps(256 if args.quick else 1024)
    emit({"kind": "machine", **info, "copy_bandwidth_gbps": round(bandwidth, 2)})
    rows = []
    for T in lengths:
        a, b, reset = make_inputs(T, args.batch, args.state)
        if args.time_varying_a:
            a = jnp.broadcast_to(a, b.shape).copy()
        for backward in (False, True):
            for with_reset in (False, True):
                methods = ("sequential", "associative", "auto")
                fns = {m: build(m, with_reset, backward) for m in methods}
                calls = {m: functools.partial(fn, a, b, reset) for m, fn in fns.items()}
                timings = interleaved_medians(calls, repeats)
                for method, (seconds, first) in timings.items():
                    traffic = (5 if backward else 2) * T * args.batch * args.state * BYTES_PER_STATE
                    row = {
                        "method": method,
                        "reset": with_reset,
                        "T": T,
                        "B": args.batch,
                        "P": args.state,
                        "a": "time-varying" if args.time_varying_a else "constant",
                        "pass": "fwd+bwd" if backward else "fwd",
                        "seconds": seconds,
                        "first_call_seconds": round(first, 4),
                        "gbps": round(traffic / seconds / 1e9, 3),
                        "bandwidth_fraction": round(traffic / seconds / 1e9 / bandwidth, 4),
                        "backend": info["backend"],
                        "device_kind": info["device_kind"],
                    }
                    rows.append(row)
                    emit(row)
    print_summary(rows, file=sys.stderr)


def print_summary(rows: list[dict], file) -> None:
    """Markdown table: per (T, pass) the three methods, reset overhead and auto's gap to the best."""
    print(
        "\n| T | pass | seq | seq+reset | assoc | assoc+reset | reset cost (assoc) | auto vs best |",
        file=file,
    )
    print("|---|---|---|---|---|---|---|---|", file=file)
    table = {(r["T"], r["pass"], r["method"], r["reset"]): r["seconds"] for r in rows}
    for T, pass_ in sorted({(r["T"], r["pass"]) for r in rows}):
        ms = {
            (m, rs): table[(T, pass_, m, rs)] * 1e3
            for m in ("sequential", "associative", "auto")
            for rs in (0, 1)
        }
        best = min(ms["sequential", 1], ms["associative", 1])
        print(
            f"| {T} | {pass_} | {ms['sequential', 0]:.2f} ms | {ms['sequential', 1]:.2f} ms "
            f"| {ms['associative', 0]:.2f} ms | {ms['associative', 1]:.2f} ms "
            f"| {ms['associative', 1] / ms['associative', 0] - 1:+.1%} | {ms['auto', 1] / best - 1:+.1%} |",
            file=file,
        )


if __name__ == "__main__":
    main()
