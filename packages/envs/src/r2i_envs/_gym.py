"""Gymnasium envs: any registered id as ``gym/<id>``, envs of user suites (``register``), and POPGym's.

Observations, leaf by leaf (``Dict`` and ``Tuple`` spaces are walked recursively, ``Dict`` keys in the
space's own order, which Gymnasium sorts): a uint8 ``Box`` of shape H×W×3, H×W×1 or H×W is an image and
becomes ``image`` (64×64×3 uint8: grey repeated, other sizes resized with area interpolation); every other
leaf goes into ``vector`` (float32), concatenated in order: ``Box`` flattened, ``MultiBinary`` as 0/1,
``Discrete(n)`` one-hot (n values), ``MultiDiscrete`` one one-hot block per component. An observation
space with two or more image leaves is refused (stack them into one image, or make the others non-uint8).

Actions: ``Discrete(n)`` stays discrete; ``MultiDiscrete(nvec)`` becomes one discrete action with
``prod(nvec)`` values (C order, e.g. row-major board cells); ``Box`` (finite bounds) becomes continuous in
[-1, 1], rescaled linearly so that -1 and 1 reach the env as its ``low`` and ``high``. Other action spaces
are refused. ``terminated`` ends an episode ``is_terminal``; ``truncated`` ends it without (a time limit).
Each env is seeded once, by ``reset(seed=...)`` on its first reset.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from r2i_envs._deps import require
from r2i_envs._episode import Obs, Transition
from r2i_envs._image import IMAGE_SIZE, rgb_image
from r2i_envs._spaces import EnvInfo, Space, continuous_action, discrete_action, flag_spaces

EXTRA = "gym"
VERSION = "gymnasium >= 1.0 (any registered id)"
SCORE = "episode return (sum of rewards)"

# A user suite's factory: (name after the prefix, **kwargs) -> a gymnasium.Env.
Factory = Callable[..., Any]


def _spaces() -> Any:
    return require("gymnasium.spaces", EXTRA)


class ObsEncoder:
    """Turns observations of a gymnasium ``space`` into ``vector`` and/or ``image`` (module docstring).

    >>> from gymnasium import spaces
    >>> encode = ObsEncoder(spaces.Tuple((spaces.Discrete(2), spaces.Box(-1, 1, (2,)))), "demo")
    >>> encode((1, np.array([0.5, 0.25])))["vector"].tolist()
    [0.0, 1.0, 0.5, 0.25]
    """

    def __init__(self, space: Any, env_id: str, image_size: int = IMAGE_SIZE):
        self._size = image_size
        self._parts: list[tuple[tuple[Any, ...], Callable[[Any], np.ndarray]]] = []
        images: list[tuple[Any, ...]] = []
        width, low, high = 0, math.inf, -math.inf
        for path, leaf in _leaves(space, ()):
            if _is_image(leaf):
                images.append(path)
                continue
            encode, size, leaf_low, leaf_high = _vector_leaf(leaf, env_id, path)
            if not size:
                continue
            self._parts.append((path, encode))
            width, low, high = width + size, min(low, leaf_low), max(high, leaf_high)
        if len(images) > 1:
            named = ", ".join(_path_name(p) for p in images)
            raise ValueError(
                f"{env_id}: the observation space has {len(images)} image leaves ({named}); r2i_envs takes "
                "one `image` (64x64x3): combine them in a wrapper, or give the others a non-uint8 dtype."
            )
        self._image = images[0] if images else None
        self.space: dict[str, Space] = {}
        if self._parts:
            self.space["vector"] = Space((width,), "float32", low, high)
        if self._image is not None:
            self.space["image"] = Space((image_size, image_size, 3), "uint8", 0, 255)
        if not self.space:
            raise TypeError(f"{env_id}: observation space {space} has no leaves to observe.")

    def __call__(self, obs: Any) -> Obs:
        out: Obs = {}
        if self._parts:
            parts = [encode(_get(obs, path)) for path, encode in self._parts]
            out["vector"] = parts[0] if len(parts) == 1 else np.concatenate(parts)
        if self._image is not None:
            out["image"] = rgb_image(_get(obs, self._image), self._size, EXTRA)
        return out


def _leaves(space: Any, path: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], Any]]:
    """(path from the observation's root, space) of every non-container leaf, in the spaces' order."""
    spaces = _spaces()
    if isinstance(space, spaces.Dict):
        return [leaf for key, sub in space.spaces.items() for leaf in _leaves(sub, (*path, key))]
    if isinstance(space, spaces.Tuple):
        return [leaf for i, sub in enumerate(space.spaces) for leaf in _leaves(sub, (*path, i))]
    return [(path, space)]


def _get(obs: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        obs = obs[key]
    return obs


def _path_name(path: tuple[Any, ...]) -> str:
    return "observation" + "".join(f"[{key!r}]" for key in path)


def _is_image(space: Any) -> bool:
    if not isinstance(space, _spaces().Box) or space.dtype != np.uint8:
        return False
    return len(space.shape) == 2 or (len(space.shape) == 3 and space.shape[-1] in (1, 3))


def _vector_leaf(
    space: Any, env_id: str, path: tuple[Any, ...]
) -> tuple[Callable[[Any], np.ndarray], int, float, float]:
    """(encode one value as flat float32, its width, low, high) of a non-image leaf."""
    spaces = _spaces()
    # Encoders are module functions with bound arguments, so an env pickles (checkpoints keep the env).
    if isinstance(space, spaces.Discrete):
        n, start = int(space.n), int(space.start)
        encode = functools.partial(_discrete_one_hot, start=start, sizes=np.asarray([n]))
        return encode, n, 0.0, 1.0
    if isinstance(space, spaces.MultiDiscrete):
        nvec, start = space.nvec.reshape(-1), space.start.reshape(-1)
        encode = functools.partial(_discrete_one_hot, start=start, sizes=nvec)
        return encode, int(nvec.sum()), 0.0, 1.0
    if isinstance(space, spaces.MultiBinary | spaces.Box):
        size = math.prod(space.shape)
        low, high = 0.0, 1.0
        if isinstance(space, spaces.Box) and size:
            low, high = float(np.min(space.low)), float(np.max(space.high))
        return _flat_float32, size, low, high
    raise TypeError(
        f"{env_id}: {_path_name(path)} has space {space}, which r2i_envs cannot observe (it takes Box, "
        "Discrete, MultiDiscrete, MultiBinary, and Dict/Tuple of them)."
    )


def _discrete_one_hot(value: Any, start: Any, sizes: np.ndarray) -> np.ndarray:
    return _one_hot(np.asarray(value).reshape(-1) - start, sizes)


def _flat_float32(value: Any) -> np.ndarray:
    return np.asarray(value, np.float32).reshape(-1)


def _one_hot(values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    out = np.zeros(int(sizes.sum()), np.float32)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    out[offsets + values] = 1.0
    return out


class ActionDecoder:
    """Maps r2i actions (an int, or float32 in [-1, 1]) to a gymnasium action ``space`` (module docstring)."""

    def __init__(self, space: Any, env_id: str):
        spaces = _spaces()
        if isinstance(space, spaces.Discrete):
            self.space = discrete_action(int(space.n))
            self._decode: Callable[[np.ndarray], Any] = functools.partial(_shift, start=int(space.start))
        elif isinstance(space, spaces.MultiDiscrete):
            nvec = tuple(int(n) for n in space.nvec.reshape(-1))
            self.space = discrete_action(math.prod(nvec))
            self._decode = functools.partial(_unravel, nvec=nvec, start=space.start, shape=space.shape)
        elif isinstance(space, spaces.Box) and np.isfinite(space.low).all() and np.isfinite(space.high).all():
            self.space = continuous_action(math.prod(space.shape))
            self._decode = functools.partial(_rescale, low=space.low, high=space.high)
        else:
            raise TypeError(
                f"{env_id}: action space {space} is not supported; r2i_envs takes Discrete, MultiDiscrete "
                "and Box actions with finite bounds."
            )

    def __call__(self, action: np.ndarray) -> Any:
        return self._decode(action)


def _shift(action: np.ndarray, start: int) -> int:
    return int(action) + start


def _unravel(
    action: np.ndarray, nvec: tuple[int, ...], start: np.ndarray, shape: tuple[int, ...]
) -> np.ndarray:
    return (np.asarray(np.unravel_index(int(action), nvec)) + start.reshape(-1)).reshape(shape)


def _rescale(action: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """[-1, 1] to the Box's bounds, clipped there, in the Box's dtype and shape."""
    low64, high64 = low.reshape(-1).astype(np.float64), high.reshape(-1).astype(np.float64)
    scaled = low64 + (np.asarray(action, np.float64).reshape(-1) + 1.0) / 2.0 * (high64 - low64)
    return np.clip(scaled, low64, high64).astype(low.dtype).reshape(low.shape)


class GymEnv:
    """A gymnasium env as a :class:`r2i_envs._episode.SuiteEnv`; seeded once, on its first reset."""

    def __init__(self, env: Any, seed: int, env_id: str):
        self._env = env
        self._seed: int | None = seed
        self._encode = ObsEncoder(env.observation_space, env_id)
        self._decode = ActionDecoder(env.action_space, env_id)

    def reset(self) -> Obs:
        obs, _ = self._env.reset(seed=self._seed)
        self._seed = None
        return self._encode(obs)

    def step(self, action: np.ndarray) -> Transition:
        obs, reward, terminated, truncated, _ = self._env.step(self._decode(action))
        return Transition(self._encode(obs), float(reward), bool(terminated or truncated), bool(terminated))

    def close(self) -> None:
        self._env.close()


def env_info(
    env_id: str,
    env: Any,
    *,
    episode_length: int | None,
    fixed_length: bool = False,
    score_metric: str = SCORE,
    extra: str = EXTRA,
) -> EnvInfo:
    """The :class:`EnvInfo` of a gymnasium ``env`` (spaces from its observation and action spaces)."""
    return EnvInfo(
        env_id=env_id,
        obs_space={**ObsEncoder(env.observation_space, env_id).space, **flag_spaces()},
        act_space=ActionDecoder(env.action_space, env_id).space,
        episode_length=episode_length,
        fixed_length=fixed_length,
        seeded=True,
        score_metric=score_metric,
        extra=extra,
    )


def _time_limit(env: Any) -> int | None:
    spec = getattr(env, "spec", None)
    limit = getattr(spec, "max_episode_steps", None)
    return None if limit is None else int(limit)


# ----- the gym/ suite: any id of gymnasium's registry -----


def registered(name: str) -> bool:
    """Whether ``name`` is a gymnasium id (``module:Id`` imports ``module`` first, as gymnasium.make does)."""
    gymnasium = require("gymnasium", EXTRA)
    module, _, env_name = name.rpartition(":")
    if module:
        try:
            importlib.import_module(module)
        except ImportError:
            return False
    return env_name in gymnasium.registry


def registered_ids() -> list[str]:
    """The ids in gymnasium's registry now (sorted; packages add theirs when imported)."""
    return sorted(require("gymnasium", EXTRA).registry)


def nearest_ids(name: str) -> list[str]:
    return difflib.get_close_matches(name.rpartition(":")[2], registered_ids(), n=5, cutoff=0.6)


def _make(name: str, kwargs: dict[str, object]) -> Any:
    return require("gymnasium", EXTRA).make(name, **kwargs)


def describe(env_id: str, name: str, kwargs: dict[str, object]) -> EnvInfo:
    env = _make(name, kwargs)
    try:
        return env_info(env_id, env, episode_length=_time_limit(env))
    finally:
        env.close()


def create(name: str, seed: int, kwargs: dict[str, object]) -> GymEnv:
    return GymEnv(_make(name, kwargs), seed, f"gym/{name}")


# ----- user suites: register(prefix, factory) -----


def _build(factory: Factory, env_id: str, name: str, kwargs: dict[str, object]) -> Any:
    env = factory(name, **kwargs)
    gymnasium = require("gymnasium", EXTRA)
    if not isinstance(env, gymnasium.Env):
        kind = type(env).__name__
        raise TypeError(f"{env_id}: the registered factory returned {kind}, which is not a gymnasium.Env.")
    return env


def describe_user(factory: Factory, env_id: str, name: str, kwargs: dict[str, object]) -> EnvInfo:
    env = _build(factory, env_id, name, kwargs)
    try:
        return env_info(env_id, env, episode_length=_time_limit(env), extra="")
    finally:
        env.close()


def create_user(factory: Factory, prefix: str, name: str, seed: int, kwargs: dict[str, object]) -> GymEnv:
    env_id = f"{prefix}/{name}"
    return GymEnv(_build(factory, env_id, name, kwargs), seed, env_id)
