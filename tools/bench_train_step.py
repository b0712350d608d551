"""Train step, S3M (R2I) vs RSSM (DreamerV3) at equal width, vector and image observations.

``--update agent`` (default): the FULL agent update of ``r2i_agent.make_update`` — world-model loss, grad
and Adam step, imagination of 15 steps from every posterior state, actor and critic losses and steps —
with the ``popgym`` preset's sizes (the official R2I POPGym configuration: h 1024, S5 width 512, P = 128,
3 blocks, MLPs 512; the RSSM baseline gets the same sizes with a 1024-unit GRU). ``--update world-model``:
the world-model step alone, at ``--width``.

Per (model, obs, B, T) one JSON line: median seconds per step (after an untimed call, with
``jax.block_until_ready``), seconds of the first call (trace + compile + run), peak memory of the
compiled step (XLA buffer assignment: arguments + outputs + temporaries), matmul + conv FLOPs counted
from the jaxpr (scan bodies times their length; tools/_flops.py) and the achieved fraction of this
machine's f32 matmul throughput, measured in the same run. A Markdown summary goes to stderr. Like the
``r2i-agent`` command, the script first sets glibc's malloc to keep freed memory for the next call
(``r2i_agent._allocator``; ``R2I_MALLOC_TUNING=off`` measures without); the machine line says which.

    uv run python tools/bench_train_step.py                       # full agent (docs/benchmarks.md)
    uv run python tools/bench_train_step.py --update world-model  # world-model step only, width 512
    uv run python tools/bench_train_step.py --quick               # small sizes, a minute
    uv run python tools/bench_train_step.py --first-step-parts --rows vector:16:64  # first step, in parts
    uv run python tools/bench_train_step.py --rows image:4:64 --model-chunk 128   # world model in 2 parts
"""

import argparse
import os
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from _flops import count_flops
from _timing import emit, interleaved_medians, machine_info, median_seconds

from r2i_agent._allocator import keep_freed_memory
from worldmodel import Batch, SSMConfig, WorldModel, initial_carries, make_optimizer, preset, train_step


def make_batch(B: int, T: int, obs: str, obs_size: int, action_size: int, seed: int = 0) -> Batch:
    """Random observations and one-hot actions, episodes of ~100 steps crossing the batch rows."""
    rng = np.random.default_rng(seed)
    is_first = rng.random((B, T)) < 0.01
    is_first[:, 0] = True
    if obs == "image":
        observation = {"image": jnp.asarray(rng.integers(0, 256, (B, T, 64, 64, 3)), jnp.uint8)}
    else:
        observation = {"vector": jnp.asarray(rng.standard_normal((B, T, obs_size)), jnp.float32)}
    return Batch(
        obs=observation,
        action=jax.nn.one_hot(jnp.asarray(rng.integers(action_size, size=(B, T))), action_size),
        reward=jnp.asarray(rng.standard_normal((B, T)), jnp.float32),
        is_first=jnp.asarray(is_first),
        is_terminal=jnp.zeros((B, T), bool),
    )


