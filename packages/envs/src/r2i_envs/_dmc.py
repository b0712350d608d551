"""DeepMind Control Suite: proprioceptive (``dmc/``) and 64×64 pixel (``dmc-vision/``) tasks.

Proprio: the task's observations flattened and concatenated into ``vector`` in the task's own order.
Vision: ``image`` only, rendered headless from camera 0 (camera 2 for quadruped, as in DreamerV3).
Both repeat each action ``action_repeat`` times (default 2, summing rewards) and take continuous actions in
[-1, 1], rescaled to the task's bounds. Episodes end at the task's time limit (1000 control steps = 500 agent
steps for most tasks) and are never terminal except where a task says so.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from r2i_envs._deps import require
from r2i_envs._episode import Obs, Transition
from r2i_envs._runtime import setup_rendering
from r2i_envs._spaces import EnvInfo, Space, continuous_action, flag_spaces

EXTRA = "dmc"
VERSION = "dm-control 1.0.50, mujoco 3.17.0"

# dm_control.suite.ALL_TASKS of dm-control 1.0.50 (tests check it is still current).
TASKS: tuple[tuple[str, str], ...] = (
    ("acrobot", "swingup"), ("acrobot", "swingup_sparse"), ("ball_in_cup", "catch"),
    ("cartpole", "balance"), ("cartpole", "balance_sparse"), ("cartpole", "swingup"),
    ("cartpole", "swingup_sparse"), ("cartpole", "three_poles"), ("cartpole", "two_poles"),
    ("cheetah", "run"), ("dog", "fetch"), ("dog", "run"), ("dog", "stand"), ("dog", "trot"), ("dog", "walk"),
    ("finger", "spin"), ("finger", "turn_easy"), ("finger", "turn_hard"), ("fish", "swim"),
    ("fish", "upright"),
    ("hopper", "hop"), ("hopper", "stand"), ("humanoid", "run"), ("humanoid", "run_pure_state"),
    ("humanoid", "stand"), ("humanoid", "walk"), ("humanoid_CMU", "run"), ("humanoid_CMU", "stand"),
    ("humanoid_CMU", "walk"), ("lqr", "lqr_2_1"), ("lqr", "lqr_6_2"), ("manipulator", "bring_ball"),
    ("manipulator", "bring_peg"), ("manipulator", "insert_ball"), ("manipulator", "insert_peg"),
    ("pendulum", "swingup"), ("point_mass", "easy"), ("point_mass", "hard"), ("quadruped", "escape"),
    ("quadruped", "fetch"), ("quadruped", "run"), ("quadruped", "walk"), ("reacher", "easy"),
    ("reacher", "hard"), ("stacker", "stack_2"), ("stacker", "stack_4"), ("swimmer", "swimmer15"),
    ("swimmer", "swimmer6"), ("walker", "run"), ("walker", "stand"), ("walker", "walk"),
)  # fmt: skip
IDS: tuple[str, ...] = tuple(f"{domain}_{task}" for domain, task in TASKS)
_BY_ID = dict(zip(IDS, TASKS, strict=True))
_SCORE = "DMC episode return (sum of per-step rewards in [0, 1]; 1000 is the maximum over 1000 control steps)"


def _load(name: str, seed: int) -> Any:
    setup_rendering()  # dm_control picks its GL backend when imported, even for proprio tasks
    suite = require("dm_control.suite", EXTRA)
    domain, task = _BY_ID[name]
    return suite.load(domain, task, task_kwargs={"random": seed})


def describe(env_id: str, name: str, kwargs: dict[str, object], vision: bool = False) -> EnvInfo:
    size, repeat = _options(kwargs)
    env = _load(name, 0)
    try:
        dim = int(np.prod(env.action_spec().shape))
        if vision:
            obs = {"image": Space((size, size, 3), "uint8", 0, 255)}
        else:
            width = sum(int(np.prod(spec.shape)) for spec in env.observation_spec().values())
            obs = {"vector": Space((width,), "float32")}
        # dm_control keeps its step limit private; it is time_limit / control_timestep.
        limit = env._step_limit
        length = None if math.isinf(limit) else math.ceil(limit / repeat)
    finally:
        env.close()
    return EnvInfo(
        env_id=env_id,
        obs_space={**obs, **flag_spaces()},
        act_space=continuous_action(dim),
        episode_length=length,
        fixed_length=True,
        seeded=True,
        score_metric=_SCORE,
        extra=EXTRA,
    )


def _options(kwargs: dict[str, object]) -> tuple[int, int]:
    unknown = set(kwargs) - {"size", "action_repeat"}
    if unknown:
        raise TypeError(f"dmc envs take kwargs size, action_repeat (and max_steps); got {sorted(unknown)}.")
    return int(kwargs.get("size", 64)), int(kwargs.get("action_repeat", 2))  # type: ignore[call-overload]


def create(name: str, seed: int, kwargs: dict[str, object], vision: bool = False) -> DMCEnv:
    size, repeat = _options(kwargs)
    camera = 2 if name.startswith("quadruped_") else 0
    return DMCEnv(_load(name, seed), repeat, size if vision else None, camera)


class DMCEnv:
    """A dm_control suite task as a :class:`r2i_envs._episode.SuiteEnv` (``size=None``: proprio)."""

    def __init__(self, env: Any, action_repeat: int, size: int | None, camera: int):
        self._env = env
        self._repeat = action_repeat
        self._size = size
        self._camera = camera
        spec = env.action_spec()
        self._low, self._high = spec.minimum.astype(np.float64), spec.maximum.astype(np.float64)

    def reset(self) -> Obs:
        return self._obs(self._env.reset())

    def step(self, action: np.ndarray) -> Transition:
        scaled = self._low + (np.asarray(action, np.float64) + 1.0) / 2.0 * (self._high - self._low)
        reward = 0.0
        for _ in range(self._repeat):
            ts = self._env.step(scaled)
            reward += ts.reward or 0.0
            if ts.last():
                break
        return Transition(self._obs(ts), reward, ts.last(), ts.last() and ts.discount == 0)

    def close(self) -> None:
        self._env.close()
        self._env.physics.free()

    def _obs(self, ts: Any) -> Obs:
        if self._size is None:
            parts = [np.asarray(v, np.float32).reshape(-1) for v in ts.observation.values()]
            return {"vector": np.concatenate(parts)}
        image = self._env.physics.render(self._size, self._size, camera_id=self._camera)
        return {"image": np.ascontiguousarray(image, dtype=np.uint8)}
