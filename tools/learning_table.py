"""Run the learning table of docs/results.md: R2I vs the RSSM baseline (and the paper's ablations) on CPU.

Every row is one `r2i-agent train` command (print them with --dry-run); runs go into OUT/<name> and a run
whose summary.json already shows its full budget is not run again, so an interrupted table continues where
it stopped. --jobs 2 runs two at a time (this machine has 2 cores; more only slows every run down);
--pin-cores also pins each of them to a core of its own (`taskset -c`), 9% faster here (docs/benchmarks.md)
and independent of the machine's core count, but not bitwise equal to unpinned runs (XLA's thread count
changes the order of its sums).
--report prints the markdown table of final scores (mean episode return of each run's last 100 episodes)
and draws one learning-curve PNG per environment with `r2i-agent plot`.

    uv run python tools/learning_table.py --dry-run                      # the commands
    uv run python tools/learning_table.py --only 'memory_len/4 '         # some rows
    uv run python tools/learning_table.py --seeds 2 --only ' s2$'          # a third seed of every row
    uv run python tools/learning_table.py --ablation-seeds 1 --only 'r2i-output s1$'  # more ablation seeds
    uv run python tools/learning_table.py --report --plots docs/results  # table + plots
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import queue
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

METHODS = {
    "r2i": [],  # the cpu preset: S3M, policy input hidden (z, x)
    "rssm": ["--model.sequence_model", "rssm", "--model.policy_input", "output"],
}
# One-flag changes to a method: a row named METHOD-CHANGE[-CHANGE...] gets METHOD's arguments and each
# change's (table variants such as rssm-episodewindows, ablations of `r2i` such as r2i-full-episodewindows).
CHANGES = {
    "output": ["--model.policy_input", "output"],
    "full": ["--model.policy_input", "full"],
    "noresets": ["--model.ssm.resets", "false"],
    "episodewindows": ["--train.episode_windows", "true"],
    "replaycontext": ["--train.replay_context", "true"],
    "paperlr": ["--actor_critic.lr", "3e-5"],  # the paper's actor-critic learning rate; the preset's is 3e-4
    # the preset's 3e-4 falling linearly to the paper's 3e-5 over the first 40k env steps
    "lrdecay": ["--actor_critic.lr_decay_steps", "40000", "--actor_critic.lr_end", "3e-5"],
    # windows twice as long, half as many: the same replayed steps per update, more of them in whole episodes
    "longwindows": ["--train.batch_length", "128", "--train.batch_size", "4"],
}
# env id -> the ablations of the `r2i` row run there (names of CHANGES joined by '-'). At memory length 30 the
# paper's three (policy input, resets, windows) are run on random windows and again on episode-start windows,
# the setting where plain R2I learns it, and policy input full with replay context (the two changes that each
# let R2I learn it on random windows); on discounting_chain policy input output (z, h), which kept the best
# arm where hidden (z, x) left it; on the POPGym tasks replay context, whose windows start mid-episode (the
# first steps of a window without it lack the cards seen before it), and on RepeatPreviousEasy policy input
# full.
_PAPER_ABLATIONS = ("output", "full", "noresets", "episodewindows")
ABLATIONS = {
    "bsuite/memory_len/9": _PAPER_ABLATIONS,
    "bsuite/memory_len/15": (
        *_PAPER_ABLATIONS,
        *(f"{change}-episodewindows" for change in ("output", "full", "noresets")),
        "full-replaycontext",
    ),
    "bsuite/discounting_chain/0": ("output",),
    "popgym/RepeatPreviousEasy": ("replaycontext", "full"),
    "popgym/AutoencodeEasy": ("replaycontext",),
}
# env id -> more table rows there (both methods, every seed), named METHOD-CHANGE. Memory length 30 is run
# four times: on random windows like every other row; on windows that start at an episode's first step,
# which always hold the context and the query (docs/archive: random windows left seed 1 of both models at
# -0.26); on random windows that start from the acting model's stored state (replay context); and on random
# windows of 128 steps (4 per batch instead of 8 of 64), in which a partial episode at either end leaves
# ~3/4 of the steps in whole episodes instead of ~1/2; those rows get 60k steps.
# RepeatPreviousEasy is run again with the paper's actor-critic learning rate: at the preset's 10× faster one
# the actor follows errors of the imagination and R2I's return sags after reaching 0.9 on some seeds; at 3e-5
# it learns later, so that row gets 80k steps (docs/archive). The `lrdecay` rows start at the preset's rate
# and end at the paper's, within the env's 60k steps.
TABLE_VARIANTS = {
    "bsuite/memory_len/15": ("episodewindows", "replaycontext", "longwindows"),
    "popgym/RepeatPreviousEasy": ("paperlr", "lrdecay"),
}
# env id -> env-step budget: 6-35 minutes per run, two runs side by side on a 2-core CPU (docs/archive).
BUDGETS = {
    "bsuite/memory_len/4": 20_000,  # memory length 5
    "bsuite/memory_len/9": 40_000,  # memory length 10
    "bsuite/memory_len/15": 40_000,  # memory length 30
    # The paper's headline: R2I remembers 50 and 100 steps where DreamerV3 fails past ~30 (both on
    # episode-start windows that hold a whole episode; length 50 learned in ~30k steps on some seeds).
    "bsuite/memory_len/17": 40_000,  # memory length 50
    "bsuite/memory_len/22": 60_000,  # memory length 100
    "bsuite/discounting_chain/0": 30_000,
    "popgym/RepeatPreviousEasy": 60_000,
    "popgym/AutoencodeEasy": 30_000,
}
# (env id, variant) -> its own budget where a variant learns later than the env's other rows.
VARIANT_BUDGETS = {
    ("popgym/RepeatPreviousEasy", "paperlr"): 80_000,
    # runs start answering at 20-50k steps on 128-step windows (docs/archive); 60k is ~15 min a run
    ("bsuite/memory_len/15", "longwindows"): 60_000,
}
# env id -> arguments every method gets there. A replayed window must hold a whole episode for the model to
# see the context and the query together: memory length 30 means 32-step episodes, longer than the preset's
# 32-step windows (almost no window holds both), so that row trains on 64-step windows (same train ratio,
# so half the updates, each twice as long).
# RepeatPreviousEasy's rewards are ±1/48: the preset's 63 reward bins (0.65 apart in symlog space) put 3% of
# such a target next to 0, too little to learn which answers pay; the paper's 255 bins put 13%. Its
# observation is one of 4 suits, ln 4 = 1.39 nats a step, more than the 1 nat of free bits: the symlog-MSE
# decoder gains less from the last 0.39 nats than their KL costs, so with free bits 1 the posterior held the
# suit only ~80% of the time and the agent answered 80% right. Free bits 1.5 let it hold the whole suit
# (docs/archive/results-2026-12.md). It also gets twice the steps: it starts rising only after ~20k.
ENV_ARGS = {
    "bsuite/memory_len/15": ["--train.batch_length", "64"],
    # 52- and 102-step episodes: windows of 64 and 128 steps from an episode's start (128: 4 per batch, the
    # same replayed steps per update)
    "bsuite/memory_len/17": ["--train.batch_length", "64", "--train.episode_windows", "true"],
    "bsuite/memory_len/22": [
        *("--train.batch_length", "128", "--train.batch_size", "4", "--train.episode_windows", "true"),
    ],
    "popgym/RepeatPreviousEasy": [
        *("--model.reward_bins", "255", "--model.loss.free_nats", "1.5"),
        *("--train.keep_checkpoints", "20"),  # every 5k steps, for tools/diagnose_sags.py
    ],
}
SEEDS = (0, 1)
ABLATION_SEEDS = (0,)


@dataclasses.dataclass(frozen=True)
class Run:
    env: str
    method: str
    seed: int
    steps: int

    @property
    def name(self) -> str:
        return f"{self.env.replace('/', '-')}-{self.method}-s{self.seed}"

    def command(self, out: pathlib.Path) -> list[str]:
        extra = later_flags_win(ENV_ARGS.get(self.env, []), method_arguments(self.method))
        return [
            *("r2i-agent", "train", "--env", self.env, "--preset", "cpu", "--steps", str(self.steps)),
            *("--seed", str(self.seed), "--logdir", str(out / self.name), *extra),
        ]


def table_methods(env: str) -> list[str]:
    """The table's methods on ``env``: R2I and the RSSM, then each with every variant of TABLE_VARIANTS."""
    return [*METHODS, *(f"{m}-{v}" for v in TABLE_VARIANTS.get(env, ()) for m in METHODS)]


