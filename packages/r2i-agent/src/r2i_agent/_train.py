"""The training loop: act in vectorized envs, store steps in replay, update at the train ratio, log,
evaluate and checkpoint. Deterministic on CPU for a seed; a resumed run continues exactly where the
checkpoint left off (env state included for in-process suites)."""

from __future__ import annotations

import collections
import dataclasses
import errno
import json
import pathlib
import pickle
import shutil
import signal
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import r2i_envs
from worldmodel import Batch, WorldModel, initial_carries

from ._agent import TrainState, act_jit, init_train_state, make_agent, make_update
from ._checkpoint import Checkpointer
from ._config import AgentConfig, TrainConfig
from ._logging import Progress, RunLogger
from ._replay import Field, Replay
from ._rundir import write_json_atomically

SUMMARY_FILE = "summary.json"  # the last train() call's summary, in the logdir

OBS_KEYS = ("vector", "image")


@dataclasses.dataclass
class Counters:
    """Progress of a run, saved with every checkpoint."""

    env_steps: int = 0
    updates: int = 0
    episodes: int = 0
    learning_from: int | None = None  # the env step of the first update (see ``updates_due``)


def updates_due(env_steps: int, learning_from: int | None, train: TrainConfig) -> int:
    """Updates owed after ``env_steps``: none before ``learning_from``, the first env step after prefill
    at which replay can give a batch; one there; then ``train_ratio / (B·T)`` per env step. Counting from
    there, as DreamerV3's ``Ratio`` does, keeps the updates within one of the ratio; counting from the
    prefill would owe a burst for every step spent waiting until each env holds a whole window."""
    if learning_from is None or env_steps < learning_from:
        return 0
    return 1 + int((env_steps - learning_from) * train.train_ratio / (train.batch_size * train.batch_length))


def _action_spec(env) -> tuple[str, int]:
    space = env.act_space["action"]
    if space.n is not None:
        return "discrete", int(space.n)
    return "continuous", int(np.prod(space.shape))


