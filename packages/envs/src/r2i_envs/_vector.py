"""The vector env every ``make`` returns, stepping its envs in this process."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from r2i_envs._episode import Episodes, Obs, stack
from r2i_envs._spaces import EnvInfo, Space, check_action


class VectorEnv:
    """``num_envs`` environments of one id, stepped together with auto-reset.

    ``obs_space``/``act_space`` give per-env spaces; every array of ``reset()``/``step()`` has a leading
    ``num_envs`` axis. The step after ``is_last`` ignores that env's action and returns the first observation
    of its next episode (``is_first``, reward 0).

    >>> env = make("popgym/RepeatPreviousEasy", num_envs=2)  # doctest: +SKIP
    >>> obs = env.reset(); obs = env.step(np.zeros(2, np.int64)); env.close()  # doctest: +SKIP
    """

    def __init__(self, info: EnvInfo, factories: Sequence[Callable[[], Episodes]]):
        self._info = info
        self._envs = [factory() for factory in factories]

    @property
    def env_id(self) -> str:
        return self._info.env_id

    @property
    def num_envs(self) -> int:
        return len(self._envs)

    @property
    def obs_space(self) -> dict[str, Space]:
        return self._info.obs_space

    @property
    def act_space(self) -> dict[str, Space]:
        return self._info.act_space

    @property
    def info(self) -> EnvInfo:
        return self._info

    def reset(self) -> Obs:
        """Start a new episode in every env."""
        return stack([env.reset() for env in self._envs])

    def step(self, action: np.ndarray) -> Obs:
        """Step every env; ``action`` is int ``[num_envs]`` (discrete) or float32 ``[num_envs, dim]``."""
        if not self._envs:
            raise RuntimeError(f"{self.env_id}: the env is closed.")
        action = self._check(action)
        return stack([env.step(a) for env, a in zip(self._envs, action, strict=True)])

    def close(self) -> None:
        for env in self._envs:
            env.close()
        self._envs = []

    def __enter__(self) -> VectorEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check(self, action: object) -> np.ndarray:
        return check_action(self.env_id, self.act_space["action"], self.num_envs, action)