def method_arguments(method: str) -> list[str]:
    """Arguments of ``method``: METHOD[-CHANGE...], a METHODS entry with each change of CHANGES."""
    base, *changes = method.split("-")
    return [*METHODS[base], *(flag for change in changes for flag in CHANGES[change])]


def later_flags_win(*groups: list[str]) -> list[str]:
    """``--flag value`` pairs of all groups in order, each flag once: where a later group sets a flag again
    (a method's longer windows over its env's), only the later pair stays, so a command reads as it runs."""
    pairs = [pair for group in groups for pair in zip(group[::2], group[1::2], strict=True)]
    last = {flag: i for i, (flag, _) in enumerate(pairs)}
    return [item for i, pair in enumerate(pairs) if last[pair[0]] == i for item in pair]


def budget(env: str, method: str) -> int:
    """Env steps of ``method`` on ``env``: the env's budget unless VARIANT_BUDGETS gives its variant one."""
    _, _, variant = method.partition("-")
    return VARIANT_BUDGETS.get((env, variant), BUDGETS[env])


def table_runs(seeds: tuple[int, ...] = SEEDS, ablation_seeds: tuple[int, ...] = ABLATION_SEEDS) -> list[Run]:
    """Every table row with each of ``seeds``, then the ablations with each of ``ablation_seeds``."""
    runs = [Run(env, m, s, budget(env, m)) for env in BUDGETS for m in table_methods(env) for s in seeds]
    ablations = [
        Run(env, f"r2i-{a}", s, budget(env, f"r2i-{a}")) for env, names in ABLATIONS.items() for a in names
        for s in ablation_seeds
    ]  # fmt: skip
    return runs + [a for a in ablations if a not in runs]  # an ablation may be a table row already