def _observation(step: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The observation keys of an env step or replay sample (without reward and flags)."""
    return {key: step[key] for key in OBS_KEYS if key in step}


def _obs_shapes(env) -> dict[str, tuple[int, ...]]:
    return {key: tuple(env.obs_space[key].shape) for key in OBS_KEYS if key in env.obs_space}


def _replay_fields(env, action_size: int, context_size: int = 0) -> dict[str, Field]:
    """Replay's per-step fields besides the flags: observations, action, reward and, when
    ``context_size`` > 0, the acting carry as a vector (``replay_context``)."""
    fields = {
        key: Field(shape, np.dtype(env.obs_space[key].dtype)) for key, shape in _obs_shapes(env).items()
    }
    fields["action"] = Field((action_size,), np.dtype(np.float32))
    fields["reward"] = Field((), np.dtype(np.float32))
    if context_size:
        fields["context"] = Field((context_size,), np.dtype(np.float32))
    return fields


def _to_batch(sample: dict[str, np.ndarray]) -> tuple[Batch, jax.Array | None]:
    """Replay windows [B, T] as the world model's batch, and the carries [B, C] they start from. Without a
    stored ``context`` (None) every window starts as a new sequence; with one, a window that begins
    mid-episode continues from its first step's context."""
    context = sample.get("context")
    is_first = sample["is_first"].copy()
    if context is None:
        is_first[:, 0] = True
    batch = Batch(
        obs={key: jnp.asarray(value) for key, value in _observation(sample).items()},
        action=jnp.asarray(sample["action"]),
        reward=jnp.asarray(sample["reward"]),
        is_first=jnp.asarray(is_first),
        is_terminal=jnp.asarray(sample["is_terminal"]),
    )
    return batch, None if context is None else jnp.asarray(context)


_carry_vector_jit = jax.jit(WorldModel.carry_to_vector)


def _env_action(kind: str, action: np.ndarray) -> np.ndarray:
    """What the env is given: the index of a one-hot action, or a continuous action clipped to [−1, 1]
    (the policy's samples are not clipped; the world model clips what it reads the same way)."""
    if kind == "discrete":
        return action.argmax(-1).astype(np.int64)
    return np.clip(action, -1.0, 1.0).astype(np.float32)


def _random_actions(rng: np.random.Generator, kind: str, num: int, size: int) -> np.ndarray:
    if kind == "discrete":
        return np.eye(size, dtype=np.float32)[rng.integers(0, size, num)]
    return rng.uniform(-1, 1, (num, size)).astype(np.float32)


class _Run:
    """Mutable state of one training run (kept out of the pure update and acting functions)."""

    def __init__(
        self,
        config: AgentConfig,
        env_id: str,
        logdir: pathlib.Path,
        env_kwargs: Mapping[str, object] | None = None,
    ):
        self.config = config
        self.env = r2i_envs.make(
            env_id, num_envs=config.train.num_envs, seed=config.seed, **(env_kwargs or {})
        )
        self.kind, self.action_size = _action_spec(self.env)
        root = jax.random.key(config.seed)
        init_key, self.act_key, self.update_key = jax.random.split(root, 3)
        agent = make_agent(config, _obs_shapes(self.env), self.action_size, self.kind, key=init_key)
        self.state: TrainState = init_train_state(config, agent)
        self.update = make_update(config)
        self.replay = Replay(
            config.train.replay_capacity,
            _replay_fields(
                self.env,
                self.action_size,
                agent.world_model.carry_size if config.train.replay_context else 0,
            ),
            config.train.num_envs,
            seed=config.seed,
        )
        self.rng = np.random.default_rng(config.seed)
        self.counters = Counters()
        self.seconds: dict[str, float] = collections.defaultdict(float)  # profile: where time goes
        self._start_fresh_episodes()
        self.checkpointer = Checkpointer(logdir / "checkpoints", config.train.keep_checkpoints)

    def _start_fresh_episodes(self) -> None:
        """Reset every env, the acting carry and the running episode returns and lengths."""
        num = self.config.train.num_envs
        self.obs = self.env.reset()
        self.carry = initial_carries(self.state.agent.world_model, num)
        self.episode_return = np.zeros(num)
        self.episode_length = np.zeros(num, np.int64)

    # ----- checkpoints -----

    def _arrays(self) -> dict:
        arrays = {
            "train_state": eqx.filter(self.state, eqx.is_array),
            "carry": self.carry,
            "obs": dict(self.obs),
            "episode_return": self.episode_return,
            "episode_length": self.episode_length,
        }
        if self.config.train.replay_in_checkpoint:
            arrays["replay"] = self.replay.state_dict(copy=False)["data"]  # saved synchronously
        try:
            arrays["env"] = np.frombuffer(pickle.dumps(self.env), np.uint8)
        except (pickle.PicklingError, TypeError, AttributeError):
            pass  # worker-process envs: resume starts fresh episodes
        return arrays

    def save(self) -> None:
        """Checkpoint at the current env step (once: a step already saved holds this same state)."""
        if self.checkpointer.latest_step() == self.counters.env_steps:
            return
        replay = self.replay.state_dict(copy=False)
        arrays = self._arrays()
        meta = {
            "counters": dataclasses.asdict(self.counters),
            "replay": {"cursor": replay["cursor"], "count": replay["count"], "rng": replay["rng"]},
            "rng": self.rng.bit_generator.state,
        }
        self.checkpointer.save(self.counters.env_steps, arrays, meta)

    def restore(self, step: int | None = None) -> int:
        """Load the newest intact checkpoint (broken newer ones are moved aside), or checkpoint ``step``;
        returns its step."""
        arrays, meta, step = self.checkpointer.restore(self._arrays(), step)
        self.state = eqx.combine(arrays["train_state"], eqx.filter(self.state, eqx.is_array, inverse=True))
        self.carry = jax.tree.map(jnp.asarray, arrays["carry"])
        self.obs = {key: np.asarray(value) for key, value in arrays["obs"].items()}
        self.episode_return = np.asarray(arrays["episode_return"])
        self.episode_length = np.asarray(arrays["episode_length"])
        if "replay" in arrays:
            self.replay.load_state_dict({"data": arrays["replay"], **meta["replay"]})
        if "env" in arrays:
            self._restore_env(np.asarray(arrays["env"]).tobytes())
        self.rng.bit_generator.state = meta["rng"]
        # Checkpoints from before ``learning_from`` counted the ratio from the prefill.
        self.counters = Counters(**{"learning_from": self.config.train.prefill, **meta["counters"]})
        return step

    def _restore_env(self, pickled: bytes) -> None:
        """The saved envs mid-episode; if this r2i-envs cannot load them (saved by another version), fresh
        episodes in the envs made at start, with a warning."""
        try:
            env = pickle.loads(pickled)
        except (AttributeError, ImportError, TypeError, pickle.UnpicklingError) as error:
            print(
                f"warning: the checkpoint's env state does not load here ({type(error).__name__}: {error}); "
                "the run continues with fresh episodes",
                file=sys.stderr,
            )
            self._start_fresh_episodes()
            return
        self.env.close()
        self.env = env

    # ----- acting and learning -----

    def step_envs(self) -> list[tuple[float, int]]:
        """One vector step: act, store in replay, step the envs. Returns finished (return, length)."""
        observation = _observation(self.obs)
        num = self.config.train.num_envs
        tick = time.perf_counter()
        # The carry this step's state is computed from: where a replayed window starting here picks up.
        context = (
            {"context": np.asarray(_carry_vector_jit(self.carry))} if self.config.train.replay_context else {}
        )
        if self.counters.env_steps < self.config.train.prefill:
            action = _random_actions(self.rng, self.kind, num, self.action_size)
        else:
            key = jax.random.fold_in(self.act_key, self.counters.env_steps)
            action, self.carry = act_jit(self.state.agent, self.carry, observation, self.obs["is_first"], key)
            action = np.asarray(action, np.float32)
        tock = time.perf_counter()
        self.seconds["act"] += tock - tick
        self.replay.add(
            {
                **observation,
                "action": action,
                "reward": self.obs["reward"],
                "is_first": self.obs["is_first"],
                "is_last": self.obs["is_last"],
                "is_terminal": self.obs["is_terminal"],
                **context,
            }
        )
        tick = time.perf_counter()
        self.seconds["replay_add"] += tick - tock
        self.obs = self.env.step(_env_action(self.kind, action))
        self.seconds["env"] += time.perf_counter() - tick
        self.counters.env_steps += num
        self.episode_return += self.obs["reward"]
        self.episode_length += 1
        finished = [
            (float(self.episode_return[i]), int(self.episode_length[i]))
            for i in np.flatnonzero(self.obs["is_last"])
        ]
        self.episode_return[self.obs["is_last"]] = 0.0
        self.episode_length[self.obs["is_last"]] = 0
        self.counters.episodes += len(finished)
        return finished

    def learn(self) -> list[dict]:
        train, counters = self.config.train, self.counters
        metrics = []
        windows = {"episode_starts": train.episode_windows}
        can_sample = lambda: self.replay.can_sample(train.batch_length, **windows)
        if counters.learning_from is None and counters.env_steps >= train.prefill and can_sample():
            counters.learning_from = counters.env_steps
        while (
            counters.updates < updates_due(counters.env_steps, counters.learning_from, train) and can_sample()
        ):
            tick = time.perf_counter()
            sample = self.replay.sample(
                train.batch_size, train.batch_length, **windows, first_step_only=("context",)
            )
            batch, context = _to_batch(sample)
            tock = time.perf_counter()
            key = jax.random.fold_in(self.update_key, self.counters.updates)
            self.state, step_metrics = self.update(self.state, batch, key, context)
            self.counters.updates += 1
            metrics.append(step_metrics)
            skipped = int(self.state.skipped_in_a_row)  # waits for the update
            self.seconds["replay_sample"] += tock - tick
            self.seconds["update"] += time.perf_counter() - tock
            if skipped >= train.max_consecutive_skips:
                raise FloatingPointError(
                    f"{skipped} updates in a row had non-finite losses or gradients and were skipped; "
                    f"stopping at env step {self.counters.env_steps}. The newest checkpoint "
                    f"({self.checkpointer.latest_step()}) holds the last good state."
                )
        return metrics


def restore_train_state(
    config: AgentConfig,
    env_id: str,
    logdir: pathlib.Path,
    step: int | None = None,
    *,
    env_kwargs: Mapping[str, object] | None = None,
) -> tuple[TrainState, Counters]:
    """Parameters, optimizer states and counters of the newest checkpoint in ``logdir`` (or of ``step``);
    ``env_kwargs``: the run's options of ``r2i_envs.make`` (its ``RunSpec.env_kwargs``)."""
    run = _Run(config, env_id, logdir, env_kwargs)
    try:
        if run.checkpointer.latest_step() is None:
            raise FileNotFoundError(f"no checkpoint in {logdir / 'checkpoints'}")
        run.restore(step)
        return run.state, run.counters
    finally:
        run.env.close()
        run.checkpointer.close()


def evaluate_policy(
    state: TrainState,
    env_id: str,
    episodes: int,
    seed: int,
    *,
    frames: list | None = None,
    env_kwargs: Mapping[str, object] | None = None,
) -> list[float]:
    """Returns of ``episodes`` episodes with the policy's most likely actions, in a separate env (made with
    ``env_kwargs``).

    With ``frames`` (a list), every image observation is appended to it.
    """
    env = r2i_envs.make(env_id, num_envs=1, seed=seed, **(env_kwargs or {}))
    kind, _ = _action_spec(env)
    agent = state.agent
    carry, obs, returns, total = initial_carries(agent.world_model, 1), env.reset(), [], 0.0
    key = jax.random.key(seed)
    step = 0
    while len(returns) < episodes:
        observation = _observation(obs)
        if frames is not None and "image" in obs:
            frames.append(np.asarray(obs["image"][0]))
        action, carry = act_jit(
            agent, carry, observation, obs["is_first"], jax.random.fold_in(key, step), True
        )
        obs = env.step(_env_action(kind, np.asarray(action)))
        total += float(obs["reward"][0])
        step += 1
        if obs["is_last"][0]:
            returns.append(total)
            total = 0.0
    env.close()
    return returns


def _write_gif(path: pathlib.Path, frames: list[np.ndarray], fps: int = 15) -> None:
    from PIL import Image  # pillow comes with matplotlib

    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)


