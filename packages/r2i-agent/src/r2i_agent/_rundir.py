"""The run directory: ``config.json`` (what a run is) and the rules for starting or resuming one in a logdir.

Layout of ``<logdir>``: ``config.json`` (written here), ``metrics.jsonl`` and TensorBoard events (the logger),
``checkpoints/<env_steps>/`` (orbax). ``config.json`` holds::

    {"format": 1, "r2i_agent_version": "0.1.0", "env_id": "popgym/RepeatPreviousEasy", "env_kwargs": {},
     "steps": 200000, "config": {"model": {...}, "actor_critic": {...}, "train": {...}, "seed": 0}}

where ``config`` is ``dataclasses.asdict`` of the resolved :class:`AgentConfig`, ``steps`` the run's total
env-step budget and ``env_kwargs`` the options of ``r2i_envs.make`` (``--env-kwargs``; bool, int, float or
string values; runs written before it existed load with ``{}``).
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import os
import pathlib
import tempfile
import typing
from typing import Any

from r2i_agent._config import AgentConfig
from r2i_agent._overrides import ConfigError, coerce_value, leaf_fields, show_value, suggest

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
FORMAT = 1
# Files of an earlier run that `--force` moves aside (never deletes) before a new run starts in its logdir.
_RUN_FILES = ("config.json", "metrics.jsonl", "events.out.tfevents.*")


# Config fields added after format 1 and the value that reproduces a run written before each existed, so
# that older runs still resume and evaluate. Any other missing key is an error.
ADDED_FIELDS: dict[str, Any] = {
    "config.train.max_consecutive_skips": 20,  # 2026-11-26: stopping on non-finite updates
    "config.train.imagination_chunk": 1024,  # 2026-11-26: how gradients are computed, not what
    "config.train.model_chunk": 8192,
    "config.model.ssm.resets": True,  # 2026-11-26: the resets-off ablation
    "config.train.episode_windows": False,  # 2026-11-26: replayed windows started anywhere
    "config.train.replay_context": False,  # 2026-12-06
    "config.actor_critic.lr_decay_steps": 0,  # 2026-12-07: a constant actor-critic lr
    "config.actor_critic.lr_end": 3e-5,
    # Before the R2I-faithfulness fixes: zero initial states, prior and posterior as deep as the heads,
    # one clip for actor and critic, no weight decay. A callable reads the section's other fields.
    "config.model.initial": "zeros",
    "config.model.latent_layers": lambda section: section["layers"],
    "config.model.optim.weight_decay": 0.0,
    "config.actor_critic.critic_clip": lambda section: section["clip"],
}


class RunDirError(ValueError):
    """A logdir cannot be used as asked (conflicting run, nothing to resume, unreadable config.json)."""


EnvKwargs = dict[str, bool | int | float | str]


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """What defines a run: env id and options, resolved config and total env-step budget (plus the writing
    version)."""

    env_id: str
    config: AgentConfig
    steps: int
    version: str = dataclasses.field(default_factory=lambda: package_version())
    env_kwargs: EnvKwargs = dataclasses.field(default_factory=dict)


def package_version() -> str:
    """The installed version of r2i-agent (``unknown`` when run from a source tree without metadata)."""
    try:
        return importlib.metadata.version("r2i-agent")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def run_to_dict(run: RunSpec) -> dict[str, Any]:
    """The JSON document of ``config.json``."""
    return {
        "format": FORMAT,
        "r2i_agent_version": run.version,
        "env_id": run.env_id,
        "env_kwargs": dict(run.env_kwargs),
        "steps": run.steps,
        "config": dataclasses.asdict(run.config),
    }


def run_from_dict(data: Any) -> RunSpec:
    """Inverse of :func:`run_to_dict`; ConfigError for missing or unknown keys and ill-typed values."""
    if not isinstance(data, dict):
        raise ConfigError(f"expected a JSON object, got {type(data).__name__}")
    data = {"env_kwargs": {}, **data}  # runs from before --env-kwargs
    keys = {"format", "r2i_agent_version", "env_id", "env_kwargs", "steps", "config"}
    _check_keys(data, keys, "")
    if data["format"] != FORMAT:
        raise ConfigError(f"format {data['format']!r} is not supported (this version reads format {FORMAT})")
    return RunSpec(
        env_id=coerce_value("env_id", str, data["env_id"]),
        config=dataclass_from_dict(AgentConfig, data["config"], "config."),
        steps=coerce_value("steps", int, data["steps"]),
        version=coerce_value("r2i_agent_version", str, data["r2i_agent_version"]),
        env_kwargs=_env_kwargs(data["env_kwargs"]),
    )


def _env_kwargs(data: Any) -> EnvKwargs:
    if not isinstance(data, dict):
        raise ConfigError(f"env_kwargs should be an object, got {data!r}")
    for key, value in data.items():
        if not isinstance(value, bool | int | float | str):
            raise ConfigError(f"env_kwargs.{key} should be a bool, number or string, got {value!r}")
    return dict(data)


def show_env_kwargs(kwargs: EnvKwargs) -> str:
    """``key=value ...`` as ``--env-kwargs`` takes them, keys sorted (``{}`` when there are none)."""
    return " ".join(f"{k}={show_value(v)}" for k, v in sorted(kwargs.items())) or "{}"


def _typed(kwargs: EnvKwargs) -> dict[str, tuple[type, object]]:
    return {key: (type(value), value) for key, value in kwargs.items()}  # True == 1, but not as an option


def dataclass_from_dict(cls: type, data: Any, prefix: str = "") -> Any:
    """Build nested dataclass ``cls`` from ``dataclasses.asdict`` output, checking keys and value types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} should be an object, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {field.name for field in dataclasses.fields(cls) if field.init}
    older = {name: ADDED_FIELDS[prefix + name] for name in names - set(data) if prefix + name in ADDED_FIELDS}
    older = {name: value(data) if callable(value) else value for name, value in older.items()}
    data = {**older, **data}
    _check_keys(data, names, prefix)
    kwargs = {}
    for name in names:
        tp = hints[name]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            kwargs[name] = dataclass_from_dict(tp, data[name], f"{prefix}{name}.")
        else:
            kwargs[name] = coerce_value(prefix + name, tp, data[name])
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"invalid config: {err}") from None


