"""The worker-process vector env: same results as in-process, recovery from deaths and hangs, no leftovers."""

import contextlib
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

import r2i_envs
from r2i_envs import ProcessVectorEnv, WorkerError


def _alive(pids):
    return [pid for pid in pids if Path(f"/proc/{pid}").exists()]


def test_workers_match_in_process_stepping():
    actions = np.random.default_rng(0).integers(0, 4, size=(60, 2))
    runs = []
    for processes in (False, True):
        with r2i_envs.make("popgym/RepeatPreviousEasy", num_envs=2, seed=5, processes=processes) as env:
            runs.append([env.reset()] + [env.step(a) for a in actions])
    for a, b in zip(*runs, strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_dead_worker_is_restarted_and_its_episode_ends():
    env = r2i_envs.make("popgym/RepeatPreviousEasy", num_envs=2, processes=True)
    assert isinstance(env, ProcessVectorEnv)
    env.reset()
    env.step(np.zeros(2, np.int64))
    old = env.pids
    os.kill(old[0], signal.SIGKILL)
    obs = env.step(np.zeros(2, np.int64))
    assert obs["is_last"].tolist() == [True, False]
    assert obs["is_terminal"].tolist() == [False, False]
    assert obs["reward"][0] == 0.0
    assert env.pids[0] != old[0] and env.pids[1] == old[1]
    obs = env.step(np.zeros(2, np.int64))
    assert obs["is_first"].tolist() == [True, False]
    for _ in range(60):  # the restarted env plays whole episodes again
        obs = env.step(np.zeros(2, np.int64))
    pids = env.pids
    env.close()
    assert not _alive(pids + old)


def test_hung_worker_is_killed_and_restarted_and_others_step_on():
    actions = np.random.default_rng(1).integers(0, 4, size=(8, 2))
    with r2i_envs.make("popgym/RepeatPreviousEasy", num_envs=2, seed=3, processes=False) as reference:
        expected = [reference.reset()] + [reference.step(a) for a in actions]
    env = r2i_envs.make("popgym/RepeatPreviousEasy", num_envs=2, seed=3, processes=True)
    assert isinstance(env, ProcessVectorEnv)
    env._timeout_s = 1.0
    env.reset()
    for a in actions[:4]:
        env.step(a)
    old = env.pids
    os.kill(old[0], signal.SIGSTOP)
    try:
        start = time.monotonic()
        obs = env.step(actions[4])
        assert time.monotonic() - start >= 1.0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(old[0], signal.SIGCONT)
    assert obs["is_last"].tolist() == [True, False]
    assert obs["is_terminal"].tolist() == [False, False]
    assert obs["reward"][0] == 0.0
    assert not _alive([old[0]])  # killed and reaped
    assert env.pids[1] == old[1] and env.restarts == [1, 0]
    after = [obs, env.step(actions[5]), env.step(actions[6])]
    assert after[1]["is_first"].tolist() == [True, False]  # a new episode in the restarted worker
    for t, o in enumerate(after, start=5):  # the other env steps on exactly as without the hang
        for key in o:
            np.testing.assert_array_equal(o[key][1], expected[t][key][1])
    pids = env.pids
    env.close()
    assert not _alive(pids + old)


def test_workers_failing_beyond_max_restarts_raise():
    env = r2i_envs.make("popgym/RepeatPreviousEasy", num_envs=2, processes=True)
    env._max_restarts = 1
    env._timeout_s = 1.0
    env.reset()
    first = env.pids
    os.kill(first[0], signal.SIGKILL)
    env.step(np.zeros(2, np.int64))
    second = env.pids
    os.kill(second[0], signal.SIGSTOP)  # a hang counts towards max_restarts like a death
    message = (
        r"popgym/RepeatPreviousEasy: worker 0 failed 2 times, more than max_restarts=1; giving up\. "
        r"Last failure: pid \d+ gave no answer in 1\.0 s and was killed\."
    )
    with pytest.raises(WorkerError, match=message):
        env.step(np.zeros(2, np.int64))
    assert not _alive(first + second)  # a failed step stops every worker ...
    with pytest.raises(RuntimeError, match="closed"):  # ... and leaves the env closed
        env.step(np.zeros(2, np.int64))
    env.close()


def test_close_leaves_no_process_behind():
    env = r2i_envs.make("popgym/AutoencodeEasy", num_envs=3, processes=True)
    env.reset()
    pids = env.pids
    assert len(_alive(pids)) == 3
    env.close()
    env.close()  # idempotent
    assert not _alive(pids)


def test_env_error_in_a_worker_is_raised_with_its_traceback(monkeypatch):
    monkeypatch.setenv("MUJOCO_GL", "bogus")  # memorymaze checks the backend inside the worker
    with pytest.raises(WorkerError, match=r"(?s)memorymaze/9x9: the env raised in worker.*MUJOCO_GL='bogus'"):
        r2i_envs.make("memorymaze/9x9", num_envs=2)
