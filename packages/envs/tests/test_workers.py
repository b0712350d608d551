"""The worker-process vector env: same results as in-process, crash recovery, no hang, no leftovers."""

import contextlib
import os
import signal
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


def test_worker_that_keeps_dying_raises():
    env = r2i_envs.make("popgym/RepeatPreviousEasy", num_envs=1, processes=True)
    env._max_restarts = 1
    env.reset()
    os.kill(env.pids[0], signal.SIGKILL)
    env.step(np.zeros(1, np.int64))
    os.kill(env.pids[0], signal.SIGKILL)
    with pytest.raises(WorkerError, match="died 2 times"):
        env.step(np.zeros(1, np.int64))
    env.close()


def test_unresponsive_worker_raises_instead_of_hanging():
    env = r2i_envs.make("popgym/RepeatPreviousEasy", num_envs=1, processes=True)
    env._timeout_s = 1.0
    env.reset()
    pid = env.pids[0]
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(WorkerError, match=r"gave no answer in 1\.0 s"):
            env.step(np.zeros(1, np.int64))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    assert not _alive([pid])  # a failed step stops every worker ...
    with pytest.raises(RuntimeError, match="closed"):  # ... and leaves the env closed
        env.step(np.zeros(1, np.int64))
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
