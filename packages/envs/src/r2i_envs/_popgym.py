"""POPGym environments: gymnasium envs, so they go through the adapter of ``_gym`` like ``gym/`` ids.

That is: discrete observations one-hot encoded into ``vector`` in the order of the space (``Tuple`` parts
concatenated); ``MultiDiscrete`` actions flattened to one discrete action (C order, e.g. row-major board
cells); ``Box`` actions in [-1, 1], rescaled to the env's bounds. Rewards are POPGym's own, so an episode's
return lies in [-1, 1].
"""

from __future__ import annotations

from r2i_envs._deps import require
from r2i_envs._gym import GymEnv, env_info
from r2i_envs._spaces import EnvInfo

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
        return env_info(
            env_id,
            env,
            episode_length=None if length is None else int(length),
            fixed_length=name.startswith(_FIXED_LENGTH),
            score_metric=_SCORE,
            extra=EXTRA,
        )
    finally:
        env.close()


def create(name: str, seed: int, kwargs: dict[str, object]) -> GymEnv:
    return GymEnv(_env_class(name)(**kwargs), seed, f"popgym/{name}")
