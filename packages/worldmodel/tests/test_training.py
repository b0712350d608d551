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


def test_optimizer_is_clipped_adam_per_group_with_decoupled_weight_decay():
    """make_optimizer (each group flattened into one vector) against R2I's optimizer written per array in
    NumPy: the S5 parameters and the rest clipped by their own global norms, Adam, and decoupled weight
    decay of the rest's weight matrices only. Two steps; the first gradient is clipped, in the S5 group
    far more than in the other, so one shared clip would give other numbers."""
    from worldmodel import OptimConfig

    config = OptimConfig(lr=0.01, eps=1e-6, clip=1.0, weight_decay=0.1)
    rng = np.random.default_rng(0)
    shapes = {"weight": (3, 4), "bias": (4,), "s": (), "B_tilde": (5, 2, 2), "log_step": (5,)}
    params = {k: rng.normal(size=shape) for k, shape in shapes.items()}
    grads = [{k: 5.0 * rng.normal(size=np.shape(v)) for k, v in params.items()} for _ in range(2)]
    grads[0]["B_tilde"] *= 20.0
    grads[1] = {k: 0.01 * v for k, v in grads[1].items()}  # small: not clipped

    optimizer = make_optimizer(config)
    as_f32 = lambda tree: jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), tree)
    ours, state = as_f32(params), optimizer.init(as_f32(params))
    for g in grads:
        updates, state = optimizer.update(as_f32(g), state, ours)
        ours = eqx.apply_updates(ours, updates)

    b1, b2 = 0.9, 0.999
    groups = {"ssm": ("B_tilde", "log_step"), "rest": ("weight", "bias", "s")}
    ref = {k: np.array(v, np.float64) for k, v in params.items()}
    mu = {k: np.zeros_like(v) for k, v in ref.items()}
    nu = {k: np.zeros_like(v) for k, v in ref.items()}
    for t, g in enumerate(grads, start=1):
        for names in groups.values():
            norm = np.sqrt(sum(np.sum(np.square(g[k])) for k in names))
            factor = min(1.0, config.clip / norm)
            for k in names:
                gk = g[k] * factor
                mu[k] = b1 * mu[k] + (1 - b1) * gk
                nu[k] = b2 * nu[k] + (1 - b2) * gk**2
                step = (mu[k] / (1 - b1**t)) / (np.sqrt(nu[k] / (1 - b2**t)) + config.eps)
                decay = config.weight_decay * ref[k] if k == "weight" else 0.0
                ref[k] = ref[k] - config.lr * (step + decay)
    for k in ref:
        np.testing.assert_allclose(np.asarray(ours[k]), ref[k], rtol=1e-5, atol=1e-6)


def test_parameter_groups_of_a_world_model(tiny_model):
    """The S5 group holds exactly Λ, B̃, C̃, D and log Δ of every block; decay takes the 2-D weights."""
    from worldmodel._world_model import decayed_weights, parameter_groups

    model = tiny_model("s3m")
    params = eqx.filter(model, eqx.is_inexact_array)
    labels = parameter_groups(params)
    ssm = model.sequence_model.stack.blocks[0].ssm
    assert labels.sequence_model.stack.blocks[0].ssm.B_tilde == "ssm"
    assert labels.sequence_model.stack.blocks[1].ssm.log_step == "ssm"
    assert labels.sequence_model.stack.blocks[0].glu_value.weight == "rest"
    assert ssm.reset_state is not None and labels.sequence_model.stack.blocks[0].ssm.reset_state == "rest"
    counted = sum(label == "ssm" for label in jax.tree.leaves(labels))
    assert counted == 6 * len(model.sequence_model.stack.blocks)
    decays = decayed_weights(params)
    assert decays.reward.mlp.out.weight and not decays.reward.mlp.out.bias
    assert not decays.sequence_model.stack.blocks[0].norm.weight  # LayerNorm scale: 1-D
    assert not decays.initial_deter
