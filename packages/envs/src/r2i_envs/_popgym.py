"""POPGym environments (gymnasium API) with discrete observations one-hot encoded into ``vector``.

Encoding, in the order of the observation space: ``Discrete(n)`` -> n one-hot values; ``MultiDiscrete`` ->
one one-hot block per component; ``Tuple`` -> its parts concatenated; ``Box``/``MultiBinary`` -> flattened
float32. Actions: ``Discrete(n)`` stays discrete; ``MultiDiscrete(nvec)`` becomes one discrete action with
``prod(nvec)`` values (C order, e.g. row-major board cells); ``Box`` becomes continuous in [-1, 1], rescaled
to the suite's bounds. Rewards are POPGym's own, so an episode's return lies in [-1, 1].
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from r2i_envs._deps import require
from r2i_envs._episode import Obs, Transition
from r2i_envs._spaces import EnvInfo, Space, continuous_action, discrete_action, flag_spaces

EXTRA = "popgym"
VERSION = "popgym 1.0.7"

_BASES = (
    "Autoencode",
    "RepeatPrevious",
    "RepeatFirst",
    "CountRecall",
    "PositionOnlyCartPole",
    "PositionOnlyPendulum",
    "VelocityOnlyCartPole",
    "NoisyPositionOnlyCartPole",
    "NoisyPositionOnlyPendulum",
    "MultiarmedBandit",
    "HigherLower",
    "Battleship",
    "Concentration",
    "MineSweeper",
    "LabyrinthEscape",
    "LabyrinthExplore",
)
# Every class in popgym.envs.ALL (Labyrinth* need `mazelib`, in the extra); tests check the list is complete.
IDS: tuple[str, ...] = tuple(f"{base}{level}" for level in ("Easy", "Medium", "Hard") for base in _BASES)
# Episodes of these always last max_episode_length steps; the others may end early.
_FIXED_LENGTH = ("Autoencode", "RepeatPrevious", "RepeatFirst", "CountRecall")
_SCORE = "POPGym episode return (sum of rewards, in [-1, 1]; 1 is optimal), as reported in the POPGym paper"


def _env_class(name: str) -> type:
    if name.startswith("Labyrinth"):
        require("mazelib", EXTRA)
    module = require("popgym.envs", EXTRA)
    return getattr(module, name)


def describe(env_id: str, name: str, kwargs: dict[str, object]) -> EnvInfo:
    env = _env_class(name)(**kwargs)
    try:
        length = getattr(env, "max_episode_length", None)
        return EnvInfo(
            env_id=env_id,
            obs_space={"vector": vector_space(env.observation_space), **flag_spaces()},
            act_space=_action_space(env.action_space),
            episode_length=None if length is None else int(length),
            fixed_length=name.startswith(_FIXED_LENGTH),
            seeded=True,
            score_metric=_SCORE,
            extra=EXTRA,
        )
    finally:
        env.close()


def create(name: str, seed: int, kwargs: dict[str, object]) -> POPGymEnv:
    return POPGymEnv(_env_class(name)(**kwargs), seed)


def vector_space(space: Any) -> Space:
    """The ``vector`` space that :func:`encode` produces for a gymnasium observation space."""
    size, low, high = _encoded_size(space)
    return Space((size,), "float32", low, high)


def encode(space: Any, value: Any) -> np.ndarray:
    """Encode one observation of ``space`` as a flat float32 vector (see the module docstring)."""
    spaces = require("gymnasium.spaces", EXTRA)
    if isinstance(space, spaces.Discrete):
        return _one_hot(np.asarray([int(value) - int(space.start)]), np.asarray([space.n]))
    if isinstance(space, spaces.MultiDiscrete):
        return _one_hot(np.asarray(value).reshape(-1) - space.start.reshape(-1), space.nvec.reshape(-1))
    if isinstance(space, spaces.Tuple):
        return np.concatenate([encode(s, v) for s, v in zip(space.spaces, value, strict=True)])
    if isinstance(space, spaces.Box | spaces.MultiBinary):
        return np.asarray(value, dtype=np.float32).reshape(-1)
    raise TypeError(f"POPGym observation space {space} has no vector encoding.")


def _one_hot(values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    out = np.zeros(int(sizes.sum()), np.float32)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    out[offsets + values] = 1.0
    return out


def _encoded_size(space: Any) -> tuple[int, float, float]:
    spaces = require("gymnasium.spaces", EXTRA)
    if isinstance(space, spaces.Discrete):
        return int(space.n), 0.0, 1.0
    if isinstance(space, spaces.MultiDiscrete):
        return int(space.nvec.sum()), 0.0, 1.0
    if isinstance(space, spaces.Tuple):
        parts = [_encoded_size(s) for s in space.spaces]
        return sum(p[0] for p in parts), min(p[1] for p in parts), max(p[2] for p in parts)
    if isinstance(space, spaces.MultiBinary):
        return int(np.prod(space.shape)), 0.0, 1.0
    if isinstance(space, spaces.Box):
        return int(np.prod(space.shape)), float(np.min(space.low)), float(np.max(space.high))
    raise TypeError(f"POPGym observation space {space} has no vector encoding.")


def _action_space(space: Any) -> dict[str, Space]:
    spaces = require("gymnasium.spaces", EXTRA)
    if isinstance(space, spaces.Discrete):
        return discrete_action(int(space.n))
    if isinstance(space, spaces.MultiDiscrete):
        return discrete_action(math.prod(int(n) for n in space.nvec.reshape(-1)))
    if isinstance(space, spaces.Box):
        return continuous_action(int(np.prod(space.shape)))
    raise TypeError(f"POPGym action space {space} is not supported.")


def _decode_action(space: Any, action: np.ndarray) -> Any:
    spaces = require("gymnasium.spaces", EXTRA)
    if isinstance(space, spaces.Discrete):
        return int(action) + int(space.start)
    if isinstance(space, spaces.MultiDiscrete):
        index = np.unravel_index(int(action), tuple(int(n) for n in space.nvec.reshape(-1)))
        return (np.asarray(index) + space.start.reshape(-1)).reshape(space.shape)
    low, high = space.low.reshape(-1), space.high.reshape(-1)
    return (
        (low + (np.asarray(action, np.float64) + 1.0) / 2.0 * (high - low))
        .astype(space.dtype)
        .reshape(space.shape)
    )


class POPGymEnv:
    """A POPGym gymnasium env as a :class:`r2i_envs._episode.SuiteEnv`; seeded once, on its first reset."""

    def __init__(self, env: Any, seed: int):
        self._env = env
        self._seed: int | None = seed

    def reset(self) -> Obs:
        obs, _ = self._env.reset(seed=self._seed)
        self._seed = None
        return {"vector": encode(self._env.observation_space, obs)}

    def step(self, action: np.ndarray) -> Transition:
        obs, reward, terminated, truncated, _ = self._env.step(_decode_action(self._env.action_space, action))
        vector = encode(self._env.observation_space, obs)
        return Transition({"vector": vector}, float(reward), bool(terminated or truncated), bool(terminated))

    def close(self) -> None:
        self._env.close()
