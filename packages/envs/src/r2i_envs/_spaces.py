"""Space and environment descriptions shared by every suite, and the action check against them."""

from __future__ import annotations

import dataclasses
import math

import numpy as np


@dataclasses.dataclass(frozen=True)
class Space:
    """Shape, dtype and bounds of one array of a single environment (no leading ``num_envs`` dim).

    Discrete spaces have ``n`` set (values ``0 .. n-1``, shape ``()``); continuous ones have ``n=None``.
    ``low``/``high`` are scalar bounds shared by every element; ``±inf`` means unbounded.

    >>> Space((), "int32", 0, 5, n=6).discrete
    True
    """

    shape: tuple[int, ...]
    dtype: str
    low: float = -math.inf
    high: float = math.inf
    n: int | None = None

    @property
    def discrete(self) -> bool:
        return self.n is not None


@dataclasses.dataclass(frozen=True)
class EnvInfo:
    """What :func:`r2i_envs.describe` tells about one env id.

    Attributes:
        env_id: the id as passed to ``make``.
        obs_space: every key of the observation dict (``vector``/``image``, ``reward``, ``is_first``,
            ``is_last``, ``is_terminal``) with its per-env space.
        act_space: ``{"action": Space}``; discrete actions have ``n``, continuous ones are in [-1, 1].
        episode_length: the most agent steps an episode lasts (the suite's time limit, or the ``max_steps``
            kwarg when smaller); ``None`` when the suite sets no limit.
        fixed_length: True when every episode lasts exactly ``episode_length`` steps.
        seeded: True when ``seed`` changes the observations (False for bsuite discounting_chain, whose
            observations depend on the actions only).
        score_metric: the suite's own score, in words.
        extra: the pip extra that installs the suite (``r2i-envs[extra]``); empty when none is needed.
    """

    env_id: str
    obs_space: dict[str, Space]
    act_space: dict[str, Space]
    episode_length: int | None
    fixed_length: bool
    seeded: bool
    score_metric: str
    extra: str


def flag_spaces() -> dict[str, Space]:
    """Spaces of the keys every observation dict carries besides the suite's own observations."""
    return {
        "reward": Space((), "float32"),
        "is_first": Space((), "bool", 0, 1),
        "is_last": Space((), "bool", 0, 1),
        "is_terminal": Space((), "bool", 0, 1),
    }


def discrete_action(n: int) -> dict[str, Space]:
    return {"action": Space((), "int32", 0, n - 1, n=n)}


def continuous_action(dim: int) -> dict[str, Space]:
    return {"action": Space((dim,), "float32", -1.0, 1.0)}


def check_action(env_id: str, space: Space, num_envs: int, action: object) -> np.ndarray:
    """Return ``action`` as an array for ``num_envs`` envs, or raise a ``ValueError`` naming env and space.

    Discrete: integer array ``[num_envs]`` in ``[0, n)`` (returned as int64). Continuous: floating array
    ``[num_envs, dim]`` in ``[low, high]`` (returned as float32).
    """
    arr = np.asarray(action)
    expected_shape = (num_envs, *space.shape)
    if space.discrete:
        want = f"an integer array of shape {expected_shape} with values in [0, {space.n})"
        ok = arr.shape == expected_shape and arr.dtype.kind in "iu"
        ok = ok and (arr.size == 0 or (arr.min() >= 0 and arr.max() < space.n))
        out = arr.astype(np.int64) if ok else arr
    else:
        want = f"a float array of shape {expected_shape} with values in [{space.low}, {space.high}]"
        ok = arr.shape == expected_shape and arr.dtype.kind == "f"
        ok = ok and bool(np.all(np.isfinite(arr) & (arr >= space.low) & (arr <= space.high)))
        out = arr.astype(np.float32) if ok else arr
    if not ok:
        got = f"dtype {arr.dtype}, shape {arr.shape}"
        if arr.size and arr.dtype.kind in "iuf":
            got += f", values in [{arr.min()}, {arr.max()}]"
        raise ValueError(f"{env_id}: action must be {want} (space {space}); got {got}.")
    return out
