"""Cross-package: episode starts reported by r2i_envs reset ssmscan's state exactly where they should.

An agent acts with step mode (carrying the SSM state and resetting it on ``is_first``) and trains with
sequence mode on the replayed stream (resets from the same ``is_first`` flags). Both must see the same
hidden states, and no information may leak across an episode boundary.
"""

import jax
import jax.numpy as jnp
import numpy as np

import r2i_envs
import ssmscan

STEPS, NUM_ENVS, WIDTH = 60, 2, 8


def collect_stream(env_id: str, seed: int):
    """Observations and is_first flags [T, N, ...] from random actions, as the replay would store them."""
    env = r2i_envs.make(env_id, num_envs=NUM_ENVS, seed=seed)
    rng = np.random.default_rng(seed)
    obs = env.reset()
    vectors, firsts = [obs["vector"]], [obs["is_first"]]
    for _ in range(STEPS - 1):
        obs = env.step(rng.integers(0, env.act_space["action"].n, size=NUM_ENVS))
        vectors.append(obs["vector"])
        firsts.append(obs["is_first"])
    env.close()
    return np.stack(vectors), np.stack(firsts)


def test_step_mode_acting_matches_sequence_mode_training():
    vectors, is_first = collect_stream("bsuite/memory_len/2", seed=0)  # episodes of 4 steps
    assert is_first[0].all() and is_first[1:].sum() >= NUM_ENVS * 5
    projection = jax.random.normal(jax.random.key(1), (vectors.shape[-1], WIDTH)) / 3
    inputs = jnp.asarray(vectors) @ projection
    stack = ssmscan.S5Stack(2, WIDTH, 8, key=jax.random.key(2), learn_reset_state=True)

    train_ys, train_xs = jax.vmap(stack, in_axes=(1, 1))(inputs, jnp.asarray(is_first))

    state = jax.vmap(lambda _: stack.init_state())(jnp.arange(NUM_ENVS))
    act_ys, act_xs = [], []
    for t in range(STEPS):
        y, state = jax.vmap(stack.step)(state, inputs[t], jnp.asarray(is_first[t]))
        act_ys.append(y)
        act_xs.append(state)
    np.testing.assert_allclose(np.stack(act_ys, axis=1), np.asarray(train_ys), atol=1e-4)
    for layer, xs in enumerate(train_xs):
        acted = np.stack([s[layer] for s in act_xs], axis=1)
        np.testing.assert_allclose(acted, np.asarray(xs), atol=1e-4)


def test_nothing_crosses_an_episode_boundary():
    vectors, is_first = collect_stream("popgym/RepeatPreviousEasy", seed=3)
    inputs = jnp.asarray(vectors[:, 0]) @ jax.random.normal(jax.random.key(4), (vectors.shape[-1], WIDTH))
    starts = np.flatnonzero(is_first[:, 0])
    assert len(starts) >= 2, "need a second episode in the stream"
    second = starts[1]
    stack = ssmscan.S5Stack(2, WIDTH, 8, key=jax.random.key(5))
    ys, _ = stack(inputs, jnp.asarray(is_first[:, 0]))
    scrambled = inputs.at[:second].set(jax.random.normal(jax.random.key(6), inputs[:second].shape))
    scrambled_ys, _ = stack(scrambled, jnp.asarray(is_first[:, 0]))
    np.testing.assert_allclose(np.asarray(scrambled_ys[second:]), np.asarray(ys[second:]), atol=1e-5)
    assert not np.allclose(np.asarray(scrambled_ys[:second]), np.asarray(ys[:second]))
