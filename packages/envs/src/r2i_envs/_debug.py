"""Fault drills: a tiny episodic env whose worker process crashes or hangs on a fixed schedule.

``debug/crash`` and ``debug/hang`` let a training loop be tested against worker faults through the normal
``make``. They always run in worker processes (``make`` refuses ``processes=False``: the fault would hit the
caller), with a 2 s answer timeout (:data:`TIMEOUT_S`) and up to :data:`MAX_RESTARTS` restarts per worker.

The env: ``vector`` float32 ``[cue, t / 10, noise]`` in [-1, 1], with the cue ±1 drawn per episode and the
noise uniform per step (both from the seed); 2 actions; reward 1 when the action equals ``cue > 0``, else 0;
every episode ends ``is_terminal`` after 10 steps unless a fault ends it first.

The schedule: every worker lifetime (its first start and each restart) faults when asked for its
``fault_at``-th transition (kwarg, default 37; the steps that start an episode do not count). ``debug/crash``
SIGKILLs its own process; ``debug/hang`` sleeps until it is killed at the timeout. The vector env reports that
step as ``is_last`` without ``is_terminal`` (reward 0) and the next one as the ``is_first`` of the restarted
worker. With the defaults and ``reset()`` followed by ``step()`` calls, every env faults at steps 40, 81, 122,
... (36 transitions and 4 episode starts, then the fault: one every 41 steps), so a worker gives up with
``WorkerError`` at step 41 · 1001 - 1 = 41,040.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np

from r2i_envs._episode import Obs, Transition
from r2i_envs._spaces import EnvInfo, Space, discrete_action, flag_spaces

VERSION = "r2i_envs fault drills (no dependencies)"
FAULTS: tuple[str, ...] = ("crash", "hang")
IDS: tuple[str, ...] = FAULTS
TIMEOUT_S = 2.0  # answer timeout of the worker processes, so a hang costs 2 s
START_TIMEOUT_S = 60.0  # a worker start is not a drill: a loaded machine must not turn it into a fault
MAX_RESTARTS = 1000
EPISODE_LENGTH = 10
_SCORE = "fault-drill episode return: steps whose action matched the cue (at most 10)"


def _fault_at(kwargs: dict[str, object]) -> int:
    if not set(kwargs) <= {"fault_at"}:
        raise TypeError(f"debug envs take the kwarg fault_at (and max_steps); got {sorted(kwargs)}.")
    fault_at = kwargs.get("fault_at", 37)
    if not isinstance(fault_at, int) or fault_at < 1:
        raise ValueError(f"debug envs: fault_at must be an int >= 1; got {fault_at!r}.")
    return fault_at


def describe(env_id: str, name: str, kwargs: dict[str, object]) -> EnvInfo:
    _fault_at(kwargs)
    return EnvInfo(
        env_id=env_id,
        obs_space={"vector": Space((3,), "float32", -1.0, 1.0), **flag_spaces()},
        act_space=discrete_action(2),
        episode_length=EPISODE_LENGTH,
        fixed_length=False,  # a fault ends an episode early
        seeded=True,
        score_metric=_SCORE,
        extra="",
    )


def create(name: str, seed: int, kwargs: dict[str, object]) -> FaultyEnv:
    return FaultyEnv(name, seed, _fault_at(kwargs))


class FaultyEnv:
    """The fault-drill env as a :class:`r2i_envs._episode.SuiteEnv`; ``fault`` is ``crash`` or ``hang``.

    Only ever build it inside a worker process: its ``fault_at``-th ``step`` kills or hangs the process.
    """

    def __init__(self, fault: str, seed: int, fault_at: int):
        self._fault = fault
        self._fault_at = fault_at
        self._rng = np.random.default_rng(seed)
        self._transitions = 0  # in this process's lifetime
        self._t = 0
        self._cue = 1.0

    def reset(self) -> Obs:
        self._t = 0
        self._cue = float(self._rng.choice([-1.0, 1.0]))
        return self._obs()

    def step(self, action: np.ndarray) -> Transition:
        self._transitions += 1
        if self._transitions == self._fault_at:
            if self._fault == "crash":
                os.kill(os.getpid(), signal.SIGKILL)
            while True:  # hang until the vector env kills this worker
                time.sleep(3600)
        reward = float(int(action) == int(self._cue > 0))
        self._t += 1
        done = self._t >= EPISODE_LENGTH
        return Transition(self._obs(), reward, done, done)

    def close(self) -> None:
        pass

    def _obs(self) -> Obs:
        noise = self._rng.uniform(-1.0, 1.0)
        return {"vector": np.array([self._cue, self._t / EPISODE_LENGTH, noise], np.float32)}
