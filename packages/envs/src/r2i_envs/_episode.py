"""One environment of a suite behind a tiny protocol, and the episode bookkeeping on top of it.

Suite adapters implement :class:`SuiteEnv` (observations only, unbatched); :class:`Episodes` adds the
``reward``/``is_first``/``is_last``/``is_terminal`` keys, the optional step cap and the auto-reset. The vector
envs, in-process or in worker processes, only stack what :class:`Episodes` returns.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np

Obs = dict[str, np.ndarray]


class Transition(NamedTuple):
    """What a suite adapter returns for one step: observations, reward and how the episode ended."""

    obs: Obs
    reward: float
    is_last: bool
    is_terminal: bool


class SuiteEnv(Protocol):
    """One environment of a suite: observation keys only (``vector`` float32 and/or ``image`` uint8)."""

    def reset(self) -> Obs: ...

    def step(self, action: np.ndarray) -> Transition: ...

    def close(self) -> None: ...


class Episodes:
    """Turns a :class:`SuiteEnv` into an endless stream of complete observation dicts.

    ``step`` after an ``is_last`` observation ignores its action and returns the first observation of a new
    episode (``is_first`` set, reward 0). ``max_steps`` ends an episode early (``is_last`` without
    ``is_terminal``), the same way for every suite.
    """

    def __init__(self, env: SuiteEnv, max_steps: int | None = None):
        self._env = env
        self._max_steps = max_steps
        self._steps = 0
        self._needs_reset = True

    def reset(self) -> Obs:
        self._steps = 0
        self._needs_reset = False
        return _complete(self._env.reset(), 0.0, is_first=True, is_last=False, is_terminal=False)

    def step(self, action: np.ndarray) -> Obs:
        if self._needs_reset:
            return self.reset()
        t = self._env.step(action)
        self._steps += 1
        truncated = self._max_steps is not None and self._steps >= self._max_steps
        is_last = bool(t.is_last or truncated)
        self._needs_reset = is_last
        return _complete(t.obs, t.reward, is_first=False, is_last=is_last, is_terminal=bool(t.is_terminal))

    def close(self) -> None:
        self._env.close()


def _complete(obs: Obs, reward: float, *, is_first: bool, is_last: bool, is_terminal: bool) -> Obs:
    return {
        **obs,
        "reward": np.float32(reward),
        "is_first": np.bool_(is_first),
        "is_last": np.bool_(is_last),
        "is_terminal": np.bool_(is_terminal),
    }


def stack(obs: list[Obs]) -> Obs:
    """Stack per-env observation dicts along a new leading ``num_envs`` axis (dtypes kept)."""
    out = {}
    for key, first in obs[0].items():
        array = np.empty((len(obs), *first.shape), first.dtype)  # faster than np.stack for small arrays
        for i, o in enumerate(obs):
            array[i] = o[key]
        out[key] = array
    return out
