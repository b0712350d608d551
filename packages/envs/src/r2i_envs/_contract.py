"""``check_env``: the interface contract every env id must satisfy, as one reusable check.

It raises ``AssertionError`` (explicitly, so it also works under ``python -O``) naming the env and the first
violation. The test suite runs it over every suite; it is public so that new adapters can be checked too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from r2i_envs._episode import Obs
from r2i_envs._registry import describe, make
from r2i_envs._spaces import EnvInfo, Space
from r2i_envs._workers import ProcessVectorEnv


def check_env(
    env_id: str,
    *,
    num_envs: int = 2,
    episodes: int = 3,
    seed: int = 0,
    max_total_steps: int = 20_000,
    processes: bool | None = None,
    **kwargs: object,
) -> EnvInfo:
    """Check ``env_id`` against its :class:`EnvInfo` over ``episodes`` complete episodes per env.

    Checks: spaces equal ``describe``; every array has exactly the space's dtype and ``(num_envs, *shape)``;
    values within bounds; ``is_first`` exactly once per episode, on reset and on the step after ``is_last``
    (with reward 0); ``is_last`` after exactly ``episode_length`` steps for fixed-length suites (at most that
    otherwise); ``is_terminal`` only with ``is_last``; the same seed replays identical observations and, for
    seeded suites, another seed gives different ones; ``close()`` leaves no worker process alive.

    Random actions come from a fixed generator, so runs are comparable. Returns the env's info.
    """
    info = describe(env_id, **kwargs)
    first = _rollout(info, num_envs, episodes, seed, max_total_steps, processes, kwargs)
    again = _rollout(info, num_envs, episodes, seed, max_total_steps, processes, kwargs, steps=len(first))
    for t, (a, b) in enumerate(zip(first, again, strict=True)):
        for key in a:
            _require(np.array_equal(a[key], b[key]), env_id, f"same seed gave different {key!r} at step {t}")
    if info.seeded:
        other = _rollout(
            info, num_envs, episodes, seed + 1, max_total_steps, processes, kwargs, steps=len(first)
        )
        keys = [k for k in info.obs_space if k not in ("reward", "is_first", "is_last", "is_terminal")]
        same = all(np.array_equal(a[k], b[k]) for a, b in zip(first, other, strict=True) for k in keys)
        _require(not same, env_id, f"seeds {seed} and {seed + 1} gave identical observations")
    return info


def _rollout(
    info: EnvInfo,
    num_envs: int,
    episodes: int,
    seed: int,
    max_total_steps: int,
    processes: bool | None,
    kwargs: dict[str, object],
    steps: int | None = None,
) -> list[Obs]:
    """Observations of one run: until each env finished ``episodes`` episodes (or exactly ``steps`` steps)."""
    env_id = info.env_id
    env = make(env_id, num_envs=num_envs, seed=seed, processes=processes, **kwargs)
    rng = np.random.default_rng(12345)
    try:
        _require(
            env.obs_space == info.obs_space, env_id, f"obs_space {env.obs_space} != describe {info.obs_space}"
        )
        _require(
            env.act_space == info.act_space, env_id, f"act_space {env.act_space} != describe {info.act_space}"
        )
        obs = env.reset()
        _check_obs(info, num_envs, obs)
        _require(
            bool(obs["is_first"].all()) and not obs["is_last"].any(), env_id, "reset must set only is_first"
        )
        _require(not obs["reward"].any(), env_id, "reset must give reward 0")
        trajectory = [obs]
        lengths = np.zeros(num_envs, np.int64)
        finished = np.zeros(num_envs, np.int64)
        while (steps is None and finished.min() < episodes) or (
            steps is not None and len(trajectory) < steps
        ):
            _require(
                len(trajectory) <= max_total_steps, env_id, f"fewer than {episodes} episodes ended in time"
            )
            previous = obs
            obs = env.step(_sample(env.act_space["action"], num_envs, rng))
            _check_obs(info, num_envs, obs)
            _check_flags(info, previous, obs, lengths)
            lengths = np.where(obs["is_first"], 0, lengths + 1)
            finished += obs["is_last"]
            trajectory.append(obs)
        pids = env.pids if isinstance(env, ProcessVectorEnv) else []
    finally:
        env.close()
    alive = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
    _require(not alive, env_id, f"worker processes {alive} still alive after close()")
    return trajectory


def _check_flags(info: EnvInfo, previous: Obs, obs: Obs, lengths: np.ndarray) -> None:
    env_id = info.env_id
    expected_first = previous["is_last"]
    _require(
        np.array_equal(obs["is_first"], expected_first),
        env_id,
        "is_first must follow exactly each is_last step",
    )
    _require(
        not obs["reward"][obs["is_first"]].any(), env_id, "the first step of an episode must have reward 0"
    )
    _require(not (obs["is_terminal"] & ~obs["is_last"]).any(), env_id, "is_terminal without is_last")
    _require(not (obs["is_first"] & obs["is_last"]).any(), env_id, "is_first and is_last in one step")
    steps = lengths + 1
    if info.episode_length is not None:
        over = ~obs["is_first"] & (steps > info.episode_length)
        _require(not over.any(), env_id, f"an episode ran past episode_length={info.episode_length}")
        if info.fixed_length:
            ended = steps[obs["is_last"]]
            _require(
                (ended == info.episode_length).all(),
                env_id,
                f"is_last after {ended.tolist()} steps; episode_length is {info.episode_length}",
            )


def _check_obs(info: EnvInfo, num_envs: int, obs: Obs) -> None:
    env_id = info.env_id
    _require(set(obs) == set(info.obs_space), env_id, f"obs keys {sorted(obs)} != {sorted(info.obs_space)}")
    for key, space in info.obs_space.items():
        value = obs[key]
        _require(
            isinstance(value, np.ndarray) and value.dtype == np.dtype(space.dtype),
            env_id,
            f"obs[{key!r}] has dtype {getattr(value, 'dtype', type(value))}, space says {space.dtype}",
        )
        shape = (num_envs, *space.shape)
        _require(value.shape == shape, env_id, f"obs[{key!r}] has shape {value.shape}, expected {shape}")
        if value.dtype.kind == "f":
            _require(bool(np.isfinite(value).all()), env_id, f"obs[{key!r}] is not finite")
        if value.dtype != np.bool_:
            inside = (value >= space.low).all() and (value <= space.high).all()
            _require(bool(inside), env_id, f"obs[{key!r}] leaves [{space.low}, {space.high}]")


def _sample(space: Space, num_envs: int, rng: np.random.Generator) -> np.ndarray:
    if space.discrete:
        assert space.n is not None
        return rng.integers(0, space.n, size=num_envs)
    return rng.uniform(space.low, space.high, size=(num_envs, *space.shape)).astype(np.float32)


def _require(condition: bool, env_id: str, message: str) -> None:
    if not condition:
        raise AssertionError(f"{env_id}: {message}")
