"""BSuite memory_len and discounting_chain."""

import numpy as np
import pytest

import r2i_envs
from r2i_envs import _bsuite


def test_sweep_ids_match_bsuite():
    from bsuite.experiments.discounting_chain import sweep as discounting_sweep
    from bsuite.experiments.memory_len import sweep as memory_sweep

    assert tuple(s["memory_length"] for s in memory_sweep.SETTINGS) == _bsuite.MEMORY_LENGTHS
    assert tuple(s["mapping_seed"] for s in discounting_sweep.SETTINGS) == _bsuite.DISCOUNTING_MAPPING_SEEDS


@pytest.mark.parametrize("env_id", [i for i in r2i_envs.list_envs() if i.startswith("bsuite/")])
def test_contract(env_id):
    r2i_envs.check_env(env_id)


def test_contract_parametric():
    r2i_envs.check_env("bsuite/memory_len", memory_length=13, num_bits=3)
    r2i_envs.check_env("bsuite/discounting_chain")


def _play_memory_len(env_id, sign, episodes=20, **kwargs):
    """Returns of a policy that reads the context at t=0 and answers it (sign=+1) or its opposite (-1)."""
    env = r2i_envs.make(env_id, num_envs=4, seed=3, **kwargs)
    obs = env.reset()
    context = obs["vector"][:, 2].copy()
    returns = []
    while len(returns) < episodes:
        answer = (sign * context > 0).astype(np.int64)  # context bit +1 -> action 1, -1 -> action 0
        obs = env.step(answer)
        context = np.where(obs["is_first"], obs["vector"][:, 2], context)
        returns += obs["reward"][obs["is_last"]].tolist()
    env.close()
    return np.array(returns)


@pytest.mark.parametrize(
    ("env_id", "kwargs"),
    [("bsuite/memory_len/0", {}), ("bsuite/memory_len/14", {}), ("bsuite/memory_len", {"memory_length": 33})],
)
def test_memory_len_context_decides_final_reward(env_id, kwargs):
    np.testing.assert_array_equal(_play_memory_len(env_id, +1, **kwargs), 1.0)
    np.testing.assert_array_equal(_play_memory_len(env_id, -1, **kwargs), -1.0)


def test_memory_len_observation_order():
    with r2i_envs.make("bsuite/memory_len", memory_length=3) as env:
        obs = env.reset()["vector"][0]
        assert obs[0] == 1.0 and obs[1] == 0.0 and abs(obs[2]) == 1.0  # [time, query, context]
        for _ in range(3):
            obs = env.step(np.zeros(1, np.int64))["vector"][0]
        assert obs[2] == 0.0  # the context is gone long before the answer is due


def test_discounting_chain_bonus_arm():
    env = r2i_envs.make("bsuite/discounting_chain/2")  # mapping_seed 2: the chain rewarded at t=10 pays 1.1
    totals = []
    for first in range(5):
        env.reset()
        total, obs = 0.0, env.step(np.array([first]))
        total += float(obs["reward"][0])
        while not obs["is_last"][0]:
            obs = env.step(np.array([0]))
            total += float(obs["reward"][0])
        totals.append(total)
    env.close()
    np.testing.assert_allclose(totals, [1.0, 1.0, 1.1, 1.0, 1.0])


def test_auto_reset_ignores_the_action_of_the_step_after_is_last():
    # discounting_chain's context is the first action of an episode, so it shows which action was used.
    with r2i_envs.make("bsuite/discounting_chain/0") as env:
        obs = env.reset()
        for _ in range(100):
            obs = env.step(np.array([1]))
        assert obs["is_last"][0]
        obs = env.step(np.array([4]))  # ignored: starts the next episode
        assert obs["is_first"][0] and obs["reward"][0] == 0.0 and obs["vector"][0, 0] == -1.0
        obs = env.step(np.array([2]))  # the first action of the new episode
        assert obs["vector"][0, 0] == 2.0
