"""Environment step rates of every r2i_envs suite on this machine.

For each suite: build ``num_envs`` envs (default worker-process layout of the suite), reset, take warm-up
steps, then time uniformly random actions for ``--seconds`` per repeat. Prints one JSON line per suite with
``steps_per_second`` (environment steps summed over envs, median over repeats), the machine and versions.
It compares the suites with each other and with the rates the suites' own papers and README quote.

    uv run python tools/bench_envs.py          # every suite, 1 and 2 envs, median of 3 x 1 s (~1 min)
    uv run python tools/bench_envs.py --quick  # every suite, 1 env, 1 repeat of 1.5 s (~20 s)
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import time

import numpy as np

import r2i_envs

SUITES = {
    "bsuite": "bsuite/memory_len/10",
    "popgym": "popgym/RepeatPreviousEasy",
    "dmc": "dmc/walker_walk",
    "dmc-vision": "dmc-vision/walker_walk",
    "memorymaze": "memorymaze/9x9",
    "atari": "atari/pong",
}
PACKAGES = (
    "numpy",
    "bsuite",
    "popgym",
    "dm-control",
    "mujoco",
    "memory-maze",
    "ale-py",
    "opencv-python-headless",
)


def machine_info() -> dict[str, object]:
    """CPU count, architecture, memory, Python and suite package versions, rendering backend."""
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "memory_gib": round(memory_gib, 1),
        "python": platform.python_version(),
        "mujoco_gl": os.environ.get("MUJOCO_GL"),
        "versions": versions,
    }


def random_actions(space: r2i_envs.Space, num_envs: int, rng: np.random.Generator) -> np.ndarray:
    if space.discrete:
        return rng.integers(0, space.n, size=num_envs)
    return rng.uniform(-1.0, 1.0, size=(num_envs, *space.shape)).astype(np.float32)


def steps_per_second(env_id: str, num_envs: int, seconds: float, repeats: int, warmup: int) -> list[float]:
    """Environment steps per second (summed over envs) of each repeat, warm-up excluded."""
    rng = np.random.default_rng(0)
    rates = []
    with r2i_envs.make(env_id, num_envs=num_envs, seed=0) as env:
        space = env.act_space["action"]
        env.reset()
        for _ in range(warmup):
            env.step(random_actions(space, num_envs, rng))
        for _ in range(repeats):
            steps, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                env.step(random_actions(space, num_envs, rng))
                steps += 1
            rates.append(steps * num_envs / (time.perf_counter() - start))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="1 env, 1 repeat of 1.5 s per suite (about 20 s)"
    )
    parser.add_argument("--suites", nargs="*", default=list(SUITES), choices=list(SUITES))
    args = parser.parse_args()
    r2i_envs.setup_rendering()
    seconds, repeats, env_counts = (1.5, 1, (1,)) if args.quick else (1.0, 3, (1, 2))
    machine = machine_info()
    date = datetime.date.today().isoformat()
    for suite in args.suites:
        env_id = SUITES[suite]
        for num_envs in env_counts:
            rates = steps_per_second(env_id, num_envs, seconds, repeats, warmup=5)
            record = {
                "suite": suite,
                "env_id": env_id,
                "num_envs": num_envs,
                "steps_per_second": round(statistics.median(rates), 1),
                "repeats": repeats,
                "seconds_per_repeat": seconds,
                "date": date,
                "machine": machine,
            }
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
