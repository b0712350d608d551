"""Actor and critic: distributions against closed forms, and the losses push the right way."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.stats

from r2i_agent._actor_critic import (
    Actor,
    ActorCriticSettings,
    Critic,
    actor_critic_losses,
    trajectory_weights,
)
from r2i_agent._returns import ReturnScale, update_return_scale
from worldmodel import Imagined, LatentState

N, L, G, A = 128, 3, 4, 3


def test_trajectory_weights_by_hand():
    c = jnp.array([[0.3, 1.0, 0.5, 0.2]])
    w = trajectory_weights(c, 0.9)
    np.testing.assert_allclose(np.asarray(w[0]), [1.0, 0.9, 0.9 * 0.9 * 0.5, 0.9**3 * 0.5 * 0.2], rtol=1e-6)
    c = jnp.array([[0.3, 1.0, 0.5], [0.7, 0.5, 1.0], [0.2, 0.4, 0.9]])
    w = trajectory_weights(c, 0.9, start_continues=jnp.array([1.0, 0.0, 0.5]))
    want = [[1.0, 0.9, 0.9 * 0.9 * 0.5], [0.0, 0.0, 0.0], [0.5, 0.5 * 0.9 * 0.4, 0.5 * 0.81 * 0.4 * 0.9]]
    np.testing.assert_allclose(np.asarray(w), want, rtol=1e-6)


def test_discrete_actor_distribution():
    actor = Actor(G, A, "discrete", units=8, layers=1, key=jax.random.key(0))
    x = jnp.ones(G)
    probs = jnp.exp(actor._logits(x))
    assert float(probs.sum()) == pytest.approx(1.0, abs=1e-6)
    assert float(probs.min()) >= 0.01 / A - 1e-7
    samples = jax.vmap(lambda k: actor.sample(x, k))(jax.random.split(jax.random.key(1), 4000))
    np.testing.assert_allclose(np.asarray(samples.mean(0)), np.asarray(probs), atol=0.03)
    one_hot = jax.nn.one_hot(1, A)
    assert float(actor.log_prob(x, one_hot)) == pytest.approx(float(jnp.log(probs[1])), rel=1e-5)
    entropy = -float(jnp.sum(probs * jnp.log(probs)))
    assert float(actor.entropy(x)) == pytest.approx(entropy, rel=1e-5)


def test_continuous_actor_distribution():
    actor = Actor(G, 2, "continuous", units=8, layers=1, key=jax.random.key(2))
    x = jnp.linspace(-1, 1, G)
    mean, std = actor._normal(x)
    assert bool(jnp.all(jnp.abs(mean) <= 1)) and bool(jnp.all((std >= 0.1) & (std <= 1.0)))
    a = jnp.array([0.2, -0.4])
    want = scipy.stats.norm.logpdf(np.asarray(a), np.asarray(mean), np.asarray(std)).sum()
    assert float(actor.log_prob(x, a)) == pytest.approx(want, rel=1e-5)
    assert float(actor.entropy(x)) == pytest.approx(
        scipy.stats.norm(0, np.asarray(std)).entropy().sum(), rel=1e-5
    )
    samples = jax.vmap(lambda k: actor.sample(x, k))(jax.random.split(jax.random.key(3), 1000))
    assert float(jnp.abs(samples).max()) <= 1.0


def test_unknown_action_kind():
    with pytest.raises(ValueError, match="unknown action kind"):
        Actor(G, A, "multibinary", units=8, layers=1, key=jax.random.key(0))


def test_critic_starts_at_zero_value():
    critic = Critic(G, units=8, layers=1, key=jax.random.key(0))
    assert float(critic.value(jnp.ones(G))) == pytest.approx(0.0, abs=1e-6)  # zero-initialized head


def test_critic_loss_with_regularizer_by_hand():
    """Cross-entropy of softmax(logits) against the two-hot encodings of symlog(target) and of
    symlog(slow value), written out with NumPy; its gradient is that of the two losses added."""
    critic = Critic(G, units=8, layers=1, key=jax.random.key(0), num_bins=5)
    critic = eqx.tree_at(lambda c: c.mlp, critic, jax.tree.map(lambda x: x + 0.3, critic.mlp))  # not zero
    x, target, slow = jnp.linspace(-1.0, 1.0, G), jnp.asarray(2.0), jnp.asarray(-0.5)
    bins = np.linspace(-20.0, 20.0, 5)  # spacing 10: symlog values fall between bins 2 and 3 or 1 and 2

    def twohot(value):
        y = np.sign(float(value)) * np.log1p(abs(float(value)))
        i = int(np.searchsorted(bins, y, side="right")) - 1
        w = np.zeros(5)
        w[i], w[i + 1] = (bins[i + 1] - y) / 10.0, (y - bins[i]) / 10.0
        return w

    logits = np.asarray(critic.logits(x), np.float64)
    log_probs = logits - np.log(np.sum(np.exp(logits)))
    want = -np.sum(twohot(target) * log_probs) - 0.7 * np.sum(twohot(slow) * log_probs)
    got = critic.loss(x, target, regularizer_target=slow, regularizer_scale=0.7)
    assert float(got) == pytest.approx(want, rel=1e-5)
    assert float(critic.loss(x, target)) == pytest.approx(-np.sum(twohot(target) * log_probs), rel=1e-5)

    both = eqx.filter_grad(lambda c: c.loss(x, target, regularizer_target=slow, regularizer_scale=0.7))(
        critic
    )
    apart = eqx.filter_grad(lambda c: c.loss(x, target) + 0.7 * c.loss(x, slow))(critic)
    for a, b in zip(jax.tree.leaves(both), jax.tree.leaves(apart), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)


def bandit_rollout(actor: Actor, key) -> Imagined:
    """Imagined rollouts where only action 0 at the start pays reward 1 on the next step."""
    inputs = jnp.ones((N, L, G)).at[:, 1:, 0].set(2.0)  # the start state looks different from later ones
    keys = jax.random.split(key, N * L).reshape(N, L)
    actions = jax.vmap(jax.vmap(actor.sample))(inputs, keys)
    rewards = jnp.zeros((N, L)).at[:, 1].set(actions[:, 0, 0])
    features = jnp.zeros((N, L, G))  # the heads' (z, h): read by neither actor nor critic
    empty = LatentState(deter=features, hidden=(), stoch=jnp.zeros((N, L, 1, 1)))
    return Imagined(empty, features, inputs, actions, rewards, jnp.ones((N, L)))


def test_reinforce_learns_the_paying_action_and_critic_its_value():
    actor = Actor(G, A, "discrete", units=16, layers=1, key=jax.random.key(4))
    critic = Critic(G, units=16, layers=1, key=jax.random.key(5))
    settings = ActorCriticSettings(discount=0.9, lambda_=0.95)
    optimizer = optax.adam(3e-3)
    state = optimizer.init(eqx.filter((actor, critic), eqx.is_inexact_array))
    scale = ReturnScale.init()

    @eqx.filter_jit
    def update(actor, critic, state, scale, key):
        imagined = bandit_rollout(actor, key)

        def loss(models):
            out = actor_critic_losses(*models, critic, imagined, scale, settings)
            return out.actor + out.critic, out.returns

        (_, returns), grads = eqx.filter_value_and_grad(loss, has_aux=True)((actor, critic))
        updates, state = optimizer.update(grads, state)
        actor, critic = eqx.apply_updates((actor, critic), updates)
        return actor, critic, state, update_return_scale(scale, returns)

    for step in range(300):
        actor, critic, state, scale = update(actor, critic, state, scale, jax.random.key(step))
    start = jnp.ones(G)
    assert float(jnp.exp(actor._logits(start))[0]) > 0.9
    assert float(critic.value(start)) == pytest.approx(1.0, abs=0.2)  # R_0 ≈ reward 1 + γ·0


def test_entropy_bonus_raises_entropy():
    actor = Actor(G, A, "discrete", units=8, layers=1, key=jax.random.key(6))
    critic = Critic(G, units=8, layers=1, key=jax.random.key(7))
    imagined = bandit_rollout(actor, jax.random.key(8))
    imagined = imagined._replace(rewards=jnp.zeros((N, L)))  # nothing to learn but the bonus

    def actor_loss(a):
        return actor_critic_losses(
            a, critic, critic, imagined, ReturnScale.init(), ActorCriticSettings(entropy=1.0)
        ).actor

    grads = eqx.filter_grad(actor_loss)(actor)
    stepped = eqx.apply_updates(actor, jax.tree.map(lambda g: -0.5 * g, grads))
    assert float(stepped.entropy(jnp.ones(G))) > float(actor.entropy(jnp.ones(G)))


def test_actor_and_critic_read_the_policy_features_not_the_heads_features():
    """R2I's actor-critic input (e.g. (z, x)) feeds the critic too; the heads' (z, h) feed neither."""
    actor = Actor(G, A, "discrete", units=8, layers=1, key=jax.random.key(9))
    critic = Critic(G, units=8, layers=1, key=jax.random.key(10))
    out = critic.mlp.out.weight  # zero-initialized: give the critic an output that depends on its input
    critic = eqx.tree_at(lambda c: c.mlp.out.weight, critic, jax.random.normal(jax.random.key(13), out.shape))
    imagined = bandit_rollout(actor, jax.random.key(11))
    imagined = imagined._replace(rewards=imagined.rewards + 0.3)

    def losses(imagined):
        out = actor_critic_losses(actor, critic, critic, imagined, ReturnScale.init())
        return jnp.stack([out.actor, out.critic, out.metrics["value_mean"]])

    base = losses(imagined)
    noise = jax.random.normal(jax.random.key(12), imagined.features.shape)
    moved_heads = losses(imagined._replace(features=imagined.features + noise))
    moved_policy = losses(imagined._replace(policy_features=imagined.policy_features + noise))
    assert jnp.array_equal(base, moved_heads)
    assert float(jnp.abs(moved_policy[1:] - base[1:]).min()) > 0  # critic loss and values move


def test_rollouts_from_terminal_starts_change_neither_loss():
    """Whatever the model imagines after a terminal start state (weight 0) leaves both losses alone."""
    actor = Actor(G, A, "discrete", units=8, layers=1, key=jax.random.key(14))
    critic = Critic(G, units=8, layers=1, key=jax.random.key(15))
    critic = eqx.tree_at(
        lambda c: c.mlp.out.weight, critic, jax.random.normal(jax.random.key(16), critic.mlp.out.weight.shape)
    )
    imagined = bandit_rollout(actor, jax.random.key(17))
    terminal = jnp.arange(N) % 3 == 0

    def losses(imagined):
        out = actor_critic_losses(
            actor, critic, critic, imagined, ReturnScale.init(), start_continues=1.0 - terminal
        )
        return jnp.stack([out.actor, out.critic])

    def perturbed(rows):
        noise = jax.random.normal(jax.random.key(18), imagined.policy_features.shape)
        mask = rows[:, None, None]
        return imagined._replace(
            policy_features=imagined.policy_features + mask * noise,
            rewards=imagined.rewards + rows[:, None] * 5.0,
        )

    base = losses(imagined)
    np.testing.assert_allclose(np.asarray(losses(perturbed(terminal))), np.asarray(base), rtol=1e-6)
    assert float(jnp.abs(losses(perturbed(~terminal)) - base).min()) > 1e-4


def test_agent_critic_is_sized_for_the_policy_input():
    import dataclasses

    from r2i_agent import agent_preset, make_agent

    config = agent_preset("tiny")
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, policy_input="hidden"))
    agent = make_agent(config, {"vector": (3,)}, 2, "discrete", key=jax.random.key(0))
    size = agent.world_model.policy_feature_size()
    assert size != agent.world_model.feature_size  # the preset's policy input is not the heads' (z, h)
    assert (
        agent.critic.mlp.hidden[0].linear.in_features == size == agent.actor.mlp.hidden[0].linear.in_features
    )
