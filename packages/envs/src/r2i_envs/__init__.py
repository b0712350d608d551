"""r2i_envs: BSuite, POPGym, Memory Maze, DMC, Atari and any Gymnasium env behind one vectorized,
auto-resetting interface.

>>> import numpy as np, r2i_envs
>>> env = r2i_envs.make("popgym/RepeatPreviousEasy", num_envs=2, seed=0)
>>> obs = env.reset()  # dict of arrays with leading dim 2: vector, reward, is_first, is_last, is_terminal
>>> obs = env.step(np.zeros(2, np.int64))
>>> env.close()

Suites are imported lazily, so importing this package needs only numpy.
"""

from r2i_envs._contract import check_env
from r2i_envs._deps import MissingDependencyError
from r2i_envs._episode import Obs
from r2i_envs._registry import UnknownEnvError, describe, env_seed, list_envs, make, register
from r2i_envs._runtime import RenderBackend, setup_rendering
from r2i_envs._spaces import EnvInfo, Space
from r2i_envs._vector import VectorEnv
from r2i_envs._workers import ProcessVectorEnv, WorkerError

__all__ = [
    "EnvInfo",
    "MissingDependencyError",
    "Obs",
    "ProcessVectorEnv",
    "RenderBackend",
    "Space",
    "UnknownEnvError",
    "VectorEnv",
    "WorkerError",
    "check_env",
    "describe",
    "env_seed",
    "list_envs",
    "make",
    "register",
    "setup_rendering",
]
