"""DeepMind Control: proprio and 64×64 vision through the contract, real episode length, rendering."""

import ctypes.util
import os
import subprocess
import sys

import numpy as np
import pytest

import r2i_envs
from r2i_envs import _dmc

pytestmark = pytest.mark.slow


def test_task_list_matches_dm_control():
    r2i_envs.setup_rendering()
    from dm_control import suite

    assert sorted(suite.ALL_TASKS) == sorted(_dmc.TASKS)


def test_proprio_contract_with_the_real_episode_length():
    info = r2i_envs.check_env("dmc/cartpole_balance", episodes=1)
    assert info.episode_length == 500 and info.fixed_length


def test_vision_contract():
    r2i_envs.check_env("dmc-vision/cartpole_swingup", episodes=2, max_steps=4)


def test_vision_renders_non_blank_images_that_move():
    with r2i_envs.make("dmc-vision/walker_walk", num_envs=1, seed=0) as env:
        first = env.reset()["image"]
        for _ in range(5):
            last = env.step(np.ones((1, 6), np.float32))["image"]
    assert first.shape == (1, 64, 64, 3) and first.dtype == np.uint8
    assert first.astype(np.float64).var() > 0
    assert not np.array_equal(first, last)


def test_actions_are_rescaled_to_the_task_bounds():
    env = _dmc.create("cartpole_balance", 0, {}, vision=False)
    env.reset()
    for action, expected in ((-1.0, -1.0), (0.0, 0.0), (1.0, 1.0)):
        env.step(np.array([action], np.float32))
        assert env._env.physics.data.ctrl[0] == pytest.approx(expected)
    env.close()


@pytest.mark.parametrize("backend", ["osmesa", "egl"])
def test_both_headless_backends_render(backend):
    if ctypes.util.find_library({"osmesa": "OSMesa", "egl": "EGL"}[backend]) is None:
        pytest.skip(f"no lib for MUJOCO_GL={backend} on this machine")
    code = (
        "import numpy as np, r2i_envs\n"
        "if __name__ == '__main__':\n"
        "    for env_id in ('dmc-vision/cartpole_swingup', 'memorymaze/9x9'):\n"
        "        with r2i_envs.make(env_id, num_envs=1) as env:\n"
        "            print(float(env.reset()['image'].astype(np.float64).var()) > 0)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYOPENGL_PLATFORM"} | {"MUJOCO_GL": backend}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.split() == ["True", "True"], out.stderr[-2000:]


def test_switching_backend_after_rendering_started_is_refused():
    r2i_envs.setup_rendering()
    from dm_control import _render

    other = "egl" if _render.BACKEND == "osmesa" else "osmesa"
    with pytest.raises(RuntimeError, match="already renders with"):
        r2i_envs.setup_rendering(other)