def _check_keys(data: dict, expected: set[str], prefix: str) -> None:
    unknown, missing = sorted(set(data) - expected), sorted(expected - set(data))
    if unknown:
        close = suggest(unknown[0], sorted(expected))
        hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
        raise ConfigError(f"unknown key {prefix}{unknown[0]}{hint}")
    if missing:
        raise ConfigError(f"missing key {prefix}{missing[0]}")


def save_run(logdir: pathlib.Path, run: RunSpec) -> None:
    """Write ``<logdir>/config.json`` atomically."""
    logdir.mkdir(parents=True, exist_ok=True)
    write_json_atomically(logdir / CONFIG_FILE, run_to_dict(run))


def write_json_atomically(path: pathlib.Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` through a temp file in the same directory and ``os.replace``,
    so a reader (or a crash) never sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".json.tmp")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(json.dumps(data, indent=2) + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def load_run(logdir: pathlib.Path) -> RunSpec:
    """Read ``<logdir>/config.json``; RunDirError if it is missing or unreadable."""
    path = logdir / CONFIG_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise RunDirError(f"{logdir} holds no run ({CONFIG_FILE} not found)") from None
    except (OSError, json.JSONDecodeError) as err:
        raise RunDirError(f"cannot read {path}: {err}") from None
    try:
        return run_from_dict(data)
    except ConfigError as err:
        raise RunDirError(f"cannot use {path}: {err}") from None


def config_diff(a: Any, b: Any) -> list[str]:
    """One line per leaf field that differs between two configs of the same class: ``path: old -> new``."""
    old = {leaf.path: leaf.value for leaf in leaf_fields(a)}
    new = {leaf.path: leaf.value for leaf in leaf_fields(b)}
    return [
        f"{path}: {show_value(old.get(path))} -> {show_value(new.get(path))}"
        for path in [*old, *(p for p in new if p not in old)]
        if old.get(path) != new.get(path)
    ]


def run_diff(old: RunSpec, new: RunSpec) -> list[str]:
    """:func:`config_diff` plus the env id and options: what makes two runs different runs (the step budget
    does not)."""
    env = [f"env_id: {old.env_id} -> {new.env_id}"] if old.env_id != new.env_id else []
    if _typed(old.env_kwargs) != _typed(new.env_kwargs):
        env.append(f"env_kwargs: {show_env_kwargs(old.env_kwargs)} -> {show_env_kwargs(new.env_kwargs)}")
    return env + config_diff(old.config, new.config)


def has_checkpoints(logdir: pathlib.Path) -> bool:
    """Whether ``<logdir>/checkpoints`` holds a finished checkpoint (orbax names them by step number)."""
    directory = logdir / CHECKPOINT_DIR
    return directory.is_dir() and any(p.is_dir() and p.name.isdigit() for p in directory.iterdir())


def check_writable(logdir: pathlib.Path) -> None:
    """Refuse a logdir this process cannot create or write to, before any compute; leaves nothing behind."""
    existing = logdir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise RunDirError(f"cannot create --logdir {logdir}: {existing} is not a directory")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise RunDirError(f"cannot write to --logdir {logdir}: {err.strerror or err} ({existing})") from None


def check_new_run(logdir: pathlib.Path, run: RunSpec, *, force: bool) -> list[pathlib.Path]:
    """Check that ``run`` may start afresh in ``logdir``; returns earlier run files to move aside first.

    Refuses (RunDirError) when the logdir holds checkpoints (they are never overwritten; resume or pick a new
    logdir) or a run with a different env id or config, unless ``force``. Writes nothing.
    """
    if logdir.exists() and not logdir.is_dir():
        raise RunDirError(f"--logdir {logdir} exists and is not a directory")
    check_writable(logdir)
    if has_checkpoints(logdir):
        raise RunDirError(
            f"{logdir} already holds checkpoints of a run; continue it with "
            f"`r2i-agent train --resume --logdir {logdir}` or choose a new --logdir (--force never deletes "
            "checkpoints)"
        )
    if not (logdir / CONFIG_FILE).exists():
        return []
    if not force:
        try:
            saved = load_run(logdir)
        except RunDirError as err:
            raise RunDirError(f"{err}; choose a new --logdir or pass --force to start over there") from None
        diff = run_diff(saved, run)
        if diff:
            raise RunDirError(
                f"{logdir} holds a different run ({'; '.join(diff)}); choose a new --logdir, pass --force to "
                "start over there, or --resume without changes to continue it"
            )
    return earlier_run_files(logdir)


def check_resume(
    logdir: pathlib.Path, requested: RunSpec | None = None, *, action: str = "resume"
) -> RunSpec:
    """The saved run of ``logdir`` if it can be resumed (or evaluated); RunDirError otherwise. Writes nothing.

    ``requested``: the run the command line asks for (saved config plus its overrides); it must not differ
    from the saved one except in the step budget.
    """
    if not logdir.is_dir():
        raise RunDirError(f"cannot {action}: {logdir} does not exist")
    saved = load_run(logdir)
    if not has_checkpoints(logdir):
        hint = "; start it over with --force instead of --resume" if action == "resume" else ""
        raise RunDirError(
            f"cannot {action}: {logdir} holds no checkpoint yet (the run stopped before its first one){hint}"
        )
    if action == "resume":
        check_writable(logdir)
    if requested is not None:
        diff = run_diff(saved, requested)
        if diff:
            raise RunDirError(
                f"cannot resume {logdir} with a different config ({'; '.join(diff)}); only --steps and "
                "--max-seconds may change on --resume; start a new run in a new --logdir instead"
            )
    return saved


def earlier_run_files(logdir: pathlib.Path) -> list[pathlib.Path]:
    """The files an earlier run left at the top of ``logdir`` (config, metrics, TensorBoard events)."""
    return sorted(p for pattern in _RUN_FILES for p in logdir.glob(pattern) if p.is_file())


def move_aside(logdir: pathlib.Path, files: list[pathlib.Path]) -> pathlib.Path | None:
    """Move ``files`` into ``<logdir>/previous/<UTC time>/`` (kept, not deleted); returns that folder."""
    if not files:
        return None
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = logdir / "previous" / stamp
    target.mkdir(parents=True)
    for path in files:
        os.replace(path, target / path.name)
    return target
