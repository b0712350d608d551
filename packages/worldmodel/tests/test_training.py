"""Both sequence models learn a tiny deterministic episodic process: the loss drops by a clear margin."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from worldmodel import Batch, initial_carries, make_optimizer, train_step

EPISODE, POSITIONS = 6, 4


def episodic_dataset(batch=8, episodes=4, seed=0) -> Batch:
    """A walk on a ring of 4 cells: obs one-hot(cell), actions ±1, reward 1 on entering cell 0,
    episodes of 6 steps (terminal at the last), back to back in each sequence."""
    rng = np.random.default_rng(seed)
    T = EPISODE * episodes
    obs = np.zeros((batch, T, POSITIONS), np.float32)
    action = np.zeros((batch, T, 2), np.float32)
    reward = np.zeros((batch, T), np.float32)
    is_first = np.zeros((batch, T), bool)
    is_terminal = np.zeros((batch, T), bool)
    for b in range(batch):
        for e in range(episodes):
            pos = (b + e) % POSITIONS
            for i in range(EPISODE):
                t = e * EPISODE + i
                obs[b, t, pos] = 1.0
                is_first[b, t] = i == 0
                is_terminal[b, t] = i == EPISODE - 1
                move = rng.integers(2)
                action[b, t, move] = 1.0
                pos = (pos + (1 if move else -1)) % POSITIONS
                if t + 1 < T and i + 1 < EPISODE:
                    reward[b, t + 1] = float(pos == 0)
    as_jnp = lambda x: jnp.asarray(x)
    return Batch(
        obs={"vector": as_jnp(obs)},
        action=as_jnp(action),
        reward=as_jnp(reward),
        is_first=as_jnp(is_first),
        is_terminal=as_jnp(is_terminal),
    )


def test_dataset_is_the_walk():
    data = episodic_dataset(batch=2, episodes=2)
    cell = np.argmax(np.asarray(data.obs["vector"]), -1)
    step = np.where(np.asarray(data.action)[..., 1] == 1, 1, -1)
    inside = ~np.asarray(data.is_first)[:, 1:]
    np.testing.assert_array_equal(((cell[:, :-1] + step[:, :-1]) % 4)[inside], cell[:, 1:][inside])
    np.testing.assert_array_equal(np.asarray(data.reward)[:, 1:][inside], (cell[:, 1:] == 0)[inside])


@pytest.mark.parametrize("kind", ["s3m", "rssm"])
def test_loss_drops(kind, tiny_model):
    import dataclasses

    model = tiny_model(kind, obs_size=POSITIONS, action_size=2)
    optim = dataclasses.replace(model.config.optim, lr=3e-3)
    optimizer = make_optimizer(optim)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    data = episodic_dataset()
    carry = initial_carries(model, 8)
    step = eqx.filter_jit(train_step)
    losses, pred = [], []
    for i in range(300):
        model, opt_state, loss, (metrics, _, _) = step(
            model, opt_state, optimizer, data, carry, jax.random.key(i)
        )
        losses.append(float(loss))
        pred.append(float(metrics["pred"]))
    first, last = np.mean(losses[:5]), np.mean(losses[-20:])
    assert np.isfinite(losses).all()
    assert last < 0.35 * first, (first, last)
    assert np.mean(pred[-20:]) < 0.2 * np.mean(pred[:5]), (pred[:5], pred[-20:])


def test_optimizer_is_clipped_adam_on_every_parameter():
    """make_optimizer (flattened into one vector) against clip-by-global-norm + Adam written per array
    in NumPy: two steps on arrays of different shapes, the first gradient large enough to be clipped."""
    from worldmodel import OptimConfig

    config = OptimConfig(lr=0.01, eps=1e-6, clip=1.0)
    rng = np.random.default_rng(0)
    params = {"w": rng.normal(size=(3, 4)), "b": rng.normal(size=(4,)), "s": rng.normal(size=())}
    grads = [{k: 5.0 * rng.normal(size=np.shape(v)) for k, v in params.items()} for _ in range(2)]
    grads[1] = {k: 0.01 * v for k, v in grads[1].items()}  # small: not clipped

    optimizer = make_optimizer(config)
    as_f32 = lambda tree: jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), tree)
    ours, state = as_f32(params), optimizer.init(as_f32(params))
    for g in grads:
        updates, state = optimizer.update(as_f32(g), state, ours)
        ours = eqx.apply_updates(ours, updates)

    b1, b2 = 0.9, 0.999
    ref = {k: np.array(v, np.float64) for k, v in params.items()}
    mu = {k: np.zeros_like(v) for k, v in ref.items()}
    nu = {k: np.zeros_like(v) for k, v in ref.items()}
    for t, g in enumerate(grads, start=1):
        norm = np.sqrt(sum(np.sum(np.square(x)) for x in g.values()))
        factor = min(1.0, config.clip / norm)
        for k in ref:
            gk = g[k] * factor
            mu[k] = b1 * mu[k] + (1 - b1) * gk
            nu[k] = b2 * nu[k] + (1 - b2) * gk**2
            step = (mu[k] / (1 - b1**t)) / (np.sqrt(nu[k] / (1 - b2**t)) + config.eps)
            ref[k] = ref[k] - config.lr * step
    for k in ref:
        np.testing.assert_allclose(np.asarray(ours[k]), ref[k], rtol=1e-5, atol=1e-6)
