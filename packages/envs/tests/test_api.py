"""The public interface: ids, describe, errors for bad input, lazy imports."""

import ctypes.util
import os
import subprocess
import sys

import numpy as np
import pytest

import r2i_envs
from r2i_envs import MissingDependencyError, UnknownEnvError


def test_list_envs_covers_every_suite():
    ids = r2i_envs.list_envs()
    assert len(ids) == len(set(ids))
    assert [i for i in ids if i.startswith("bsuite/memory_len/")] == [
        f"bsuite/memory_len/{n}" for n in range(23)
    ]
    assert [i for i in ids if i.startswith("bsuite/discounting_chain/")] == [
        f"bsuite/discounting_chain/{n}" for n in range(20)
    ]
    for base in ("RepeatPrevious", "Autoencode", "Concentration"):
        for level in ("Easy", "Medium", "Hard"):
            assert f"popgym/{base}{level}" in ids
    assert [i for i in ids if i.startswith("memorymaze/")] == [
        f"memorymaze/{s}" for s in ("9x9", "11x11", "13x13", "15x15")
    ]
    assert {"dmc/walker_walk", "dmc-vision/walker_walk", "dmc/ball_in_cup_catch", "atari/pong"} <= set(ids)
    assert [i for i in ids if i.startswith("debug/")] == ["debug/crash", "debug/hang"]


def test_unknown_id_names_the_nearest_ids():
    with pytest.raises(UnknownEnvError, match="popgym/RepeatPreviousEasy"):
        r2i_envs.make("popgym/RepeatPreviusEasy")
    with pytest.raises(UnknownEnvError, match="memorymaze/9x9"):
        r2i_envs.describe("memorymaze/9x8")
    with pytest.raises(UnknownEnvError, match="Nearest ids: bsuite/memory_len/"):
        r2i_envs.make("bsuite/memory_len/23")


def test_default_episode_lengths_and_score_metrics():
    expected = {
        "bsuite/memory_len/0": 2,
        "bsuite/memory_len/22": 101,
        "bsuite/discounting_chain/0": 100,
        "popgym/RepeatPreviousEasy": 51,
        "memorymaze/9x9": 1000,
        "memorymaze/11x11": 2000,
        "memorymaze/13x13": 3000,
        "memorymaze/15x15": 4000,
        "dmc/walker_walk": 500,
        "dmc-vision/cartpole_swingup": 500,
        "atari/pong": 27_000,
    }
    for env_id, length in expected.items():
        info = r2i_envs.describe(env_id)
        assert info.episode_length == length, env_id
        assert info.score_metric, env_id
    assert r2i_envs.describe("memorymaze/9x9", max_steps=10).episode_length == 10
    assert r2i_envs.describe("dmc/walker_walk", action_repeat=1).episode_length == 1000


def test_spaces_of_each_kind():
    maze = r2i_envs.describe("memorymaze/15x15")
    assert maze.obs_space["image"] == r2i_envs.Space((64, 64, 3), "uint8", 0, 255)
    assert maze.act_space["action"].n == 6
    vision = r2i_envs.describe("dmc-vision/walker_walk")
    assert vision.obs_space["image"].shape == (64, 64, 3)
    assert vision.act_space["action"] == r2i_envs.Space((6,), "float32", -1.0, 1.0)
    proprio = r2i_envs.describe("dmc/walker_walk")
    assert proprio.obs_space["vector"] == r2i_envs.Space(
        (24,), "float32"
    )  # orientations 14, height 1, velocity 9
    assert r2i_envs.describe("atari/pong").act_space["action"].n == 6  # minimal action set
    assert r2i_envs.describe("atari/pong").obs_space["image"].shape == (64, 64, 3)


def test_parametric_memory_len():
    info = r2i_envs.describe("bsuite/memory_len", memory_length=7)
    assert info.episode_length == 8
    with r2i_envs.make("bsuite/memory_len", num_envs=2, memory_length=7) as env:
        obs = env.reset()
        for _ in range(8):
            obs = env.step(np.zeros(2, np.int64))
        assert obs["is_last"].all()
    with pytest.raises(TypeError, match="memory_length"):
        r2i_envs.make("bsuite/memory_len")
    with pytest.raises(TypeError, match="sweep id"):
        r2i_envs.make("bsuite/memory_len/3", memory_length=5)


def test_bad_discrete_actions_raise_one_clear_error():
    with r2i_envs.make("popgym/RepeatPreviousEasy", num_envs=2) as env:
        env.reset()
        bad = [
            np.zeros(3, np.int64),
            np.zeros(2, np.float32),
            np.array([0, 4]),
            np.array([-1, 0]),
            np.zeros((2, 1), int),
        ]
        expected = (
            r"RepeatPreviousEasy: action must be an integer array of shape \(2,\) with values in \[0, 4\)"
        )
        for action in bad:
            with pytest.raises(ValueError, match=expected):
                env.step(action)
        env.step(np.array([0, 3]))


def test_bad_continuous_actions_raise_one_clear_error():
    with r2i_envs.make("popgym/PositionOnlyPendulumEasy", num_envs=2) as env:
        env.reset()
        bad = [
            np.zeros(2, np.float32),
            np.zeros((2, 1), np.int64),
            np.full((2, 1), 1.5, np.float32),
            np.full((2, 1), np.nan),
        ]
        for action in bad:
            with pytest.raises(
                ValueError, match=r"PositionOnlyPendulumEasy: action must be a float array of shape \(2, 1\)"
            ):
                env.step(action)
        env.step(np.full((2, 1), -1.0, np.float32))


def test_closed_env_refuses_to_step():
    env = r2i_envs.make("popgym/RepeatPreviousEasy")
    env.reset()
    env.close()
    with pytest.raises(RuntimeError, match="closed"):
        env.step(np.zeros(1, np.int64))


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_envs"):
        r2i_envs.make("popgym/RepeatPreviousEasy", num_envs=0)
    with pytest.raises(ValueError, match="seed"):
        r2i_envs.make("popgym/RepeatPreviousEasy", seed=-1)
    with pytest.raises(TypeError, match="sticky_actions"):
        r2i_envs.describe("atari/pong", sticky=0.0)


def test_missing_suite_dependency_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ale_py", None)  # makes `import ale_py` fail
    with pytest.raises(MissingDependencyError, match=r"pip install 'r2i-envs\[atari\]'"):
        r2i_envs.make("atari/pong", processes=False)


def test_missing_render_library_says_what_to_install(monkeypatch):
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    with pytest.raises(MissingDependencyError, match="apt-get install libosmesa6"):
        r2i_envs.setup_rendering("osmesa")
    with pytest.raises(MissingDependencyError, match="libegl1"):
        r2i_envs.setup_rendering("egl")


def test_import_pulls_in_no_suite():
    heavy = [
        "bsuite",
        "pandas",
        "mujoco",
        "dm_control",
        "popgym",
        "gymnasium",
        "ale_py",
        "cv2",
        "memory_maze",
    ]
    loaded = "[m for m in sys.modules if m.split('.')[0] in heavy]"
    code = f"import sys, os, r2i_envs\nheavy = {heavy}\nprint({loaded}, 'MUJOCO_GL' in os.environ)"
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert out.strip() == "[] False"
