"""The ``r2i-agent`` command line: ``train``, ``eval``, ``plot`` and ``envs``.

Every command first checks all of its input (env id, preset, overrides, logdir) and only then computes or
writes anything; bad input prints one line ``r2i-agent: error: ...`` and exits with status 2. Heavy modules
(the training loop, environments, matplotlib) are imported inside the commands, after the checks.
"""

from __future__ import annotations

import argparse
import math
import os
import pathlib
import shlex
import sys
from collections.abc import Callable, Sequence
from typing import Any

from r2i_agent._allocator import keep_freed_memory
from r2i_agent._compile_cache import use_compile_cache
from r2i_agent._overrides import (
    ConfigError,
    FieldInfo,
    leaf_fields,
    parse_value,
    show_value,
    type_name,
    unknown_field_message,
)

PROG = "r2i-agent"
# Preset used when --preset is not given, by the suite prefix of the env id; other suites must name one.
DEFAULT_PRESETS = {"popgym": "popgym", "bsuite": "bsuite"}

_TRAIN_EPILOG = """\
preset: --preset NAME picks the starting config; without it, popgym/* envs use "popgym" and bsuite/* envs
  use "bsuite", and any other env needs --preset. Every config field above can then be overridden; the
  defaults shown are those of {source}.
steps: --steps is the run's TOTAL env-step budget (all envs together; 1e5 is accepted), so
  `--resume --steps LARGER` extends a finished run.
env kwargs: --env-kwargs KEY=VALUE ... go to r2i_envs.make (values: integers, floats, true/false, else
  strings), are checked before anything runs, and are saved with the run for --resume and eval.
logdir: <logdir>/config.json (env id and kwargs, resolved config, step budget), metrics.jsonl, TensorBoard
  events and checkpoints/. A new run refuses a logdir holding a different run (shown as a diff) unless
  --force, which moves the earlier run's files to <logdir>/previous/<time>/; checkpoints are never
  overwritten or deleted.
  --resume continues the saved run from its newest checkpoint; only --steps and --max-seconds may change.
compile cache: compiled programs are kept in ~/.cache/r2i-agent/xla ($XDG_CACHE_HOME), so the next run of the
  same config starts sooner; R2I_COMPILE_CACHE=DIR moves it, R2I_COMPILE_CACHE=off turns it off.
memory: on Linux (glibc) the process keeps the memory an update frees for the next one instead of returning
  it to the kernel (updates ~1.1-1.5x faster); R2I_MALLOC_TUNING=off turns that off.
"""


