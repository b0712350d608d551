"""The jitted update: it learns from finite batches and skips non-finite ones without touching anything."""

import collections
import dataclasses
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from r2i_agent._agent import actor_critic_lr, init_train_state, make_agent, make_update
from r2i_agent._config import agent_preset
from worldmodel import Batch, batch_loss, initial_carries

B, T, OBS, A = 2, 8, 3, 2


def batch(value: float = 0.5, terminal: jax.Array | None = None) -> Batch:
    """Random steps; by default two terminal steps, one mid-sequence (a new episode follows) and one last."""
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((B, T, OBS)).astype(np.float32)
    obs[0, 3, 1] = value
    return Batch(
        obs={"vector": jnp.asarray(obs)},
        action=jax.nn.one_hot(jnp.asarray(rng.integers(0, A, (B, T))), A),
        reward=jnp.asarray(rng.standard_normal((B, T)), jnp.float32),
        is_first=jnp.zeros((B, T), bool).at[:, 0].set(True).at[0, 6].set(True),
        is_terminal=jnp.zeros((B, T), bool).at[0, 5].set(True).at[1, T - 1].set(True)
        if terminal is None
        else terminal,
    )


def sequences(size: int, length: int, obs: str, shape: tuple[int, ...]) -> Batch:
    """``size`` random episodes of ``length`` steps, each starting at t = 0: float vectors, or uint8 images
    when ``shape`` has 3 dimensions."""
    rng = np.random.default_rng(0)
    values = (
        jnp.asarray(rng.integers(0, 256, (size, length, *shape)), jnp.uint8)
        if len(shape) == 3
        else jnp.asarray(rng.standard_normal((size, length, *shape)), jnp.float32)
    )
    return Batch(
        obs={obs: values},
        action=jax.nn.one_hot(jnp.asarray(rng.integers(0, A, (size, length))), A),
        reward=jnp.asarray(rng.standard_normal((size, length)), jnp.float32),
        is_first=jnp.zeros((size, length), bool).at[:, 0].set(True),
        is_terminal=jnp.zeros((size, length), bool),
    )


def leaves(state):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(eqx.filter(state, eqx.is_array))]


def test_non_finite_update_is_skipped_and_counted():
    config = agent_preset("tiny")
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, imag_horizon=2))
    state = init_train_state(
        config, make_agent(config, {"vector": (OBS,)}, A, "discrete", key=jax.random.key(0))
    )
    update = make_update(config)

    skipped, metrics = update(state, batch(np.nan), jax.random.key(1))
    assert int(skipped.skipped_in_a_row) == 1 and float(metrics["update/skipped"]) == 1.0
    assert float(metrics["actor/step_norm"]) == 0.0  # nothing moved
    for before, after in zip(
        leaves(state), leaves(skipped._replace(skipped_in_a_row=state.skipped_in_a_row)), strict=True
    ):
        np.testing.assert_array_equal(before, after)

    twice, _ = update(skipped, batch(np.inf), jax.random.key(2))
    assert int(twice.skipped_in_a_row) == 2

    learned, metrics = update(twice, batch(), jax.random.key(3))
    assert int(learned.skipped_in_a_row) == 0 and float(metrics["update/skipped"]) == 0.0
    step = optax.tree.norm(jax.tree.map(jnp.subtract, leaves(learned.agent.actor), leaves(twice.agent.actor)))
    assert float(metrics["actor/step_norm"]) == pytest.approx(float(step), rel=1e-5) and float(step) > 0
    assert float(metrics["actor/grad_norm"]) > 0
    changed = [not np.array_equal(a, b) for a, b in zip(leaves(twice), leaves(learned), strict=True)]
    assert sum(changed) > len(changed) // 2


def test_update_in_chunks_gives_the_same_update_as_all_at_once():
    """B·T = 16 imagination starts in 1, 4 or 16 chunks, and the B = 2 sequences of the world-model
    gradient in 1 or 2 parts: same losses, metrics, optimizer moments (linear and quadratic in the
    gradients), return-scale update and parameters.

    Parameters are compared to within 1% of one Adam step (lr): Adam's first step is g / (|g| + eps) per
    entry, so an entry whose gradient is ~eps moves by a fraction of lr that float rounding of g changes.
    """
    config = agent_preset("tiny")
    agent = make_agent(config, {"vector": (OBS,)}, A, "discrete", key=jax.random.key(0))
    step = max(config.model.optim.lr, config.actor_critic.lr)
    results = []
    for imagination_chunk, model_chunk in ((16, B * T), (4, B * T), (16, T), (1, 1)):
        train = dataclasses.replace(
            config.train, imagination_chunk=imagination_chunk, model_chunk=model_chunk
        )
        chunked = dataclasses.replace(config, train=train)
        state, metrics = make_update(chunked)(init_train_state(chunked, agent), batch(), jax.random.key(3))
        others = leaves(state._replace(agent=None))  # optimizer moments, return scale, skip count
        results.append((leaves(state.agent), others, {k: float(v) for k, v in metrics.items()}))
    (want_params, want_others, want_metrics), *chunkings = results
    for got_params, got_others, got_metrics in chunkings:
        assert got_metrics.keys() == want_metrics.keys()
        for name, value in want_metrics.items():
            np.testing.assert_allclose(got_metrics[name], value, rtol=1e-4, atol=1e-6, err_msg=name)
        for a, b in zip(want_others, got_others, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)
        for a, b in zip(want_params, got_params, strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=0.01 * step)


