"""The fault-drill suite: its contract, its documented crash/hang schedule, and recovery through make."""

import time
from pathlib import Path

import numpy as np
import pytest

import r2i_envs
from r2i_envs import ProcessVectorEnv, WorkerError, _debug


def _alive(pids):
    return [pid for pid in pids if Path(f"/proc/{pid}").exists()]


def test_listed_and_described():
    assert [i for i in r2i_envs.list_envs() if i.startswith("debug/")] == ["debug/crash", "debug/hang"]
    info = r2i_envs.describe("debug/hang")
    assert info.obs_space["vector"] == r2i_envs.Space((3,), "float32", -1.0, 1.0)
    assert info.act_space["action"].n == 2
    assert (info.episode_length, info.fixed_length) == (10, False)
    with pytest.raises(TypeError, match="fault_at"):
        r2i_envs.describe("debug/crash", fault_every=3)
    with pytest.raises(ValueError, match="fault_at must be an int >= 1"):
        r2i_envs.describe("debug/crash", fault_at=0)


@pytest.mark.parametrize(("env_id", "kwargs"), [("debug/crash", {"fault_at": 15}), ("debug/hang", {})])
def test_contract(env_id, kwargs):
    # crash: episode 1 ends terminal after 10 steps, the crash ends episode 2 at its 5th step, in every run.
    # hang: no fault within the 3 episodes checked (each hang costs 2 s; the tests below cover hangs).
    r2i_envs.check_env(env_id, episodes=2 if kwargs else 3, **kwargs)


def test_refuses_to_run_in_process():
    with pytest.raises(ValueError, match="only in worker processes"):
        r2i_envs.make("debug/crash", processes=False)


def test_crash_schedule_with_defaults():
    env = r2i_envs.make("debug/crash", num_envs=2, seed=0)
    assert isinstance(env, ProcessVectorEnv)
    obs = env.reset()
    pids, faults, starts, rewards = [env.pids], [], [0], []
    for t in range(1, 124):
        obs = env.step((obs["vector"][:, 0] > 0).astype(np.int64))  # the policy that earns reward 1
        assert obs["is_last"][0] == obs["is_last"][1] and obs["is_first"][0] == obs["is_first"][1]
        if obs["is_last"][0] and not obs["is_terminal"].any():
            faults.append(t)
            pids.append(env.pids)
            np.testing.assert_array_equal(obs["reward"], 0.0)
        elif not obs["is_first"][0]:
            rewards.append(obs["reward"])
        if obs["is_first"][0]:
            starts.append(t)
    assert faults == [40, 81, 122]
    assert env.restarts == [3, 3]
    assert starts[:5] == [0, 11, 22, 33, 41] and 123 in starts
    np.testing.assert_array_equal(rewards, 1.0)
    assert len({pid for p in pids for pid in p}) == 8  # every restart is a new process
    env.close()
    assert not _alive([pid for p in pids for pid in p])


def test_hang_is_killed_at_the_timeout_and_the_env_goes_on():
    env = r2i_envs.make("debug/hang", num_envs=3, seed=1, fault_at=2)
    env.reset()
    env.step(np.zeros(3, np.int64))
    old = env.pids
    start = time.monotonic()
    obs = env.step(np.zeros(3, np.int64))  # every worker hangs on its 2nd transition
    elapsed = time.monotonic() - start
    # One shared deadline: three hangs cost one timeout (plus three restarts), not three.
    assert _debug.TIMEOUT_S <= elapsed < 3 * _debug.TIMEOUT_S, elapsed
    assert obs["is_last"].all() and not obs["is_terminal"].any()
    assert not _alive(old) and env.restarts == [1, 1, 1]
    obs = env.step(np.zeros(3, np.int64))
    assert obs["is_first"].all()
    obs = env.step(np.zeros(3, np.int64))
    assert not obs["is_last"].any()
    pids = env.pids
    env.close()
    assert not _alive(pids)


def test_crashes_beyond_max_restarts_raise():
    env = r2i_envs.make("debug/crash", num_envs=2, fault_at=1)
    env._max_restarts = 2
    env.reset()
    for _ in range(4):  # crash, new episode, crash, new episode
        env.step(np.zeros(2, np.int64))
    pids = env.pids
    message = (
        r"debug/crash: worker 0 failed 3 times, more than max_restarts=2; giving up\. "
        r"Last failure: pid \d+ died \(exit code -9\)\."
    )
    with pytest.raises(WorkerError, match=message):
        env.step(np.zeros(2, np.int64))
    assert not _alive(pids)
    env.close()