def evaluate(logdir: pathlib.Path, episodes: int, *, video: bool = False) -> dict[str, Any]:
    """Evaluate the newest checkpoint of the run in ``logdir`` (greedy actions); optionally a GIF.

    Returns ``{"returns": [...], "video": path or None, "env_steps": steps trained, "returns_file": path}``
    and writes the same to ``logdir/eval_<env_steps>.json``.
    """
    from ._rundir import load_run

    spec = load_run(logdir)
    if video and "image" not in r2i_envs.describe(spec.env_id, **spec.env_kwargs).obs_space:
        raise ValueError(f"--video needs image observations; {spec.env_id} has none")
    state, counters = restore_train_state(spec.config, spec.env_id, logdir, env_kwargs=spec.env_kwargs)
    frames: list | None = [] if video else None
    returns = evaluate_policy(
        state, spec.env_id, episodes, spec.config.seed + 2, frames=frames, env_kwargs=spec.env_kwargs
    )
    video_path = None
    if frames:
        video_path = logdir / f"eval_{counters.env_steps}.gif"
        _write_gif(video_path, frames)
    result = {
        "returns": returns,
        "video": str(video_path) if video_path else None,
        "env_steps": counters.env_steps,
        "returns_file": str(logdir / f"eval_{counters.env_steps}.json"),
    }
    pathlib.Path(result["returns_file"]).write_text(json.dumps(result, indent=1) + "\n")
    return result