@pytest.mark.parametrize("obs", ["vector", "image"])
def test_world_model_gradient_in_two_parts_is_the_same_in_half_the_memory(obs):
    """Parts exist to bound the backward pass's memory: in 2 parts the world-model loss and gradients must
    equal those of 1 part, and the compiled program's temporary buffers must be about half as large.
    Vector parts run in a loop; image parts are unrolled, and XLA's CPU backend ran unrolled parts side by
    side (nearly all of 1 part's memory) until each part's inputs depended on the last part's gradients."""
    from r2i_agent._agent import _world_model_grads

    size, length = (8, 64) if obs == "vector" else (4, 8)
    shape = (OBS,) if obs == "vector" else (64, 64, 3)
    config = agent_preset("tiny")
    agent = make_agent(config, {obs: shape}, A, "discrete", key=jax.random.key(0))
    inputs = (
        agent.world_model,
        sequences(size, length, obs, shape),
        initial_carries(agent.world_model, size),
        jax.random.key(1),
    )
    runs = {}
    for parts in (1, 2):
        grads = eqx.filter_jit(lambda *args, parts=parts: _world_model_grads(*args, size * length // parts))
        compiled = grads.lower(*inputs).compile()
        (loss, _), model_grads = compiled(*inputs)
        runs[parts] = (
            float(loss),
            leaves(model_grads),
            compiled.compiled.memory_analysis().temp_size_in_bytes,
        )
    (loss_one, grads_one, bytes_one), (loss_two, grads_two, bytes_two) = runs[1], runs[2]
    np.testing.assert_allclose(loss_two, loss_one, rtol=1e-5)
    for want, got in zip(grads_one, grads_two, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4 * np.abs(want).max())
    assert bytes_two < 0.6 * bytes_one, (bytes_one, bytes_two)


def test_actor_critic_lr_falls_linearly_over_the_decay_steps_updates_then_holds():
    """The ``cpu`` preset makes one update per 8·32/64 = 4 env steps, so 40k decay steps are 10k updates."""
    config = agent_preset("cpu")
    assert actor_critic_lr(config) == config.actor_critic.lr == 3e-4  # no decay: a constant, as before
    decayed = dataclasses.replace(
        config, actor_critic=dataclasses.replace(config.actor_critic, lr_decay_steps=40_000, lr_end=3e-5)
    )
    schedule = actor_critic_lr(decayed)
    for update, want in ((0, 3e-4), (2_500, 2.325e-4), (5_000, 1.65e-4), (10_000, 3e-5), (50_000, 3e-5)):
        np.testing.assert_allclose(float(schedule(update)), want, rtol=1e-6, err_msg=f"update {update}")


def test_decayed_actor_and_critic_steps_shrink_to_lr_end_while_the_world_model_keeps_its_lr():
    """Decay over 2 updates to 1e-9: the first update equals the constant-lr one; from the third on the
    actor and critic stand still (float32 steps below 1e-6) while the world model still learns."""
    config = agent_preset("tiny")
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, imag_horizon=2))
    decay_steps = round(2 * config.train.env_steps_per_update)
    decayed = dataclasses.replace(
        config, actor_critic=dataclasses.replace(config.actor_critic, lr_decay_steps=decay_steps, lr_end=1e-9)
    )
    agent = make_agent(config, {"vector": (OBS,)}, A, "discrete", key=jax.random.key(0))
    runs = {}
    for name, run_config in (("constant", config), ("decayed", decayed)):
        update, state, states = make_update(run_config), init_train_state(run_config, agent), []
        for i in range(4):
            state, _ = update(state, batch(), jax.random.key(10 + i))
            states.append(state.agent)
        runs[name] = states

    def largest_step(before, after):
        return max(float(np.max(np.abs(a - b))) for a, b in zip(leaves(before), leaves(after), strict=True))

    for a, b in zip(leaves(runs["constant"][0]), leaves(runs["decayed"][0]), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-7)
    for part in ("actor", "critic"):
        decayed_parts = [getattr(agent, part) for agent in runs["decayed"]]
        constant_parts = [getattr(agent, part) for agent in runs["constant"]]
        assert largest_step(decayed_parts[2], decayed_parts[3]) < 1e-6, part
        assert largest_step(constant_parts[2], constant_parts[3]) > 1e-4, part
    models = [agent.world_model for agent in runs["decayed"]]
    assert largest_step(models[2], models[3]) > 1e-4


def test_chunk_count_splits_into_equal_chunks_no_larger_than_asked():
    from r2i_agent._agent import chunk_count

    assert chunk_count(16384, 1024) == 16 and chunk_count(1000, 1024) == 1 and chunk_count(12, 5) == 3
    assert chunk_count(7, 3) == 7  # a prime: one start per chunk


