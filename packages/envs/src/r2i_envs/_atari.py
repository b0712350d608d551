"""Atari 2600 games through ale-py, with the Atari 100k protocol of DreamerV3.

Per agent step: the action is repeated for ``frameskip`` (4) emulator frames, rewards summed, and the last two
frames max-pooled and resized to 64×64 RGB (area interpolation). Sticky actions with probability
``sticky_actions`` (0.25) inside the emulator, the minimal action set, no life-loss termination (only game
over is terminal), and episodes truncated after ``max_frames`` (108 000) emulator frames.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from r2i_envs._deps import require
from r2i_envs._episode import Obs, Transition
from r2i_envs._image import rgb_image
from r2i_envs._spaces import EnvInfo, Space, discrete_action, flag_spaces

EXTRA = "atari"
VERSION = "ale-py 0.12.1, opencv-python-headless"

# ale_py.roms.get_all_rom_ids() of ale-py 0.12.1 (tests check it is still current).
IDS: tuple[str, ...] = (
    "adventure", "air_raid", "alien", "amidar", "assault", "asterix", "asteroids", "atlantis2", "atlantis",
    "backgammon", "bank_heist", "basic_math", "battle_zone", "beam_rider", "berzerk", "blackjack", "bowling",
    "boxing", "breakout", "carnival", "casino", "centipede", "chopper_command", "combat", "crazy_climber",
    "crossbow", "darkchambers", "defender", "demon_attack", "donkey_kong", "double_dunk", "earthworld",
    "elevator_action", "enduro", "entombed", "et", "fishing_derby", "flag_capture", "freeway", "frogger",
    "frostbite", "galaxian", "gopher", "gravitar", "hangman", "haunted_house", "hero", "human_cannonball",
    "ice_hockey", "jamesbond", "journey_escape", "joust", "kaboom", "kangaroo", "keystone_kapers",
    "king_kong", "klax", "koolaid", "krull", "kung_fu_master", "laser_gates", "lost_luggage", "mario_bros",
    "maze_craze",
    "miniature_golf", "montezuma_revenge", "mr_do", "ms_pacman", "name_this_game", "othello", "pacman",
    "phoenix", "pitfall2", "pitfall", "pong", "pooyan", "private_eye", "qbert", "riverraid", "road_runner",
    "robotank", "seaquest", "sir_lancelot", "skiing", "solaris", "space_invaders", "space_war", "star_gunner",
    "superman", "surround", "tennis", "tetris", "tic_tac_toe_3d", "time_pilot", "trondead", "turmoil",
    "tutankham", "up_n_down", "venture", "video_checkers", "video_chess", "video_cube", "video_pinball",
    "warlords", "wizard_of_wor", "word_zapper", "yars_revenge", "zaxxon",
)  # fmt: skip
_SCORE = "Atari game score (undiscounted episode return), usually reported human-normalised for Atari 100k"
_DEFAULTS: dict[str, Any] = {"sticky_actions": 0.25, "frameskip": 4, "size": 64, "max_frames": 108_000}


def _options(kwargs: dict[str, object]) -> dict[str, Any]:
    unknown = set(kwargs) - set(_DEFAULTS)
    if unknown:
        raise TypeError(f"atari envs take kwargs {sorted(_DEFAULTS)} (and max_steps); got {sorted(unknown)}.")
    return {**_DEFAULTS, **kwargs}


def describe(env_id: str, name: str, kwargs: dict[str, object]) -> EnvInfo:
    options = _options(kwargs)
    ale = _load(name, 0, options["sticky_actions"])
    size = options["size"]
    return EnvInfo(
        env_id=env_id,
        obs_space={"image": Space((size, size, 3), "uint8", 0, 255), **flag_spaces()},
        act_space=discrete_action(len(ale.getMinimalActionSet())),
        episode_length=-(-options["max_frames"] // options["frameskip"]),
        fixed_length=False,
        seeded=True,
        score_metric=_SCORE,
        extra=EXTRA,
    )


def create(name: str, seed: int, kwargs: dict[str, object]) -> AtariEnv:
    options = _options(kwargs)
    return AtariEnv(
        _load(name, seed, options["sticky_actions"]),
        options["frameskip"],
        options["size"],
        options["max_frames"],
    )


def _load(game: str, seed: int, sticky_actions: float) -> Any:
    ale_py = require("ale_py", EXTRA)
    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)
    ale = ale_py.ALEInterface()
    ale.setInt("random_seed", int(seed) % 2**31)
    ale.setFloat("repeat_action_probability", float(sticky_actions))
    ale.setInt("frame_skip", 1)
    ale.loadROM(ale_py.roms.get_rom_path(game))
    return ale


class AtariEnv:
    """One ALE emulator as a :class:`r2i_envs._episode.SuiteEnv` (protocol: see the module docstring)."""

    def __init__(self, ale: Any, frameskip: int, size: int, max_frames: int):
        require("cv2", EXTRA)  # now, not at the first frame
        self._ale = ale
        self._actions = ale.getMinimalActionSet()
        self._frameskip = frameskip
        self._size = size
        self._max_frames = max_frames
        height, width = ale.getScreenDims()
        self._frames = np.zeros((2, height, width, 3), np.uint8)

    def reset(self) -> Obs:
        self._ale.reset_game()
        self._ale.getScreenRGB(self._frames[0])
        self._frames[1] = self._frames[0]
        return self._obs()

    def step(self, action: np.ndarray) -> Transition:
        reward = 0.0
        fresh_previous = False
        for k in range(self._frameskip):
            reward += self._ale.act(self._actions[int(action)])
            if k == self._frameskip - 2:
                self._ale.getScreenRGB(self._frames[0])
                fresh_previous = True
            if self._ale.game_over(with_truncation=False):
                break
        self._ale.getScreenRGB(self._frames[1])
        if not fresh_previous:
            self._frames[0] = self._frames[1]
        terminal = self._ale.game_over(with_truncation=False)
        truncated = self._ale.getEpisodeFrameNumber() >= self._max_frames
        return Transition(self._obs(), reward, terminal or truncated, terminal)

    def close(self) -> None:
        self._ale = None

    def _obs(self) -> Obs:
        return {"image": rgb_image(np.maximum(self._frames[0], self._frames[1]), self._size, EXTRA)}