def _crossed(before: int, after: int, every: int) -> bool:
    return after // every > before // every


def _mean_metrics(metrics: list[dict]) -> dict[str, float]:
    if not metrics:
        return {}
    stacked = jax.device_get(metrics)
    return {key: float(np.mean([m[key] for m in stacked])) for key in stacked[0]}


class _StopSignals:
    """While active, SIGINT and SIGTERM only set ``received``: the loop finishes its step, checkpoints
    and returns. A second SIGINT interrupts at once (KeyboardInterrupt). A no-op outside the main thread."""

    def __init__(self):
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def _checkpoint_bytes(run: _Run) -> int:
    """Rough size of one checkpoint: parameters and optimizer states, plus the replay buffer."""
    arrays = jax.tree.leaves(eqx.filter(run.state, eqx.is_array))
    size = sum(int(x.size) * x.dtype.itemsize for x in arrays)
    return size + (run.replay.nbytes if run.config.train.replay_in_checkpoint else 0)


def check_disk_space(directory: pathlib.Path, checkpoint_bytes: int) -> None:
    """Refuse to start, before any training, when ``directory`` cannot hold two checkpoints: the newest
    one stays until the next is complete."""
    free, needed = shutil.disk_usage(directory).free, 2 * checkpoint_bytes
    if free < needed:
        raise OSError(
            errno.ENOSPC,
            f"{directory} has {free / 2**30:.2f} GiB free but a checkpoint of this run needs about "
            f"{checkpoint_bytes / 2**30:.2f} GiB and the previous one is kept until the next is complete "
            f"({needed / 2**30:.2f} GiB in all); free space or lower train.replay_capacity / set "
            "train.replay_in_checkpoint false",
        )


