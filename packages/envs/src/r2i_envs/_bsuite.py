"""BSuite memory_len and discounting_chain, adapted from their dm_env classes (no gym, no bsuite loggers).

Observation: bsuite's ``[1, k]`` float32 array flattened to ``vector``, keeping bsuite's order: memory_len is
``[time_remaining, query, context...]``, discounting_chain is ``[context, time]``.
"""

from __future__ import annotations

import numpy as np

from r2i_envs._deps import require
from r2i_envs._episode import Obs, Transition
from r2i_envs._spaces import EnvInfo, Space, discrete_action, flag_spaces

EXTRA = "bsuite"
VERSION = "bsuite 0.3.6"

# bsuite.experiments.<name>.sweep.SETTINGS, copied so that listing ids needs no bsuite import
# (tests/test_bsuite.py checks they still match the installed bsuite).
MEMORY_LENGTHS: tuple[int, ...] = (*range(1, 11), 12, 14, 17, 20, 25, *range(30, 105, 10))
DISCOUNTING_MAPPING_SEEDS: tuple[int, ...] = tuple(range(20))
IDS: tuple[str, ...] = (
    *(f"memory_len/{i}" for i in range(len(MEMORY_LENGTHS))),
    *(f"discounting_chain/{i}" for i in range(len(DISCOUNTING_MAPPING_SEEDS))),
)
PARAMETRIC_IDS: tuple[str, ...] = ("memory_len", "discounting_chain")

_SCORES = {
    "memory_len": "bsuite memory_len score: fraction of episodes with reward +1 at the final step (context "
    "recalled), averaged over the sweep's memory lengths",
    "discounting_chain": "bsuite discounting_chain score: average episode return relative to the optimum 1.1 "
    "(choosing the bonus chain)",
}


def _settings(name: str, kwargs: dict[str, object]) -> tuple[str, dict[str, object]]:
    """Experiment name and constructor kwargs for a sweep id (``memory_len/3``) or a parametric one."""
    experiment, _, index = name.partition("/")
    if index:
        if kwargs:
            raise TypeError(f"bsuite/{name} is a sweep id and takes no kwargs; got {sorted(kwargs)}.")
        i = int(index)
        if experiment == "memory_len":
            return experiment, {"memory_length": MEMORY_LENGTHS[i]}
        return experiment, {"mapping_seed": DISCOUNTING_MAPPING_SEEDS[i]}
    allowed = {"memory_len": {"memory_length", "num_bits"}, "discounting_chain": {"mapping_seed"}}[experiment]
    if not set(kwargs) <= allowed:
        raise TypeError(f"bsuite/{experiment} takes kwargs {sorted(allowed)}; got {sorted(kwargs)}.")
    if experiment == "memory_len" and "memory_length" not in kwargs:
        raise TypeError(
            "bsuite/memory_len needs memory_length=L (or use a sweep id such as bsuite/memory_len/3)."
        )
    return experiment, dict(kwargs)


def describe(env_id: str, name: str, kwargs: dict[str, object]) -> EnvInfo:
    experiment, settings = _settings(name, kwargs)
    if experiment == "memory_len":
        size = 2 + int(settings.get("num_bits", 1))  # type: ignore[call-overload]
        length = int(settings["memory_length"]) + 1  # type: ignore[call-overload]
        actions, low, high, seeded = 2, -1.0, max(1.0, size - 3.0), True
    else:
        size, length, actions, low, high = 2, 100, 5, -1.0, 4.0
        # Observations depend on the actions only; the seed at most picks the bonus arm.
        seeded = False
    return EnvInfo(
        env_id=env_id,
        obs_space={"vector": Space((size,), "float32", low, high), **flag_spaces()},
        act_space=discrete_action(actions),
        episode_length=length,
        fixed_length=True,
        seeded=seeded,
        score_metric=_SCORES[experiment],
        extra=EXTRA,
    )


def create(name: str, seed: int, kwargs: dict[str, object]) -> BSuiteEnv:
    experiment, settings = _settings(name, kwargs)
    if experiment == "memory_len":
        module = require("bsuite.environments.memory_chain", EXTRA)
        return BSuiteEnv(module.MemoryChain(seed=seed, **settings))
    module = require("bsuite.environments.discounting_chain", EXTRA)
    settings.setdefault("mapping_seed", seed)
    return BSuiteEnv(module.DiscountingChain(**settings))


class BSuiteEnv:
    """A bsuite ``dm_env.Environment`` as a :class:`r2i_envs._episode.SuiteEnv`."""

    def __init__(self, env: object):
        self._env = env

    def reset(self) -> Obs:
        return {"vector": _flat(self._env.reset().observation)}  # type: ignore[attr-defined]

    def step(self, action: np.ndarray) -> Transition:
        ts = self._env.step(int(action))  # type: ignore[attr-defined]
        return Transition(
            {"vector": _flat(ts.observation)}, float(ts.reward), ts.last(), ts.last() and ts.discount == 0
        )

    def close(self) -> None:
        self._env.close()  # type: ignore[attr-defined]


def _flat(observation: np.ndarray) -> np.ndarray:
    return np.asarray(observation, dtype=np.float32).reshape(-1)