class UsageError(ValueError):
    """Bad command-line input: reported as one line with exit status 2, before any compute."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises UsageError instead of printing usage and exiting."""

    def error(self, message: str):
        if message.endswith("expected one argument"):  # e.g. `--actor_critic.lr -1e-3`
            message += " (write a value starting with '-' as --OPTION=VALUE)"
        raise UsageError(message)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``r2i-agent`` command line on ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    from r2i_agent._plot import PlotError  # light: numpy only
    from r2i_agent._rundir import RunDirError

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        try:
            namespace, extras = build_parser(args).parse_known_args(args)
        except SystemExit as done:  # --help
            return int(done.code or 0)
        job = namespace.plan(namespace, extras)
        return job()
    except (UsageError, ConfigError, RunDirError, PlotError) as err:
        print(f"{PROG}: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2


def run() -> int:
    """The ``r2i-agent`` console script: ``main()`` with compiled programs cached on disk (_compile_cache)
    and freed memory kept for the next update (_allocator)."""
    use_compile_cache(os.environ)
    keep_freed_memory(os.environ)
    return main()


def build_parser(args: Sequence[str]) -> argparse.ArgumentParser:
    """The parser; ``train`` gets one option per config field, its defaults from the preset ``args`` imply."""
    parser = _Parser(prog=PROG, description="R2I (Recall to Imagine) agent: train, evaluate, plot.")
    commands = parser.add_subparsers(
        title="commands", dest="command", required=True, metavar="{train,eval,plot,envs}"
    )
    config, source = _help_config(args)
    _add_train(commands, config, source)
    _add_eval(commands)
    _add_plot(commands)
    _add_envs(commands)
    return parser


def default_preset(env_id: str) -> str | None:
    """The preset of a new run on ``env_id`` without --preset (by suite prefix); None: it must be given."""
    return DEFAULT_PRESETS.get(env_id.partition("/")[0])


def _help_config(args: Sequence[str]) -> tuple[Any, str]:
    """The config whose values ``train --help`` shows: --preset's, else the env's default preset's, else (with
    --resume) the saved run's, else the dataclass defaults. Unusable values fall back silently here; the real
    parse reports them."""
    from r2i_agent._config import AGENT_PRESETS, AgentConfig
    from r2i_agent._rundir import RunDirError, load_run

    pre = _Parser(add_help=False, allow_abbrev=False)
    pre.add_argument("--preset")
    pre.add_argument("--env")
    pre.add_argument("--logdir", type=pathlib.Path)
    pre.add_argument("--resume", action="store_true")
    try:
        known, _ = pre.parse_known_args(args)
    except UsageError:
        known = argparse.Namespace(preset=None, env=None, logdir=None, resume=False)
    name = known.preset or (default_preset(known.env) if known.env else None)
    if name in AGENT_PRESETS:
        return AGENT_PRESETS[name], f'preset "{name}"'
    if known.resume and known.logdir is not None:
        try:
            return load_run(known.logdir).config, f"the run saved in {known.logdir}"
        except RunDirError:
            pass
    return AgentConfig(), "AgentConfig() (no preset chosen; add --preset NAME or --env ID to see its values)"


def _add_train(commands: Any, config: Any, source: str) -> None:
    from r2i_agent._config import AGENT_PRESETS

    train = commands.add_parser(
        "train",
        help="train an agent (or --resume one)",
        description="Train R2I (or the RSSM baseline) on an environment, or resume a run.",
        usage="%(prog)s (--env ID --steps N | --resume) --logdir DIR [options] [--FIELD VALUE ...]",
        epilog=_TRAIN_EPILOG.format(source=source),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    train.add_argument(
        "--env", metavar="ID", help="env id, e.g. popgym/RepeatPreviousEasy (new runs: required)"
    )
    train.add_argument(
        "--env-kwargs",
        nargs="+",
        action="extend",
        metavar="KEY=VALUE",
        help="options of the env (r2i_envs.make), e.g. memory_length=30 sticky_actions=false; typed as int, "
        "float, true/false, else string; saved with the run",
    )
    train.add_argument("--steps", type=_count, metavar="N", help="total env-step budget (new runs: required)")
    train.add_argument("--logdir", type=pathlib.Path, metavar="DIR", required=True, help="run directory")
    train.add_argument(
        "--preset",
        metavar="NAME",
        help=f"starting config: {', '.join(AGENT_PRESETS)} (default: by env suite, see below)",
    )
    train.add_argument(
        "--resume", action="store_true", help="continue the run in --logdir from its checkpoint"
    )
    train.add_argument("--force", action="store_true", help="start over in a logdir holding a different run")
    train.add_argument(
        "--max-seconds", type=_positive_float, metavar="S", help="stop cleanly with a checkpoint after S s"
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    fields = train.add_argument_group("config fields (any preset field; give the value after the option)")
    for leaf in leaf_fields(config):
        fields.add_argument(
            f"--{leaf.path}",
            dest=leaf.path,
            metavar=_metavar(leaf),
            default=None,
            help=f"(default: {show_value(leaf.value)})".replace("%", "%%"),
        )
    train.set_defaults(plan=_plan_train, fields=leaf_fields(config))


def _add_eval(commands: Any) -> None:
    evaluate = commands.add_parser(
        "eval",
        help="evaluate a run's newest checkpoint",
        description="Play episodes with the newest checkpoint of a run (greedy actions) and report returns.",
        allow_abbrev=False,
    )
    evaluate.add_argument("--logdir", type=pathlib.Path, metavar="DIR", required=True, help="run directory")
    evaluate.add_argument("--episodes", type=_count, default=10, metavar="N", help="episodes (default: 10)")
    evaluate.add_argument("--video", action="store_true", help="also write a video of image observations")
    evaluate.set_defaults(plan=_plan_eval)


def _add_plot(commands: Any) -> None:
    plot = commands.add_parser(
        "plot",
        help="plot learning curves of runs",
        description="Plot a metric of several runs against env steps, grouped, as mean and spread over runs.",
        allow_abbrev=False,
    )
    plot.add_argument("runs", nargs="+", type=pathlib.Path, metavar="RUN_DIR", help="run directories")
    plot.add_argument(
        "-o", "--output", type=pathlib.Path, required=True, metavar="FILE.png", help="PNG to write"
    )
    plot.add_argument("--metric", default="episode/return", help="metric key (default: episode/return)")
    plot.add_argument(
        "--group-by",
        default="model.sequence_model",
        metavar="FIELD",
        help="config field (or its last part, or env_id) grouping runs (default: model.sequence_model)",
    )
    plot.add_argument(
        "--spread", choices=("minmax", "std"), default="minmax", help="band around the mean (default: minmax)"
    )
    plot.set_defaults(plan=_plan_plot)


def _add_envs(commands: Any) -> None:
    envs = commands.add_parser(
        "envs",
        help="list env ids",
        description="Print the env ids of SUITE, or of every built-in suite, one per line. gym/ takes any "
        "registered Gymnasium id (`envs gym` lists those of the installed packages).",
        allow_abbrev=False,
    )
    envs.add_argument("suite", nargs="?", metavar="SUITE", help="e.g. bsuite, popgym, atari, gym")
    envs.set_defaults(plan=_plan_envs)


def _plan_envs(ns: argparse.Namespace, extras: list[str]) -> Callable[[], int]:
    import r2i_envs

    _reject_extras(extras, [])
    try:
        ids = r2i_envs.list_envs(ns.suite)
    except (r2i_envs.UnknownEnvError, r2i_envs.MissingDependencyError) as err:
        raise UsageError(str(err)) from None

    def job() -> int:
        for env_id in ids:
            print(env_id)
        return 0

    return job


def parse_env_kwargs(items: Sequence[str]) -> dict[str, bool | int | float | str]:
    """``--env-kwargs`` items ``KEY=VALUE`` as typed kwargs: an int, else a finite float, else ``true`` /
    ``false`` (any case) as a bool, else the string."""
    kwargs: dict[str, bool | int | float | str] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.isidentifier():
            raise UsageError(f"--env-kwargs takes KEY=VALUE items; got {item!r}")
        if key in kwargs:
            raise UsageError(f"--env-kwargs gives {key} twice")
        if key in _MAKE_ARGUMENTS:
            raise UsageError(f"--env-kwargs cannot set {key}: {_MAKE_ARGUMENTS[key]}")
        kwargs[key] = _typed_value(text)
    return kwargs


# Arguments of r2i_envs.make that the training loop sets itself.
_MAKE_ARGUMENTS = {
    "num_envs": "set it with --train.num_envs",
    "seed": "set it with --seed",
    "processes": "each suite decides where its envs step",
}


def _typed_value(text: str) -> bool | int | float | str:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def _plan_train(ns: argparse.Namespace, extras: list[str]) -> Callable[[], int]:
    """Check everything a train command needs; returns the job that writes and computes."""
    from r2i_agent._rundir import RunSpec, check_new_run, check_resume, move_aside, save_run

    _reject_extras(extras, ns.fields)
    env_kwargs = None if ns.env_kwargs is None else parse_env_kwargs(ns.env_kwargs)
    overrides = {
        leaf.path: getattr(ns, leaf.path) for leaf in ns.fields if getattr(ns, leaf.path) is not None
    }
    logdir: pathlib.Path = ns.logdir
    if ns.resume:
        if ns.force:
            raise UsageError("--resume continues a run and --force starts one over; pass only one")
        saved = check_resume(logdir)
        base = _preset(ns.preset) if ns.preset is not None else saved.config
        config = _apply(base, overrides)
        kwargs = saved.env_kwargs if env_kwargs is None else env_kwargs
        run = RunSpec(ns.env or saved.env_id, config, ns.steps or saved.steps, saved.version, kwargs)
        check_resume(logdir, run)
        to_move: list[pathlib.Path] = []
    else:
        if ns.env is None or ns.steps is None:
            raise UsageError("a new run needs --env ID and --steps N (or pass --resume to continue a run)")
        check_env_id(ns.env, env_kwargs or {})
        name = ns.preset if ns.preset is not None else default_preset(ns.env)
        if name is None:
            raise UsageError(
                f"no default preset for {ns.env}; pass --preset NAME (see r2i-agent train --help)"
            )
        run = RunSpec(ns.env, _apply(_preset(name), overrides), ns.steps, env_kwargs=env_kwargs or {})
        to_move = check_new_run(logdir, run, force=ns.force)

    def job() -> int:
        moved = move_aside(logdir, to_move)
        if moved is not None:
            print(f"{PROG}: moved the earlier run's files to {moved}", file=sys.stderr)
        save_run(logdir, run)
        return _run_training(
            run, logdir, resume=ns.resume, max_seconds=ns.max_seconds, progress=not ns.no_progress
        )

    return job


def _run_training(
    run: Any, logdir: pathlib.Path, *, resume: bool, max_seconds: float | None, progress: bool
) -> int:
    """Run the loop; 0 when it finished or was stopped cleanly (budget, --max-seconds, SIGINT, SIGTERM),
    1 with one error line when it failed (the newest checkpoint is then the last good state), 130 on a
    second Ctrl-C."""
    from r2i_agent._checkpoint import CheckpointError, CheckpointFormatError
    from r2i_agent._train import train
    from r2i_envs import WorkerError

    again = f"{PROG} train --resume --logdir {shlex.quote(str(logdir))}"
    try:
        summary = train(
            run.config,
            run.env_id,
            run.steps,
            logdir,
            resume=resume,
            max_seconds=max_seconds,
            progress=progress,
            env_kwargs=run.env_kwargs,
        )
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted; continue from the newest checkpoint with: {again}", file=sys.stderr)
        return 130
    except (CheckpointError, FloatingPointError, WorkerError, OSError) as err:
        print(f"{PROG}: error: {' '.join(str(err).split())}", file=sys.stderr)
        if not isinstance(err, CheckpointFormatError):  # resuming would only fail the same way
            print(f"{PROG}: continue from the newest intact checkpoint with: {again}", file=sys.stderr)
        return 1
    print(format_summary(run.env_id, run.steps, summary))
    stopped_by = summary.get("stopped_by")
    if stopped_by is not None:
        why = "--max-seconds reached" if stopped_by == "max_seconds" else f"stopped by {stopped_by}"
        print(f"{why}; checkpoint at env step {summary.get('checkpoint_step')}; continue with: {again}")
    print(f"logs: {logdir / 'metrics.jsonl'} (tensorboard --logdir {shlex.quote(str(logdir))})")
    return 0


def format_summary(env_id: str, steps: int, summary: dict[str, Any]) -> str:
    """One line about a finished ``train`` call, from whichever summary keys are present."""
    parts = [f"{env_id}: {summary.get('env_steps', '?')} of {steps} env steps"]
    for key, label in [("updates", "updates"), ("episodes", "episodes")]:
        if key in summary:
            parts.append(f"{summary[key]} {label}")
    if summary.get("seconds") is not None:
        parts.append(f"{summary['seconds']:.1f} s")
    if summary.get("env_steps_per_second") is not None:
        parts.append(f"{summary['env_steps_per_second']:.1f} env steps/s")
    if summary.get("updates_per_second") is not None:
        parts.append(f"{summary['updates_per_second']:.2f} updates/s")
    if summary.get("recent_return") is not None:
        parts.append(f"recent return {summary['recent_return']:.3f}")
    return ", ".join(parts)


def _plan_eval(ns: argparse.Namespace, extras: list[str]) -> Callable[[], int]:
    from r2i_agent._rundir import check_resume

    _reject_extras(extras, [])
    saved = check_resume(ns.logdir, action="evaluate")  # a saved run with a checkpoint
    if ns.video:
        import r2i_envs

        if "image" not in r2i_envs.describe(saved.env_id, **saved.env_kwargs).obs_space:
            raise UsageError(f"--video needs image observations; {saved.env_id} has none")

    def job() -> int:
        import numpy as np

        from r2i_agent._checkpoint import CheckpointError
        from r2i_agent._train import evaluate

        try:
            result = evaluate(ns.logdir, ns.episodes, video=ns.video)
        except CheckpointError as err:  # no intact checkpoint, or one of another format
            print(f"{PROG}: error: {' '.join(str(err).split())}", file=sys.stderr)
            return 1
        returns = np.asarray(result["returns"], dtype=np.float64)
        print(
            f"{returns.size} episodes: return {returns.mean():.3f} ± {returns.std():.3f} "
            f"(min {returns.min():.3f}, max {returns.max():.3f})"
        )
        if result.get("video"):
            print(f"video: {result['video']}")
        print(f"returns: {result['returns_file']}")
        return 0

    return job


def _plan_plot(ns: argparse.Namespace, extras: list[str]) -> Callable[[], int]:
    from r2i_agent._plot import load_groups, plot_runs

    _reject_extras(extras, [])
    load_groups(ns.runs, ns.metric, ns.group_by)  # every input error before anything is drawn

    def job() -> int:
        counts = plot_runs(ns.runs, ns.output, metric=ns.metric, group_by=ns.group_by, spread=ns.spread)
        groups = ", ".join(f"{name}: {n}" for name, n in sorted(counts.items()))
        print(f"wrote {ns.output} (runs per {ns.group_by}: {groups})")
        return 0

    return job


def check_env_id(env_id: str, env_kwargs: dict[str, bool | int | float | str] | None = None) -> None:
    """UsageError (with the nearest ids) unless ``env_id`` names an env that takes ``env_kwargs``; builds no
    env for a listed id without kwargs (``r2i_envs.describe`` checks the kwargs, and may build one)."""
    import r2i_envs
    from r2i_agent._rundir import show_env_kwargs

    if env_id in r2i_envs.list_envs() and not env_kwargs:
        return
    try:
        r2i_envs.describe(env_id, **(env_kwargs or {}))
    except r2i_envs.UnknownEnvError as err:
        raise UsageError(str(err)) from None
    except Exception as err:  # e.g. an unknown option, or a parametric id without its options
        if env_kwargs:
            shown = show_env_kwargs(env_kwargs)
            raise UsageError(f"env id {env_id!r} with --env-kwargs {shown}: {err}") from None
        raise UsageError(f"env id {env_id!r} cannot be used here without --env-kwargs: {err}") from None


def _preset(name: str) -> Any:
    from r2i_agent._config import agent_preset

    try:
        return agent_preset(name)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _apply(config: Any, overrides: dict[str, str]) -> Any:
    from r2i_agent._overrides import apply_overrides

    config = apply_overrides(config, overrides)
    problem = config_problem(config)
    if problem:
        raise UsageError(f"invalid config: {problem}")
    return config


# Ranges the config classes leave unchecked but the model and the training loop need: ints at least 1 and
# floats (finite, see parse_value) at least 0, except these.
_INT_MINIMUM = {
    "seed": 0,
    "train.prefill": 0,
    "model.layers": 0,
    "model.enc_layers": 0,
    "actor_critic.layers": 0,
    "actor_critic.lr_decay_steps": 0,
    "model.reward_bins": 2,
}
_POSITIVE = {
    "model.ssm.dt_min",
    "model.ssm.dt_max",
    "model.reward_range",
    "model.optim.lr",
    "model.optim.clip",
    "actor_critic.clip",
    "actor_critic.lr_end",
}
_FRACTIONS = {"model.unimix", "actor_critic.slow_rate", "actor_critic.return_decay"}  # in [0, 1]
_MAX_SEED = 2**32 - 1


def config_problem(config: Any) -> str | None:
    """Why ``config`` cannot be trained (a value out of its range), or None."""
    for leaf in leaf_fields(config):
        path, value = leaf.path, leaf.value
        if leaf.type is int and value < _INT_MINIMUM.get(path, 1):
            return f"{path} must be at least {_INT_MINIMUM.get(path, 1)}, got {value}"
        if leaf.type is float and path in _POSITIVE and not value > 0:
            return f"{path} must be positive, got {value}"
        if leaf.type is float and path in _FRACTIONS and not 0 <= value <= 1:
            return f"{path} must be in [0, 1], got {value}"
        if leaf.type is float and not value >= 0:
            return f"{path} must not be negative, got {value}"
    ssm = config.model.ssm
    if config.seed > _MAX_SEED:
        return f"seed must be at most {_MAX_SEED}, got {config.seed}"
    if ssm.state % ssm.blocks or (ssm.conj_sym and ssm.state // ssm.blocks % 2):
        even = " (an even multiple with model.ssm.conj_sym)" if ssm.conj_sym else ""
        return f"model.ssm.state ({ssm.state}) must be a multiple of model.ssm.blocks ({ssm.blocks}){even}"
    if ssm.dt_min > ssm.dt_max:
        return f"model.ssm.dt_min ({ssm.dt_min}) must not exceed model.ssm.dt_max ({ssm.dt_max})"
    return None


def _reject_extras(extras: list[str], fields: Sequence[FieldInfo]) -> None:
    """UsageError for arguments no option took, suggesting the closest config field for ``--typo``."""
    if not extras:
        return
    first = extras[0]
    if first.startswith("--"):
        raise UsageError(unknown_field_message(first[2:].partition("=")[0], [leaf.path for leaf in fields]))
    raise UsageError(f"unrecognized arguments: {' '.join(extras)}")


def _metavar(leaf: FieldInfo) -> str:
    return type_name(leaf.type).upper() if type_name(leaf.type).isidentifier() else type_name(leaf.type)


def _count(text: str) -> int:
    """A positive whole number, also in float notation (``1e5``)."""
    try:
        value = parse_value("value", int, text)
    except ConfigError:
        raise argparse.ArgumentTypeError(
            f"expected a positive whole number such as 200000 or 2e5, got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value