def test_rollouts_from_terminal_starts_do_not_train_the_actor_or_critic():
    """DreamerV3 weighs each imagined rollout by its real start's 1 − is_terminal: from a terminal state
    the model imagines past the episode's end, which must not teach the actor or critic anything."""
    config = agent_preset("tiny")
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, imag_horizon=2))
    state = init_train_state(
        config, make_agent(config, {"vector": (OBS,)}, A, "discrete", key=jax.random.key(0))
    )
    update = make_update(config)
    actor_critic = lambda s: leaves((s.agent.actor, s.agent.critic))

    all_terminal, _ = update(state, batch(terminal=jnp.ones((B, T), bool)), jax.random.key(1))
    for before, after in zip(actor_critic(state), actor_critic(all_terminal), strict=True):
        np.testing.assert_array_equal(before, after)
    assert not all(  # the world model still learns from these steps
        np.array_equal(a, b)
        for a, b in zip(leaves(state.agent.world_model), leaves(all_terminal.agent.world_model), strict=True)
    )
    one_live = batch(terminal=jnp.ones((B, T), bool).at[1, 2].set(False))
    learned, _ = update(state, one_live, jax.random.key(1))
    pairs = zip(actor_critic(state), actor_critic(learned), strict=True)
    moved = [not np.array_equal(a, b) for a, b in pairs]
    assert sum(moved) > len(moved) // 2  # a single live start is enough to move them


def test_each_sequence_starts_from_its_own_context():
    """``update(..., context)``: the world-model loss is ``batch_loss`` from the carries the context
    vectors hold (sequence i from row i, however the B sequences are split into parts); an episode start
    at t = 0 makes the context irrelevant; ``context=None`` starts from the model's initial carry."""
    config = agent_preset("tiny")
    agent = make_agent(config, {"vector": (OBS,)}, A, "discrete", key=jax.random.key(0))
    world_model = agent.world_model
    context = jax.random.normal(jax.random.key(4), (B, world_model.carry_size))
    mid_episode = batch()._replace(is_first=batch().is_first.at[:, 0].set(False))
    key = jax.random.key(3)

    parts = dataclasses.replace(config, train=dataclasses.replace(config.train, model_chunk=T))
    updates = {B * T: make_update(config), T: make_update(parts)}  # all sequences at once; one per part
    state = init_train_state(config, agent)

    def model_loss(data, context, model_chunk=B * T):
        return float(updates[model_chunk](state, data, key, context)[1]["model/loss"])

    carries = world_model.carry_from_vector(context)
    loss_of = eqx.filter_jit(
        lambda carries: batch_loss(world_model, mid_episode, carries, jax.random.split(key)[0])[0]
    )
    want = float(loss_of(carries))
    for model_chunk in updates:
        np.testing.assert_allclose(model_loss(mid_episode, context, model_chunk), want, rtol=1e-5)
    swapped = float(loss_of(jax.tree.map(lambda x: x[::-1], carries)))
    assert abs(swapped - want) > 1e-3  # the rows are not interchangeable: order matters

    initial = world_model.carry_to_vector(initial_carries(world_model, B))  # the learned initial state
    assert model_loss(mid_episode, initial) == model_loss(mid_episode, None)
    assert abs(model_loss(mid_episode, context) - model_loss(mid_episode, None)) > 1e-3
    np.testing.assert_allclose(model_loss(batch(), context), model_loss(batch(), None), rtol=1e-6)


def _convolutions(compiled_text: str) -> collections.Counter:
    """(output shape, dimension labels) of every convolution in an optimized XLA program."""
    return collections.Counter(re.findall(r"= (\S+) convolution\(.*?dim_labels=([^,\s]+)", compiled_text))


@pytest.mark.parametrize("parts", [1, 2])
def test_image_update_compiles_its_convolutions_like_a_plain_world_model_gradient(parts):
    """XLA's CPU backend rewrites convolutions into the form its fast kernels take only where they sit
    outside loops; the world-model gradient inside ``lax.scan`` (even of one part) kept the generic
    form and made the image update 10-30× slower (docs/benchmarks.md). In one part or two, the update's
    convolutions must compile to exactly those of ``jit(grad(batch_loss))`` on one part, once per part."""
    config = agent_preset("tiny")
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, model_chunk=B * T // parts))
    shapes = {"image": (64, 64, 3)}
    agent = make_agent(config, shapes, A, "discrete", key=jax.random.key(0))
    images = sequences(B, T, "image", shapes["image"])
    key = jax.random.key(1)
    update = make_update(config).lower(init_train_state(config, agent), images, key).compile()
    part = jax.tree.map(lambda x: x[: B // parts], images)
    carries = initial_carries(agent.world_model, B // parts)
    grad = eqx.filter_jit(eqx.filter_value_and_grad(batch_loss, has_aux=True))
    plain = grad.lower(agent.world_model, part, carries, jax.random.split(key, B // parts)).compile()
    want = _convolutions(plain.compiled.as_text())
    assert sum(want.values()) >= 16  # 4 encoder and 4 decoder layers, forward and backward
    assert _convolutions(update.compiled.as_text()) == collections.Counter(
        {form: count * parts for form, count in want.items()}
    )
