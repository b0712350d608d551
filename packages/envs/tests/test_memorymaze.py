"""Memory Maze: contract, headless 64×64 images, import without the old gym."""

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

import r2i_envs

pytestmark = pytest.mark.slow


def test_contract():
    info = r2i_envs.check_env("memorymaze/9x9", episodes=2, max_steps=4)
    assert info.episode_length == 4 and info.fixed_length
    assert r2i_envs.describe("memorymaze/9x9").episode_length == 1000


def test_renders_non_blank_images():
    with r2i_envs.make("memorymaze/11x11", num_envs=1, seed=1) as env:
        obs = env.reset()
        for _ in range(3):
            obs = env.step(np.array([1]))  # forward
    image = obs["image"]
    assert image.shape == (1, 64, 64, 3) and image.dtype == np.uint8
    assert image.astype(np.float64).var() > 0


def test_tasks_import_without_gym():
    if importlib.util.find_spec("gym") is not None:
        pytest.skip("the old gym is installed here, so memory_maze's own __init__ runs")
    code = (
        "import sys, r2i_envs; r2i_envs.setup_rendering(); from r2i_envs import _memorymaze as m; "
        "t = m._tasks_module(); print(callable(t.memory_maze_9x9), 'gym' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True False", out.stderr


def test_real_episode_length():
    with r2i_envs.make("memorymaze/9x9", seed=2) as env:
        env.reset()
        rng = np.random.default_rng(0)
        for step in range(1, 1001):
            obs = env.step(rng.integers(0, 6, size=1))
            assert obs["is_last"][0] == (step == 1000), step
        assert not obs["is_terminal"][0]
