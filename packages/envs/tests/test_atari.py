"""Atari 100k protocol through ale-py."""

import numpy as np
import pytest

import r2i_envs
from r2i_envs import _atari

pytestmark = pytest.mark.slow


def test_rom_ids_match_ale_py():
    from ale_py import roms

    assert tuple(roms.get_all_rom_ids()) == _atari.IDS


def test_contract():
    r2i_envs.check_env("atari/pong", episodes=2, max_frames=120)


def test_frame_cap_truncates_without_terminal():
    with r2i_envs.make("atari/pong", seed=0, processes=False, max_frames=400) as env:
        obs = env.reset()
        for step in range(1, 101):
            obs = env.step(np.array([step % 6]))
            assert obs["is_last"][0] == (step == 100)
        assert not obs["is_terminal"][0]
        assert obs["image"].astype(np.float64).var() > 0


def test_sticky_actions_are_the_only_randomness():
    def images(seed, sticky):
        with r2i_envs.make("atari/breakout", seed=seed, processes=False, sticky_actions=sticky) as env:
            frames = [env.reset()["image"]]
            frames += [env.step(np.array([i % 4]))["image"] for i in range(60)]
        return np.stack(frames)

    np.testing.assert_array_equal(images(0, 0.0), images(1, 0.0))
    assert not np.array_equal(images(0, 0.25), images(1, 0.25))


def test_life_loss_is_not_terminal():
    env = _atari.create("breakout", 0, {"sticky_actions": 0.0})
    env.reset()
    lives = env._ale.lives()
    rng = np.random.default_rng(0)
    for _ in range(2000):
        t = env.step(rng.integers(0, 4))
        if env._ale.lives() < lives:
            break
    assert env._ale.lives() == lives - 1
    assert not t.is_last and not t.is_terminal
    env.close()
