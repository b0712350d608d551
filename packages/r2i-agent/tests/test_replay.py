"""Replay: windows are consecutive steps of one env, uniform, never across the ring's write position."""

import numpy as np
import pytest

from r2i_agent._replay import Field, Replay

NUM_ENVS = 3
FLAGS = ("is_first", "is_last", "is_terminal")


def make_step(t: int, episode_length: int = 5) -> dict[str, np.ndarray]:
    """Step t of every env; ``counter`` = env·10⁶ + t identifies each stored step."""
    envs = np.arange(NUM_ENVS)
    phase = (t + envs) % episode_length  # envs are out of phase
    return {
        "counter": (envs * 1_000_000 + t).astype(np.int64),
        "image": np.full((NUM_ENVS, 4, 4, 3), t % 256, np.uint8),
        "is_first": phase == 0,
        "is_last": phase == episode_length - 1,
        "is_terminal": np.zeros(NUM_ENVS, bool),
    }


def filled(capacity: int, steps: int, **kwargs) -> Replay:
    replay = Replay(
        capacity, {"counter": Field((), np.int64), "image": Field((4, 4, 3), np.uint8)}, NUM_ENVS, **kwargs
    )
    for t in range(steps):
        replay.add(make_step(t))
    return replay


def test_windows_are_consecutive_steps_of_one_env():
    batch = filled(300, 70).sample(64, 16)
    counter = batch["counter"]
    assert counter.shape == (64, 16) and batch["image"].shape == (64, 16, 4, 4, 3)
    assert batch["image"].dtype == np.uint8
    np.testing.assert_array_equal(np.diff(counter, axis=1), 1)
    np.testing.assert_array_equal(batch["image"][..., 0, 0, 0], counter % 1_000_000 % 256)


def test_windows_cross_episode_boundaries():
    batch = filled(300, 70).sample(64, 16)
    assert batch["is_first"][:, 1:].any(), "windows of 16 steps over 5-step episodes must contain resets"


def test_after_wraparound_only_the_newest_steps_and_no_discontinuity():
    replay = filled(3 * 50, 173)  # 50 steps per env, written 173 times
    assert len(replay) == 150
    for _ in range(20):
        counter = replay.sample(32, 10)["counter"]
        np.testing.assert_array_equal(np.diff(counter, axis=1), 1)
        assert (counter % 1_000_000 >= 173 - 50).all()


def test_sampling_is_uniform_over_windows():
    replay = filled(3 * 20, 20, seed=1)
    starts = replay.sample(60_000, 5)["counter"][:, 0]
    _, counts = np.unique(starts, return_counts=True)
    assert len(counts) == NUM_ENVS * 16  # every start 0..15 of every env
    assert counts.min() > 0.85 * counts.mean() and counts.max() < 1.15 * counts.mean()


def test_episode_aligned_windows_start_at_is_first():
    batch = filled(300, 70).sample(256, 8, episode_starts=True)
    assert batch["is_first"][:, 0].all()
    np.testing.assert_array_equal(np.diff(batch["counter"], axis=1), 1)


def test_can_sample_episode_windows_only_once_a_start_has_room():
    """A window of 8 from an episode start needs a start at least 8 steps before the newest step."""
    replay = Replay(300, {"counter": Field((), np.int64)}, 1)
    for t in range(12):  # one episode starting at t = 3
        replay.add({"counter": np.array([t]), **{k: np.array([k == "is_first" and t == 3]) for k in FLAGS}})
        assert replay.can_sample(8, episode_starts=True) == (t >= 10)
        assert replay.can_sample(8) == (t >= 7)
    assert replay.sample(4, 8, episode_starts=True)["counter"][:, 0].tolist() == [3] * 4


def test_state_dict_resumes_identical_samples():
    replay = filled(300, 40, seed=3)
    state = replay.state_dict()
    expected = [replay.sample(8, 6)["counter"] for _ in range(3)]
    restored = filled(300, 0, seed=99)
    restored.load_state_dict(state)
    for want in expected:
        np.testing.assert_array_equal(restored.sample(8, 6)["counter"], want)


def test_capacity_that_does_not_fit_is_refused_before_allocating():
    with pytest.raises(MemoryError, match="lower the replay capacity"):
        Replay(10**6, {"image": Field((64, 64, 3), np.uint8)}, 1, memory_limit_bytes=2**30)


def test_bad_steps_are_refused_with_the_key_named():
    replay = filled(30, 0)
    step = make_step(0)
    with pytest.raises(ValueError, match="'image'"):
        replay.add({**step, "image": step["image"][:, :2]})
    with pytest.raises(KeyError, match="missing"):
        replay.add({k: v for k, v in step.items() if k != "counter"})
    with pytest.raises(ValueError, match="fewer than a window"):
        replay.sample(4, 8)


def test_first_step_only_fields_come_for_each_windows_first_step():
    replay = filled(300, 70, seed=3)
    whole = replay.sample(16, 8)
    replay = filled(300, 70, seed=3)
    firsts = replay.sample(16, 8, first_step_only=("counter",))
    assert firsts["counter"].shape == (16,) and firsts["image"].shape == (16, 8, 4, 4, 3)
    np.testing.assert_array_equal(firsts["counter"], whole["counter"][:, 0])  # same windows, same draws
    np.testing.assert_array_equal(firsts["image"], whole["image"])
