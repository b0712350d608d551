"""Memory Maze (Pasukonis et al. 2022) from its dm_env task constructors, rendered headless at 64×64.

memory-maze 1.0.3's package ``__init__`` imports the old ``gym`` (undeclared) to register gym ids, and sets
``MUJOCO_GL=egl`` as an import side effect. We need neither: :func:`_tasks_module` imports only the
``memory_maze.tasks`` submodule, without running the package ``__init__`` when that would fail.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

import numpy as np

from r2i_envs._deps import MissingDependencyError, require
from r2i_envs._episode import Obs, Transition
from r2i_envs._runtime import setup_rendering
from r2i_envs._spaces import EnvInfo, Space, discrete_action, flag_spaces

EXTRA = "memorymaze"
VERSION = "memory-maze 1.0.3, dm-control 1.0.50, mujoco 3.17.0"
# Maze size -> episode length in agent steps (time limit in seconds × 4 Hz control).
EPISODE_LENGTHS: dict[str, int] = {"9x9": 1000, "11x11": 2000, "13x13": 3000, "15x15": 4000}
IDS: tuple[str, ...] = tuple(EPISODE_LENGTHS)
_SCORE = "Memory Maze episode return: number of targets reached (+1 each) within the time limit"


def describe(env_id: str, name: str, kwargs: dict[str, object]) -> EnvInfo:
    _check_kwargs(kwargs)
    return EnvInfo(
        env_id=env_id,
        obs_space={"image": Space((64, 64, 3), "uint8", 0, 255), **flag_spaces()},
        act_space=discrete_action(6),
        episode_length=EPISODE_LENGTHS[name],
        fixed_length=True,
        seeded=True,
        score_metric=_SCORE,
        extra=EXTRA,
    )


def _check_kwargs(kwargs: dict[str, object]) -> None:
    allowed = {"good_visibility", "randomize_colors"}
    if not set(kwargs) <= allowed:
        raise TypeError(
            f"memorymaze envs take kwargs {sorted(allowed)} (and max_steps); got {sorted(kwargs)}."
        )


def create(name: str, seed: int, kwargs: dict[str, object]) -> MemoryMazeEnv:
    _check_kwargs(kwargs)
    setup_rendering()
    tasks = _tasks_module()
    constructor = getattr(tasks, "memory_maze_" + name)
    return MemoryMazeEnv(constructor(seed=seed, image_only_obs=True, discrete_actions=True, **kwargs))


def _tasks_module() -> types.ModuleType:
    """Import ``memory_maze.tasks``; without ``gym`` installed, skip running the package ``__init__``.

    Without gym that ``__init__`` raises (after printing a note and setting ``MUJOCO_GL``), so we register a
    bare ``memory_maze`` package object (its real ``__path__``, no ``__init__`` run) under which ``tasks`` and
    its sibling imports resolve normally.
    """
    require("dm_control", EXTRA)
    if "memory_maze" in sys.modules or importlib.util.find_spec("gym") is not None:
        return require("memory_maze.tasks", EXTRA)
    spec = importlib.util.find_spec("memory_maze")
    if spec is None or spec.submodule_search_locations is None:
        raise MissingDependencyError(f"memory_maze is not installed: `pip install 'r2i-envs[{EXTRA}]'`.")
    package = types.ModuleType("memory_maze")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    sys.modules["memory_maze"] = package
    return importlib.import_module("memory_maze.tasks")


class MemoryMazeEnv:
    """A Memory Maze dm_env task (image-only, 6 discrete actions) as a :class:`r2i_envs._episode.SuiteEnv`."""

    def __init__(self, env: Any):
        self._env = env

    def reset(self) -> Obs:
        return {"image": _image(self._env.reset().observation)}

    def step(self, action: np.ndarray) -> Transition:
        ts = self._env.step(int(action))
        return Transition(
            {"image": _image(ts.observation)},
            float(ts.reward or 0.0),
            ts.last(),
            ts.last() and ts.discount == 0,
        )

    def close(self) -> None:
        self._env.close()


def _image(observation: Any) -> np.ndarray:
    return np.ascontiguousarray(observation, dtype=np.uint8)
