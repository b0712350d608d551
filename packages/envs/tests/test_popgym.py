"""POPGym: every env through the contract, one-hot encoding, scripted RepeatPrevious returns."""

import numpy as np
import pytest

import r2i_envs
from r2i_envs import _gym, _popgym


def test_ids_are_every_popgym_env():
    import popgym.envs

    installed = {cls.__name__ for cls in popgym.envs.ALL}  # Labyrinth* only when mazelib is installed
    assert installed <= set(_popgym.IDS)
    missing = set(_popgym.IDS) - installed
    assert not missing, missing


@pytest.mark.parametrize("env_id", [i for i in r2i_envs.list_envs() if i.startswith("popgym/")])
def test_contract(env_id):
    r2i_envs.check_env(env_id)


def test_one_hot_encoding_keeps_the_space_order():
    from gymnasium import spaces

    space = spaces.Tuple((spaces.Discrete(2), spaces.MultiDiscrete([3, 2]), spaces.Box(-1, 1, (2,))))
    encode = _gym.ObsEncoder(space, "test")
    vector = encode((1, np.array([2, 0]), np.array([0.5, -0.25], np.float32)))["vector"]
    np.testing.assert_array_equal(vector, [0, 1, 0, 0, 1, 1, 0, 0.5, -0.25])
    assert vector.dtype == np.float32
    assert encode.space == {"vector": r2i_envs.Space((9,), "float32", -1.0, 1.0)}
    shifted = spaces.Discrete(3, start=-1)
    np.testing.assert_array_equal(_gym.ObsEncoder(shifted, "test")(-1)["vector"], [1, 0, 0])


def test_concentration_and_autoencode_vectors_are_one_hot_blocks():
    with r2i_envs.make("popgym/ConcentrationEasy") as env:  # 52 cards, each face down / up / matched
        vector = env.reset()["vector"][0]
        assert vector.shape == (52 * 3,) and vector.reshape(52, 3).sum(1).tolist() == [1.0] * 52
    with r2i_envs.make("popgym/AutoencodeEasy") as env:  # Tuple(Discrete(2), Discrete(4))
        vector = env.reset()["vector"][0]
        assert vector.shape == (6,) and vector[:2].sum() == 1 and vector[2:].sum() == 1


def test_multidiscrete_actions_become_one_discrete_action():
    from gymnasium import spaces

    info = r2i_envs.describe("popgym/BattleshipEasy")  # MultiDiscrete([8, 8]) board cell
    assert info.act_space["action"].n == 64
    np.testing.assert_array_equal(_gym.ActionDecoder(spaces.MultiDiscrete([8, 8]), "test")(19), [2, 3])


def _repeat_previous_returns(env_id, policy, episodes, num_envs=4, seed=0):
    env = r2i_envs.make(env_id, num_envs=num_envs, seed=seed)
    k = env._envs[0]._env._env.k  # how far back the answer lies (4 / 32 / 64)
    rng = np.random.default_rng(0)
    obs = env.reset()
    history = [[int(np.argmax(v))] for v in obs["vector"]]
    returns, totals = [], np.zeros(num_envs)
    while len(returns) < episodes:
        if policy == "memory":
            action = np.array([h[-k] if len(h) >= k else 0 for h in history])
        else:
            action = rng.integers(0, 4, num_envs)
        obs = env.step(action)
        totals += obs["reward"]
        for i, vector in enumerate(obs["vector"]):
            history[i] = (
                [int(np.argmax(vector))] if obs["is_first"][i] else [*history[i], int(np.argmax(vector))]
            )
        returns += totals[obs["is_last"]].tolist()
        totals[obs["is_last"]] = 0.0
    env.close()
    return np.array(returns)


@pytest.mark.parametrize("level", ["Easy", "Medium", "Hard"])
def test_repeat_previous_perfect_memory_scores_one(level):
    returns = _repeat_previous_returns(f"popgym/RepeatPrevious{level}", "memory", episodes=8)
    np.testing.assert_allclose(returns, 1.0, atol=1e-5)


def test_repeat_previous_random_policy_scores_about_minus_half():
    returns = _repeat_previous_returns("popgym/RepeatPreviousEasy", "random", episodes=200, num_envs=8)
    assert abs(returns.mean() + 0.5) < 0.05, returns.mean()
    assert returns.min() >= -1.0 and returns.max() <= 1.0