def read_summary(run_dir: pathlib.Path) -> dict | None:
    path = run_dir / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else None


def interval_returns(run_dir: pathlib.Path) -> list[tuple[int, float]]:
    """(episodes finished, their mean return) per log interval, from metrics.jsonl."""
    intervals, done = [], 0
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "episode/return" in record:
            intervals.append((int(record["episodes"]) - done, record["episode/return"]))
            done = int(record["episodes"])
    return intervals


def mean_episode_return(run_dir: pathlib.Path) -> tuple[int, float]:
    """(episodes, mean return over all of them) from the per-interval episode means in metrics.jsonl.

    BSuite scores discounting_chain by this mean (over its first 1000 episodes; a run here has fewer):
    score = clip(1 − 10 · (1.1 − mean), 0, 1), where 1.1 is the return of always choosing the best arm.
    """
    intervals = interval_returns(run_dir)
    done = sum(n for n, _ in intervals)
    return done, sum(n * mean for n, mean in intervals) / max(done, 1)


def final_return(run_dir: pathlib.Path, episodes: int = 100) -> float:
    """Mean return of the run's last ``episodes`` episodes, from the log's per-interval means (the oldest
    interval counted with as many of its episodes as are needed, at its mean). The table's final return:
    unlike ``summary.json``'s ``recent_return`` of runs made before 2026-12-04, which counted an episode
    once per loop step until the next log line and so gave about the last log interval's mean."""
    total, left = 0.0, episodes
    for count, mean in reversed(interval_returns(run_dir)):
        take = min(count, left)
        total, left = total + take * mean, left - take
        if not left:
            break
    return total / (episodes - left)


def execute(run: Run, out: pathlib.Path, cores: queue.Queue | None = None) -> str:
    """Run (or continue) ``run`` unless done; with ``cores``, on one core taken from it for the run."""
    summary = read_summary(out / run.name)
    if summary and summary.get("env_steps", 0) >= run.steps:
        return f"{run.name}: done already"
    command = run.command(out)
    if (out / run.name / "config.json").is_file():  # an interrupted run continues from its checkpoint
        command = ["r2i-agent", "train", "--resume", "--logdir", str(out / run.name)]
    core = None if cores is None else cores.get()
    if core is not None:
        command = ["taskset", "-c", str(core), *command]
    start = time.perf_counter()
    try:
        with open(out / f"{run.name}.log", "w") as log:
            code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT)
    finally:
        if core is not None:
            cores.put(core)
    wall = time.perf_counter() - start
    if (out / run.name).is_dir():  # a run refused before it started leaves no folder
        (out / run.name / "wall_seconds.txt").write_text(f"{wall:.0f}\n")
    return f"{run.name}: exit {code} after {wall:.0f} s"


