"""Actor and critic: distributions against closed forms, and the losses push the right way."""

import dataclasses

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
from r2i_agent._returns import ReturnScale
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
    # reparameterized N(mean, std) samples, NOT clipped (the world model clips what it reads)
    samples = jax.vmap(lambda k: actor.sample(x, k))(jax.random.split(jax.random.key(3), 20000))
    np.testing.assert_allclose(np.asarray(samples.mean(0)), np.asarray(mean), atol=0.03)
    np.testing.assert_allclose(np.asarray(samples.std(0)), np.asarray(std), rtol=0.03)


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
            return out.actor + out.critic, out.scale

        (_, scale), grads = eqx.filter_value_and_grad(loss, has_aux=True)((actor, critic))
        updates, state = optimizer.update(grads, state)
        actor, critic = eqx.apply_updates((actor, critic), updates)
        return actor, critic, state, scale

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
    """Whatever the model imagines after a terminal start state (weight 0) leaves both losses alone at a
    given return scale. (Their returns do enter the scale's percentiles, unweighted, as in R2I.)"""
    actor = Actor(G, A, "discrete", units=8, layers=1, key=jax.random.key(14))
    critic = Critic(G, units=8, layers=1, key=jax.random.key(15))
    critic = eqx.tree_at(
        lambda c: c.mlp.out.weight, critic, jax.random.normal(jax.random.key(16), critic.mlp.out.weight.shape)
    )
    imagined = bandit_rollout(actor, jax.random.key(17))
    terminal = jnp.arange(N) % 3 == 0

    def losses(imagined):
        out = actor_critic_losses(
            actor,
            critic,
            critic,
            imagined,
            ReturnScale.init(),
            start_continues=1.0 - terminal,
            update_scale=False,
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


def _random_critic(key, num_bins=255):
    """A critic whose zero-initialized output layer is replaced, so its values depend on its input."""
    critic = Critic(G, units=8, layers=1, key=key, num_bins=num_bins)
    weight = 0.5 * jax.random.normal(jax.random.fold_in(key, 1), critic.mlp.out.weight.shape)
    return eqx.tree_at(lambda c: c.mlp.out.weight, critic, weight)


def _spread_rollout(actor, key, n=6, length=5):
    """Rollouts whose rewards span about ±4 (so the return scale exceeds 1) with some ends (mode 0)."""
    keys = jax.random.split(key, 4)
    inputs = jax.random.normal(keys[0], (n, length, G))
    actions = jax.vmap(jax.vmap(actor.sample))(
        inputs, jax.random.split(keys[1], n * length).reshape(n, length)
    )
    rewards = 4.0 * jax.random.uniform(keys[2], (n, length), minval=-1.0, maxval=1.0)
    continues = (jax.random.uniform(keys[3], (n, length)) > 0.15).astype(jnp.float32)
    features = jnp.zeros((n, length, G))
    empty = LatentState(deter=features, hidden=(), stoch=jnp.zeros((n, length, 1, 1)))
    return Imagined(empty, features, inputs, actions, rewards, continues)


def test_actor_critic_losses_by_hand_with_distinct_critics_and_wide_returns():
    """Both losses against NumPy float64: λ-returns from the CURRENT critic, the return scale's EMA
    updated with this batch before it normalizes (R2I's order), the slow critic only as the critic's
    regularizer target. Returns span far more than 1, so the scale and its order matter."""
    actor = Actor(G, A, "discrete", units=8, layers=1, key=jax.random.key(30))
    critic, slow = _random_critic(jax.random.key(31)), _random_critic(jax.random.key(32))
    imagined = _spread_rollout(actor, jax.random.key(33))
    settings = ActorCriticSettings(discount=0.97, lambda_=0.9, entropy=0.05, return_decay=0.9)
    previous = ReturnScale(jnp.asarray(-0.5), jnp.asarray(0.7))
    out = actor_critic_losses(actor, critic, slow, imagined, previous, settings)

    value = lambda c: np.asarray(jax.vmap(jax.vmap(c.value))(imagined.policy_features), np.float64)
    v, v_slow = value(critic), value(slow)
    assert np.abs(v - v_slow).max() > 0.1  # the two critics really differ
    r, c = np.asarray(imagined.rewards, np.float64), np.asarray(imagined.continues, np.float64)
    n, length = r.shape
    g, lam = settings.discount, settings.lambda_
    ret = np.zeros((n, length))
    ret[:, -1] = v[:, -1]
    for t in range(length - 2, -1, -1):
        ret[:, t] = r[:, t + 1] + g * c[:, t + 1] * ((1 - lam) * v[:, t + 1] + lam * ret[:, t + 1])
    ret = ret[:, :-1]
    low = 0.9 * -0.5 + 0.1 * np.percentile(ret, 5)
    high = 0.9 * 0.7 + 0.1 * np.percentile(ret, 95)
    scale = max(1.0, high - low)
    assert high - low > 1.0 and ret.max() - ret.min() > 2.0
    weights = np.concatenate([np.ones((n, 1)), np.cumprod(g * c[:, 1:], axis=1)], axis=1)[:, :-1]
    head = imagined.policy_features[:, :-1]
    log_prob, entropy = (
        np.asarray(x, np.float64)
        for x in jax.vmap(jax.vmap(actor.log_prob_and_entropy))(head, imagined.actions[:, :-1])
    )
    advantage = (ret - v[:, :-1]) / scale
    actor_loss = -np.mean(weights * (log_prob * advantage + settings.entropy * entropy))
    critic_terms = jax.vmap(jax.vmap(lambda h, t, s: critic.loss(h, t, regularizer_target=s)))(
        head, jnp.asarray(ret, jnp.float32), jnp.asarray(v_slow[:, :-1], jnp.float32)
    )
    critic_loss = np.mean(weights * np.asarray(critic_terms, np.float64))

    assert float(out.scale.low) == pytest.approx(low, rel=1e-5)
    assert float(out.scale.high) == pytest.approx(high, rel=1e-5)
    assert float(out.actor) == pytest.approx(actor_loss, rel=1e-4)
    assert float(out.critic) == pytest.approx(critic_loss, rel=1e-4)
    assert float(out.metrics["return_mean"]) == pytest.approx(ret.mean(), rel=1e-5)

    # The returns follow the current critic, never the slow one; the slow one moves the critic loss only.
    other = _random_critic(jax.random.key(34))
    with_other_slow = actor_critic_losses(actor, critic, other, imagined, previous, settings)
    assert float(with_other_slow.actor) == float(out.actor)
    assert float(with_other_slow.metrics["return_mean"]) == float(out.metrics["return_mean"])
    assert float(with_other_slow.critic) != pytest.approx(float(out.critic), rel=1e-3)
    with_other_critic = actor_critic_losses(actor, other, slow, imagined, previous, settings)
    assert float(with_other_critic.metrics["return_mean"]) != pytest.approx(ret.mean(), rel=1e-3)
    # Without the update the previous scale normalizes (for a caller that updated it with more data).
    kept = actor_critic_losses(actor, critic, slow, imagined, previous, settings, update_scale=False)
    assert float(kept.scale.low) == -0.5 and float(kept.metrics["return_scale"]) == pytest.approx(1.2)


def test_the_actor_loss_moves_with_the_policy_features():
    """The discrete actor's loss reads log π(a | policy features): moving them moves it."""
    actor = Actor(G, A, "discrete", units=8, layers=1, key=jax.random.key(35))
    critic = _random_critic(jax.random.key(36))
    imagined = _spread_rollout(actor, jax.random.key(37))
    loss = lambda im: float(actor_critic_losses(actor, critic, critic, im, ReturnScale.init()).actor)
    moved = imagined._replace(policy_features=imagined.policy_features.at[:, 0].add(1.0))
    assert abs(loss(moved) - loss(imagined)) > 1e-4


def test_an_out_of_range_continuous_sample_still_gets_a_gradient():
    """DreamerV3's action_clip: the model reads the sample scaled into [−1, 1] with a straight-through
    gradient, so a sample outside the range still moves with the actor (a hard clip would zero it)."""
    from worldmodel._sequence import clip_action

    actor = Actor(G, 2, "continuous", units=8, layers=1, key=jax.random.key(38))
    x = jnp.linspace(-1, 1, G)
    keys = jax.random.split(jax.random.key(39), 200)
    samples = jax.vmap(lambda k: actor.sample(x, k))(keys)
    outside = np.flatnonzero(np.abs(np.asarray(samples)).max(-1) > 1.2)
    assert outside.size > 10  # about a quarter of the samples at initialization
    key = keys[outside[0]]
    read = clip_action(actor.sample(x, key))
    assert float(jnp.abs(read).max()) == pytest.approx(1.0)  # the model reads it clipped
    grads = eqx.filter_grad(lambda a: jnp.sum(clip_action(a.sample(x, key))))(actor)
    assert float(jnp.abs(grads.mlp.out.bias).max()) > 0.01


def test_continuous_actor_gradient_through_imagination_matches_a_finite_difference():
    """The continuous actor's loss backpropagates the scaled return through a tiny S3M world model's
    imagination (float64): a_0 → h_1, x_1 → reward and value → λ-return. The prior's logits are made
    independent of h, so z's samples and their straight-through gradient do not depend on the actions
    and the loss is smooth in the actor's parameters: its gradient must match a central difference.
    Two paths a finite difference would see and the gradient by design does not are kept out: one
    imagined step (from the second on, the actor reads stop-gradient states, as in DreamerV3) and a
    narrow policy whose samples stay inside [−1, 1] (outside, the model's clip is straight-through)."""
    from r2i_agent import agent_preset
    from worldmodel import WorldModel

    with jax.enable_x64(True):
        config = agent_preset("tiny").model
        config = dataclasses.replace(config, dtype="float64", imag_horizon=1)
        model = WorldModel(config, {"vector": (3,)}, 2, key=jax.random.key(40))
        prior_out = model.prior.mlp.out
        model = eqx.tree_at(lambda m: m.prior.mlp.out.weight, model, jnp.zeros_like(prior_out.weight))
        reward_out = model.reward.mlp.out.weight
        model = eqx.tree_at(
            lambda m: m.reward.mlp.out.weight,
            model,
            0.3 * jax.random.normal(jax.random.key(41), reward_out.shape, jnp.float64),
        )
        to64 = lambda tree: jax.tree.map(
            lambda x: x.astype(jnp.float64) if eqx.is_inexact_array(x) else x, tree
        )
        size = model.policy_feature_size()
        actor = to64(Actor(size, 2, "continuous", units=8, layers=1, key=jax.random.key(42)))
        narrow = actor.mlp.out.bias.at[2:].set(-10.0)  # std ≈ min_std = 0.1
        actor = eqx.tree_at(lambda a: a.mlp.out.bias, actor, narrow)
        critic = to64(Critic(size, units=8, layers=1, key=jax.random.key(43)))
        critic = eqx.tree_at(
            lambda c: c.mlp.out.weight,
            critic,
            0.3 * jax.random.normal(jax.random.key(44), critic.mlp.out.weight.shape, jnp.float64),
        )
        rng = np.random.default_rng(0)
        observed, _ = model.observe(
            {"vector": jnp.asarray(rng.standard_normal((5, 3)))},
            jnp.asarray(rng.uniform(-1, 1, (5, 2))),
            jnp.arange(5) == 0,
            model.initial_carry(),
            key=jax.random.key(45),
        )
        scale = ReturnScale(jnp.asarray(0.0, jnp.float64), jnp.asarray(2.0, jnp.float64))
        settings = ActorCriticSettings(entropy=1e-2)

        def loss(actor):
            imagined = model.imagine(actor.sample, observed.state, key=jax.random.key(46))
            return actor_critic_losses(
                actor, critic, critic, imagined, scale, settings, update_scale=False
            ).actor

        sampled = model.imagine(actor.sample, observed.state, key=jax.random.key(46)).actions[:, 0]
        assert float(jnp.abs(sampled).max()) < 1.0  # the premise: no action is clipped
        grads = eqx.filter_grad(loss)(actor)
        bias = actor.mlp.out.bias
        for index in range(bias.shape[0]):  # the mean's and the std's raw outputs
            step = jnp.zeros_like(bias).at[index].set(1e-6)
            plus = eqx.tree_at(lambda a: a.mlp.out.bias, actor, bias + step)
            minus = eqx.tree_at(lambda a: a.mlp.out.bias, actor, bias - step)
            numeric = (float(loss(plus)) - float(loss(minus))) / 2e-6
            assert float(grads.mlp.out.bias[index]) == pytest.approx(numeric, rel=1e-4, abs=1e-8)
        assert float(jnp.abs(grads.mlp.out.bias[:2]).min()) > 1e-4  # the return's pathwise gradient
