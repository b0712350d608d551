"""World-model train step, S3M (R2I) vs RSSM (DreamerV3) at equal width, vector and image observations.

Part 1 of the train-step benchmark (design §6): one jitted world-model loss + grad + Adam update on a
batch of B sequences of length T: vector observations at T = 64, 256, 1024 and 64×64×3 images at
T = 64, 256. Both models have the same width: the RSSM's
GRU state and the S3M's h have size ``--width``; the S3M's S5 blocks are ``--width`` wide with
``--state`` complex states each (popgym/bsuite preset: 512 wide, P = 128, 3 blocks). The actor-critic
part of a full R2I step arrives with the agent package.

Prints one JSON line per (model, T) with the median seconds per step (after a warm-up call, with
``jax.block_until_ready``), the seconds of the first call (compile + run), and one line per T with
the ratio RSSM / S3M; a Markdown summary goes to stderr. Paper anchor: up to 9.7× on vector obs (GPU).

    uv run python tools/bench_train_step.py            # vector T = 64, 256, 1024 and image T = 64, 256
    uv run python tools/bench_train_step.py --quick    # vector T = 64, 256, 1024 at width 64 (< 1 min)
"""

import argparse
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from _timing import emit, interleaved_medians, machine_info

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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="vector rows only, width 64, P = 32, 3 repeats")
    parser.add_argument("--lengths", type=int, nargs="*", help="override the vector sequence lengths")
    parser.add_argument("--image-lengths", type=int, nargs="*", help="override the image sequence lengths")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--width", type=int, default=None, help="h size = S5 width = GRU size")
    parser.add_argument("--state", type=int, default=None, help="P, complex states per S5 block")
    parser.add_argument("--layers", type=int, default=3, help="S5 blocks")
    parser.add_argument("--obs-size", type=int, default=64)
    parser.add_argument("--action-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    lengths = args.lengths or [64, 256, 1024]
    image_lengths = (
        args.image_lengths if args.image_lengths is not None else ([] if args.quick else [64, 256])
    )
    args.width = args.width or (64 if args.quick else 512)
    args.state = args.state or (32 if args.quick else 128)
    repeats = args.repeats or (3 if args.quick else 7)
    info = machine_info()
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