def train(
    config: AgentConfig,
    env_id: str,
    steps: int,
    logdir: pathlib.Path,
    *,
    resume: bool = False,
    max_seconds: float | None = None,
    progress: bool = True,
    env_kwargs: Mapping[str, object] | None = None,
) -> dict[str, Any]:
    """Train until ``steps`` env steps in total (all envs together); returns a summary.

    Logs to ``logdir/metrics.jsonl`` and TensorBoard, checkpoints to ``logdir/checkpoints``. With
    ``resume`` it continues from the newest intact checkpoint (log records after it are dropped, so the
    log has no duplicates). ``max_seconds``, SIGINT (Ctrl-C) and SIGTERM end the run cleanly after the
    current step, with a checkpoint; the summary's ``stopped_by`` says which. ``env_kwargs`` go to
    ``r2i_envs.make`` (for training and evaluation envs alike).
    """
    run = _Run(config, env_id, logdir, env_kwargs)
    try:
        check_disk_space(run.checkpointer.directory, _checkpoint_bytes(run))
        if resume:
            if run.checkpointer.latest_step() is None:
                raise FileNotFoundError(f"no checkpoint in {logdir / 'checkpoints'} to resume from")
            step = run.restore()
            print(f"resuming from the checkpoint of env step {step}", file=sys.stderr)
        logger = RunLogger(logdir, drop_after=run.counters.env_steps if resume else None)
    except BaseException:
        run.env.close()
        run.checkpointer.close()
        raise
    bar = Progress(steps, run.counters.env_steps, progress)
    train_cfg = config.train
    start, start_steps, start_updates = time.perf_counter(), run.counters.env_steps, run.counters.updates
    last_log = start
    finished: list[tuple[float, int]] = []
    pending: list[dict] = []
    stopped_by: str | None = None
    last_returns: list[float] = []
    try:
        with _StopSignals() as signals:
            while run.counters.env_steps < steps:
                before = run.counters.env_steps
                just_finished = run.step_envs()
                finished += just_finished
                pending += run.learn()
                after = run.counters.env_steps
                if just_finished:  # each episode once, newest first
                    last_returns = ([r for r, _ in just_finished] + last_returns)[:100]
                if _crossed(before, after, train_cfg.log_every) or after >= steps:
                    elapsed = time.perf_counter() - start
                    record = {
                        "fps": (after - start_steps) / max(elapsed, 1e-9),
                        "updates": run.counters.updates,
                        "episodes": run.counters.episodes,
                        **_mean_metrics(pending),
                    }
                    interval = time.perf_counter() - last_log
                    for part, seconds in run.seconds.items():  # shares of this interval's wall time
                        record[f"profile/{part}"] = seconds / max(interval, 1e-9)
                    run.seconds.clear()
                    last_log = time.perf_counter()
                    if hasattr(run.env, "restarts"):  # worker-process envs: crashed or hung workers
                        record["env/worker_restarts"] = sum(run.env.restarts)
                    if finished:
                        record["episode/return"] = float(np.mean([r for r, _ in finished]))
                        record["episode/length"] = float(np.mean([n for _, n in finished]))
                    logger.write(after, record)
                    finished, pending = [], []
                if _crossed(before, after, train_cfg.eval_every) and after >= train_cfg.prefill:
                    returns = evaluate_policy(
                        run.state, env_id, train_cfg.eval_episodes, config.seed + 1, env_kwargs=env_kwargs
                    )
                    logger.write(after, {"eval/return": float(np.mean(returns))})
                if _crossed(before, after, train_cfg.checkpoint_every):
                    run.save()
                bar.update(after, ret=float(np.mean(last_returns)) if last_returns else float("nan"))
                if signals.received is not None:
                    stopped_by = signals.received
                    break
                if max_seconds is not None and time.perf_counter() - start > max_seconds:
                    stopped_by = "max_seconds"
                    break
            bar.close()
            run.save()
    finally:
        # On an error nothing more is saved: the newest checkpoint stays the last good one.
        bar.close()
        logger.close()
        run.env.close()
        run.checkpointer.close()
    elapsed = time.perf_counter() - start
    summary = {
        "env_id": env_id,
        "env_steps": run.counters.env_steps,
        "updates": run.counters.updates,
        "episodes": run.counters.episodes,
        "recent_return": float(np.mean(last_returns)) if last_returns else None,  # last 100 episodes
        "seconds": elapsed,
        "env_steps_per_second": (run.counters.env_steps - start_steps) / max(elapsed, 1e-9),
        "updates_per_second": (run.counters.updates - start_updates) / max(elapsed, 1e-9),
        "stopped_by": stopped_by,
        "checkpoint_step": run.counters.env_steps,
    }
    write_json_atomically(logdir / SUMMARY_FILE, summary)
    return summary