def report(runs: list[Run], out: pathlib.Path, plots: pathlib.Path | None) -> None:
    rows = ["| env | method | seeds | env steps | final return per seed | mean | wall time per run |"]
    rows.append("|---|---|---|---:|---|---:|---|")
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.env, run.method), []).append(run)
    for (env, method), members in groups.items():
        done = [(r, read_summary(out / r.name)) for r in members]
        done = [(r, s) for r, s in done if s and s.get("recent_return") is not None]
        if not done:
            continue
        finals = [final_return(out / r.name) for r, _ in done]
        walls = [(out / r.name / "wall_seconds.txt") for r, _ in done]
        minutes = [f"{int(p.read_text()) / 60:.1f}" for p in walls if p.is_file()]
        rows.append(
            f"| `{env}` | {method} | {', '.join(str(r.seed) for r, _ in done)} | {done[0][1]['env_steps']:,} "
            f"| {', '.join(f'{v:.2f}' for v in finals)} | {statistics.mean(finals):.2f} "
            f"| {', '.join(minutes)} min |"
        )
    print("\n".join(rows))
    chains = [r for r in runs if r.env.startswith("bsuite/discounting_chain/") and read_summary(out / r.name)]
    if chains:
        print("\n| run | episodes | mean return of all episodes | bsuite score |\n|---|---:|---:|---:|")
        for run in chains:
            episodes, mean = mean_episode_return(out / run.name)
            score = min(1.0, max(0.0, 1.0 - 10.0 * (1.1 - mean)))
            print(f"| {run.name} | {episodes} | {mean:.4f} | {score:.2f} |")
    if plots is None:
        return
    plots.mkdir(parents=True, exist_ok=True)
    # One plot per env and variant, its curves grouped by model.sequence_model: s3m (R2I) vs rssm.
    # Ablations differ from R2I in other fields and are not drawn.
    for env in dict.fromkeys(r.env for r in runs):
        for variant in ["", *TABLE_VARIANTS.get(env, ())]:
            methods = {f"{m}-{variant}" if variant else m for m in METHODS}
            dirs = [str(out / r.name) for r in runs if r.env == env and r.method in methods]
            dirs = [d for d in dirs if read_summary(pathlib.Path(d))]
            if dirs:
                png = plots / f"{env.replace('/', '-')}{'-' + variant if variant else ''}.png"
                subprocess.check_call(["r2i-agent", "plot", *dirs, "-o", str(png)])


def core_pool(jobs: int) -> queue.Queue:
    """The cores the jobs may use, one per job (the first ``jobs`` this process may run on)."""
    allowed = sorted(os.sched_getaffinity(0))
    if jobs > len(allowed):
        sys.exit(f"--pin-cores: {jobs} jobs but only {len(allowed)} cores ({allowed}) to pin them to")
    if shutil.which("taskset") is None:
        sys.exit("--pin-cores needs `taskset` (util-linux) on PATH")
    cores: queue.Queue = queue.Queue()
    for core in allowed[:jobs]:
        cores.put(core)
    return cores


def main(argv: list[str] | None = None) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/table"))
    parser.add_argument("--only", default="", help="regex over 'ENV METHOD sSEED', e.g. 'memory_len/4 '")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="table row seeds")
    parser.add_argument(
        "--ablation-seeds", type=int, nargs="+", default=list(ABLATION_SEEDS), help="ablation seeds"
    )
    parser.add_argument("--pin-cores", action="store_true", help="run each job on a core of its own")
    parser.add_argument("--dry-run", action="store_true", help="print the commands and stop")
    parser.add_argument("--report", action="store_true", help="print the table of finished runs")
    parser.add_argument("--plots", type=pathlib.Path, default=None, help="with --report: PNG folder")
    args = parser.parse_args(argv)
    runs = table_runs(tuple(args.seeds), tuple(args.ablation_seeds))
    runs = [r for r in runs if re.search(args.only, f"{r.env} {r.method} s{r.seed}")]
    if not runs:
        sys.exit(f"no run name matches {args.only!r}")
    if args.dry_run:
        print("\n".join(shlex.join(r.command(args.out)) for r in runs))
        return
    if (args.plots or not args.report) and shutil.which("r2i-agent") is None:  # runs and plots call it
        sys.exit("r2i-agent is not on PATH: run `uv run python tools/learning_table.py` or activate .venv")
    if args.report:
        report(runs, args.out, args.plots)
        return
    cores = core_pool(args.jobs) if args.pin_cores else None
    args.out.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        for line in pool.map(lambda r: execute(r, args.out, cores), runs):
            print(line, flush=True)


if __name__ == "__main__":
    main()