def build_step(kind: str, obs: str, args):
    """A closure that runs one jitted train step on fixed inputs (new model/opt state each call)."""
    ssm = SSMConfig(width=args.width, state=args.state, layers=args.layers)
    config = preset(
        "popgym",
        sequence_model=kind,
        policy_input="output",
        ssm=ssm,
        deter=args.width,
        units=args.width,
        enc_units=args.width,
    )
    shapes = {"image": (64, 64, 3)} if obs == "image" else {"vector": (args.obs_size,)}
    model = WorldModel(config, shapes, args.action_size, key=jax.random.key(0))
    optimizer = make_optimizer(config.optim)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    step = eqx.filter_jit(train_step)
    carry = initial_carries(model, args.batch)
    params = sum(x.size for x in jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array)))

    key = jax.random.key(1)

    def run(batch):
        return step(model, opt_state, optimizer, batch, carry, key)[2]

    return run, params


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    """This machine's f32 matmul throughput: GFLOP/s of a jitted n×n @ n×n product (median)."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    matmul = jax.jit(lambda x: x @ x)
    seconds, _ = median_seconds(lambda: matmul(a), repeats, warmup=2)
    return 2 * n**3 / seconds / 1e9


def agent_config(
    kind: str, B: int, T: int, quick: bool, chunk: int | None = None, model_chunk: int | None = None
):
    """The popgym agent preset (or a small one for --quick) with the given sequence model and B × T."""
    import dataclasses

    from r2i_agent import agent_preset

    base = agent_preset("cpu" if quick else "popgym")
    model = base.model
    if kind == "rssm":
        model = dataclasses.replace(model, sequence_model="rssm", policy_input="output")
    chunk = chunk or base.train.imagination_chunk
    model_chunk = model_chunk or base.train.model_chunk
    train = dataclasses.replace(
        base.train, batch_size=B, batch_length=T, imagination_chunk=chunk, model_chunk=model_chunk
    )
    return dataclasses.replace(base, model=model, train=train)


def agent_update_inputs(kind: str, obs: str, B: int, T: int, args):
    """(a fresh jitted update, (state, batch, key) to call it with, parameter count)."""
    from r2i_agent._agent import init_train_state, make_agent, make_update

    config = agent_config(kind, B, T, args.quick, args.imagination_chunk, args.model_chunk)
    shapes = {"image": (64, 64, 3)} if obs == "image" else {"vector": (args.obs_size,)}
    agent = make_agent(config, shapes, args.action_size, "discrete", key=jax.random.key(0))
    inputs = (init_train_state(config, agent), make_batch(B, T, obs, args.obs_size, args.action_size))
    params = sum(x.size for x in jax.tree.leaves(eqx.filter(agent, eqx.is_inexact_array)))
    return make_update(config), (*inputs, jax.random.key(1)), params


def first_step_parts(kind: str, obs: str, B: int, T: int, args) -> dict:
    """Seconds of each part of a fresh update's first step: trace + lower to HLO, XLA compile, the first
    run of the compiled program, and a second run (the steady state) for comparison."""
    update, inputs, _ = agent_update_inputs(kind, obs, B, T, args)
    tick = time.perf_counter()
    lowered = update.lower(*inputs)
    lower = time.perf_counter() - tick
    tick = time.perf_counter()
    compiled = lowered.compile()
    compile_ = time.perf_counter() - tick
    runs = []
    for _ in range(2):
        tick = time.perf_counter()
        jax.block_until_ready(compiled(*inputs))
        runs.append(time.perf_counter() - tick)
    parts = {"trace_lower": lower, "compile": compile_, "first_run": runs[0], "second_run": runs[1]}
    text = lowered.as_text()  # StableHLO: its size and loops are what XLA compiles
    size = {"hlo_chars": len(text), "while_loops": text.count("stablehlo.while")}
    return {"model": kind, "obs": obs, "B": B, "T": T, **{k: round(v, 2) for k, v in parts.items()}, **size}


def build_agent_update(kind: str, obs: str, B: int, T: int, args):
    """(call, parameter count, cost) for one full agent update on fixed inputs; ``cost()`` gives
    (FLOPs per step, peak bytes) and must run after the timing (its compile would warm the cache)."""
    update, (state, batch, key), params = agent_update_inputs(kind, obs, B, T, args)

    def call():
        return update(state, batch, key)[1]["model/loss"]

    def cost() -> tuple[int, int | None]:
        flops = count_flops(update, state, batch, key)
        memory = update.lower(state, batch, key).compile().compiled.memory_analysis()
        if memory is None:
            return flops, None
        parts = (memory.argument_size_in_bytes, memory.output_size_in_bytes, memory.temp_size_in_bytes)
        return flops, sum(parts) - memory.alias_size_in_bytes

    return call, params, cost


def run_agent_rows(args, info: dict) -> list[dict]:
    gflops = matmul_gflops()
    emit({"kind": "matmul", "n": 2048, "gflops": round(gflops, 1)})
    rows = []
    for obs, B, T in args.rows:
        for kind in ("s3m", "rssm"):
            # A fresh update function per row: the first call includes its trace and compile.
            call, params, cost = build_agent_update(kind, obs, B, T, args)
            if args.compile_only:  # trace + compile for FLOPs and memory; no step is run
                tick = time.perf_counter()
                flops, peak = cost()
                seconds, first = float("nan"), time.perf_counter() - tick
            else:
                seconds, first = median_seconds(call, args.repeats or (1 if T >= 1024 and B >= 16 else 3))
                flops, peak = cost()
            row = {
                "update": "agent",
                "model": kind,
                "obs": obs,
                "B": B,
                "T": T,
                "params": params,
                "seconds": round(seconds, 4),
                "first_call_seconds": round(first, 2),
                "peak_gib": None if peak is None else round(peak / 2**30, 3),
                "gflop_per_step": round(flops / 1e9, 1),
                "achieved_gflops": round(flops / seconds / 1e9, 1),
                "matmul_fraction": round(flops / seconds / 1e9 / gflops, 3),
                "backend": info["backend"],
                "device_kind": info["device_kind"],
            }
            rows.append(row)
            emit(row)
            del call, cost
    print_agent_summary(rows, gflops, file=sys.stderr)
    return rows


def print_agent_summary(rows: list[dict], gflops: float, file) -> None:
    print(f"\nf32 matmul throughput of this machine: {gflops:.0f} GFLOP/s (2048×2048, jit)", file=file)
    print(
        "\n| obs | B | T | model | step | first step | peak memory | GFLOP/step | of matmul peak |"
        " RSSM / S3M |",
        file=file,
    )
    print("|---|---|---|---|---|---|---|---|---|---|", file=file)
    by = {(r["obs"], r["B"], r["T"], r["model"]): r for r in rows}
    for r in rows:
        other = by.get((r["obs"], r["B"], r["T"], "rssm"))
        ratio = f"{other['seconds'] / r['seconds']:.2f}×" if r["model"] == "s3m" and other else ""
        peak = "?" if r["peak_gib"] is None else f"{r['peak_gib']:.2f} GiB"
        print(
            f"| {r['obs']} | {r['B']} | {r['T']} | {r['model']} | {r['seconds']:.2f} s "
            f"| {r['first_call_seconds']:.1f} s | {peak} | {r['gflop_per_step']:.0f} "
            f"| {r['matmul_fraction'] * 100:.0f}% | {ratio} |",
            file=file,
        )


def parse_rows(text: str) -> tuple[str, int, int]:
    """``vector:16:64`` → ("vector", 16, 64)."""
    obs, B, T = text.split(":")
    if obs not in ("vector", "image"):
        raise argparse.ArgumentTypeError(f"obs must be vector or image, got {obs!r}")
    return obs, int(B), int(T)


DEFAULT_AGENT_ROWS = [
    ("vector", 4, 64), ("vector", 16, 64), ("vector", 4, 256), ("vector", 16, 256),
    ("vector", 4, 1024), ("vector", 16, 1024), ("image", 4, 64), ("image", 4, 256),
]  # fmt: skip


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--update", choices=["agent", "world-model"], default="agent")
    parser.add_argument("--imagination-chunk", type=int, help="agent rows: starts imagined at once")
    parser.add_argument(
        "--model-chunk", type=int, help="agent rows: replayed steps per world-model gradient part"
    )
    parser.add_argument(
        "--compile-only", action="store_true", help="agent rows: FLOPs and peak memory only, no step run"
    )
    parser.add_argument(
        "--rows", type=parse_rows, nargs="*", help="agent rows as obs:B:T, e.g. vector:16:64 image:4:64"
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes (cpu preset / width 64), few repeats"
    )
    parser.add_argument("--lengths", type=int, nargs="*", help="override the vector sequence lengths")
    parser.add_argument("--image-lengths", type=int, nargs="*", help="override the image sequence lengths")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--width", type=int, default=None, help="h size = S5 width = GRU size")
    parser.add_argument("--state", type=int, default=None, help="P, complex states per S5 block")
    parser.add_argument("--layers", type=int, default=3, help="S5 blocks")
    parser.add_argument("--obs-size", type=int, default=64)
    parser.add_argument("--action-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument(
        "--first-step-parts",
        action="store_true",
        help="agent rows: time trace + lower, compile, first and second run of a fresh update instead",
    )
    args = parser.parse_args(argv)
    kept = keep_freed_memory(os.environ)
    if args.update == "agent":
        info = {**machine_info(), "freed_memory_kept": kept}
        emit({"kind": "machine", **info})
        args.rows = args.rows or (
            [("vector", 4, 64), ("vector", 4, 256)] if args.quick else DEFAULT_AGENT_ROWS
        )
        if args.first_step_parts:
            for obs, B, T in args.rows:
                for kind in ("s3m", "rssm"):
                    emit({"kind": "first_step_parts", **first_step_parts(kind, obs, B, T, args)})
            return
        run_agent_rows(args, info)
        return
    lengths = args.lengths or [64, 256, 1024]
    image_lengths = (
        args.image_lengths if args.image_lengths is not None else ([] if args.quick else [64, 256])
    )
    args.width = args.width or (64 if args.quick else 512)
    args.state = args.state or (32 if args.quick else 128)
    repeats = args.repeats or (3 if args.quick else 7)
    info = {**machine_info(), "freed_memory_kept": kept}
    emit({"kind": "machine", **info})
    rows = []
    for obs, obs_lengths in (("vector", lengths), ("image", image_lengths)):
        if not obs_lengths:
            continue
        steps = {kind: build_step(kind, obs, args) for kind in ("s3m", "rssm")}
        for T in obs_lengths:
            batch = make_batch(args.batch, T, obs, args.obs_size, args.action_size)
            calls = {kind: (lambda run=run, batch=batch: run(batch)) for kind, (run, _) in steps.items()}
            timings = interleaved_medians(calls, repeats, rounds=1 if args.quick else 3)
            for kind, (seconds, first) in timings.items():
                row = {
                    "model": kind,
                    "obs": obs,
                    "T": T,
                    "B": args.batch,
                    "width": args.width,
                    "P": args.state,
                    "layers": args.layers if kind == "s3m" else 1,
                    "params": steps[kind][1],
                    "seconds": seconds,
                    "first_call_seconds": round(first, 3),
                    "steps_per_second": round(1 / seconds, 3),
                    "backend": info["backend"],
                    "device_kind": info["device_kind"],
                }
                rows.append(row)
                emit(row)
            ratio = timings["rssm"][0] / timings["s3m"][0]
            emit({"kind": "ratio", "obs": obs, "T": T, "B": args.batch, "rssm_over_s3m": round(ratio, 3)})
    print_summary(rows, file=sys.stderr)


def print_summary(rows: list[dict], file) -> None:
    print(
        "\n| obs | T | B | S3M step | RSSM step | RSSM / S3M | S3M first call | RSSM first call |", file=file
    )
    print("|---|---|---|---|---|---|---|---|", file=file)
    table = {(r["obs"], r["T"], r["model"]): r for r in rows}
    for obs, T in sorted({(r["obs"], r["T"]) for r in rows}, key=lambda k: (k[0] != "vector", k[1])):
        s3m, rssm = table[obs, T, "s3m"], table[obs, T, "rssm"]
        print(
            f"| {obs} | {T} | {s3m['B']} | {s3m['seconds'] * 1e3:.1f} ms | {rssm['seconds'] * 1e3:.1f} ms "
            f"| {rssm['seconds'] / s3m['seconds']:.2f}× | {s3m['first_call_seconds']:.1f} s "
            f"| {rssm['first_call_seconds']:.1f} s |",
            file=file,
        )


if __name__ == "__main__":
    main()
