"""S3M and RSSM: sequence mode == step loop, causality, resets, policy features."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from worldmodel import Carry, LatentState

KINDS = ["s3m", "rssm"]


def random_carry(model, seed):
    """A nonzero carry, as if the sequence continued an earlier chunk."""
    carry = model.initial_carry()
    leaves, tree = jax.tree.flatten(carry)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    noisy = [
        leaf
        + jax.random.normal(k, leaf.shape, jnp.float32).astype(leaf.dtype)
        * (1 + 1j if jnp.iscomplexobj(leaf) else 1)
        for leaf, k in zip(leaves, keys, strict=True)
    ]
    return jax.tree.unflatten(tree, noisy)


_observe_step = eqx.filter_jit(lambda m, c, o, f, k: m.observe_step(c, o, f, key=k))
_observe = eqx.filter_jit(lambda m, b, c, k: m.observe(b.obs, b.action, b.is_first, c, key=k))


def step_loop(model, batch, carry, keys):
    """observe_step one step at a time, with the per-step keys ``observe`` uses."""
    states = []
    for t in range(batch.action.shape[0]):
        obs_t = jax.tree.map(lambda x, t=t: x[t], batch.obs)
        state = _observe_step(model, carry, obs_t, batch.is_first[t], keys[t])
        states.append(state)
        carry = Carry(state=state, action=batch.action[t])
    return jax.tree.map(lambda *xs: jnp.stack(xs), *states), carry


def assert_states_close(a, b, atol=1e-4):
    np.testing.assert_allclose(a.stoch, b.stoch, atol=1e-6)
    np.testing.assert_allclose(a.deter, b.deter, atol=atol, rtol=atol)
    assert len(a.hidden) == len(b.hidden)
    for xs, ys in zip(a.hidden, b.hidden, strict=True):
        np.testing.assert_allclose(xs, ys, atol=atol, rtol=atol)


def learned_initial_model(tiny_model, kind, initial="learned", **overrides):
    """A tiny model whose learned initial state is far from zero: random w (h = tanh w) and, for S3M,
    random SSM reset states s; with ``initial="zeros"`` only S3M's reset states are learned."""
    model = tiny_model(kind, initial=initial, ssm={"learn_reset_state": True}, **overrides)
    if initial == "learned":
        w = 2.0 * jax.random.normal(jax.random.key(20), model.initial_deter.shape)
        model = eqx.tree_at(lambda m: m.initial_deter, model, w)
    if kind == "s3m":
        for i, block in enumerate(model.sequence_model.stack.blocks):
            s = jax.random.normal(jax.random.key(10 + i), block.ssm.reset_state.shape)
            model = eqx.tree_at(lambda m, i=i: m.sequence_model.stack.blocks[i].ssm.reset_state, model, s)
    return model


@pytest.mark.parametrize("initial", ["learned", "zeros"])
@pytest.mark.parametrize("kind", KINDS)
def test_observe_equals_step_loop(kind, initial, tiny_model, random_batch):
    model = learned_initial_model(tiny_model, kind, initial)
    batch = random_batch(T=24, starts=(7, 8, 15))  # consecutive starts too; t = 0 continues the carry
    carry = random_carry(model, 1)
    key = jax.random.key(3)
    observed, new_carry = _observe(model, batch, carry, key)
    looped, loop_carry = step_loop(model, batch, carry, jax.random.split(key, 24))
    assert_states_close(observed.state, looped)
    assert len(looped.hidden) == (2 if kind == "s3m" else 0)
    prior = jax.vmap(model.prior)(looped.deter)
    np.testing.assert_allclose(observed.prior_logits, prior, atol=1e-4, rtol=1e-4)
    for a, b in zip(jax.tree.leaves(new_carry), jax.tree.leaves(loop_carry), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_observe_continues_across_chunks(kind, tiny_model, random_batch):
    """Two chunks chained by the carry == one step loop over the whole sequence."""
    model = tiny_model(kind)
    batch = random_batch(T=20, starts=(0, 13))
    first, second = jax.tree.map(lambda x: x[:9], batch), jax.tree.map(lambda x: x[9:], batch)
    key_a, key_b = jax.random.key(1), jax.random.key(2)
    out_a, carry = _observe(model, first, model.initial_carry(), key_a)
    out_b, _ = _observe(model, second, carry, key_b)
    keys = jnp.concatenate([jax.random.split(key_a, 9), jax.random.split(key_b, 11)])
    looped, _ = step_loop(model, batch, model.initial_carry(), keys)
    chained = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), out_a.state, out_b.state)
    assert_states_close(chained, looped)


def observe_fn(model, batch, carry):
    return _observe(model, batch, carry, jax.random.key(7))[0]


@pytest.mark.parametrize("kind", KINDS)
def test_causality_by_perturbation(kind, tiny_model, random_batch):
    model = tiny_model(kind)
    batch = random_batch(T=16, starts=(0,))
    carry = model.initial_carry()
    base = observe_fn(model, batch, carry)
    for t in (0, 5, 15):
        for field in ("obs", "action"):
            if field == "obs":
                changed = batch._replace(obs={"vector": batch.obs["vector"].at[t].add(3.0)})
            else:
                changed = batch._replace(action=batch.action.at[t].add(3.0))
            out = observe_fn(model, changed, carry)
            np.testing.assert_array_equal(out.state.deter[: t + 1], base.state.deter[: t + 1])
            np.testing.assert_array_equal(out.prior_logits[: t + 1], base.prior_logits[: t + 1])
            for xs, ys in zip(out.state.hidden, base.state.hidden, strict=True):
                np.testing.assert_array_equal(xs[: t + 1], ys[: t + 1])
            if field == "action" and t < 15:  # the test can fail: a_t does reach h_{t+1}
                assert not np.allclose(out.state.deter[t + 1], base.state.deter[t + 1])


@pytest.mark.parametrize("kind", KINDS)
def test_causality_by_gradient(kind, tiny_model, random_batch):
    """d h_s / d o_t (through the straight-through posterior) is zero exactly for s ≤ t, nonzero after."""
    model = tiny_model(kind)
    batch = random_batch(T=10, starts=(0,))
    carry = model.initial_carry()

    def deter_of(vector):
        return observe_fn(model, batch._replace(obs={"vector": vector}), carry).state.deter

    jac = jax.jacrev(deter_of)(batch.obs["vector"])  # [T, D, T, O]
    per_pair = np.abs(np.asarray(jac)).sum(axis=(1, 3))  # [s, t]
    assert np.all(per_pair[np.triu_indices(10)] == 0.0)  # s ≤ t
    assert np.all(per_pair[np.tril_indices(10, k=-1)] > 0.0)  # s > t


@pytest.mark.parametrize("kind", KINDS)
def test_learned_initial_state_by_hand(kind, tiny_model):
    """h = tanh(w), z = the prior's mode at h (one-hot), x = the SSM reset states; zeros when not learned."""
    model = learned_initial_model(tiny_model, kind)
    state = model.initial_state()
    np.testing.assert_allclose(state.deter, np.tanh(np.asarray(model.initial_deter)), rtol=1e-6)
    logits = np.asarray(model.prior(state.deter))
    np.testing.assert_array_equal(state.stoch, np.eye(logits.shape[-1])[logits.argmax(-1)])
    blocks = model.sequence_model.stack.blocks if kind == "s3m" else ()
    assert len(state.hidden) == len(blocks) == (2 if kind == "s3m" else 0)
    for x, block in zip(state.hidden, blocks, strict=True):
        s = np.asarray(block.ssm.reset_state)
        np.testing.assert_array_equal(x, s[:, 0] + 1j * s[:, 1])
    zeros = tiny_model(kind, initial="zeros").initial_state()
    assert all(float(jnp.abs(leaf).max()) == 0.0 for leaf in jax.tree.leaves(zeros))
    assert tiny_model(kind, initial="zeros").initial_deter is None


@pytest.mark.parametrize("kind", KINDS)
def test_a_reset_continues_from_the_initial_carry(kind, tiny_model, random_batch):
    """The state at an episode start is the step from (initial state, zero action) without a reset: the
    reset puts the learned initial h, z and s in place, not zeros (with random w and s, zeros differ)."""
    model = learned_initial_model(tiny_model, kind)
    batch = random_batch(T=12, starts=(0, 6))
    keys = jax.random.split(jax.random.key(4), 12)
    observed, _ = _observe(model, batch, random_carry(model, 8), jax.random.key(4))
    for r in (0, 6):
        obs_r = jax.tree.map(lambda x, r=r: x[r], batch.obs)
        fresh = _observe_step(model, model.initial_carry(), obs_r, False, keys[r])
        assert_states_close(jax.tree.map(lambda x, r=r: x[r], observed.state), fresh, atol=1e-5)
    zeros = eqx.tree_at(lambda m: m.initial_deter, model, jnp.zeros_like(model.initial_deter))
    moved, _ = _observe(zeros, batch, random_carry(model, 8), jax.random.key(4))
    if kind == "rssm":  # for S3M h_init only enters through z's mode, which may not move
        assert not np.allclose(moved.state.deter[6], observed.state.deter[6], atol=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_learned_initial_state_gets_gradients(kind, tiny_model, random_batch):
    """The loss reaches the learned initial state: w through h (RSSM), s through x (S3M)."""
    model = learned_initial_model(tiny_model, kind)
    batch = random_batch(T=10, starts=(0, 5))
    grads = eqx.filter_grad(lambda m: m.loss(batch, m.initial_carry(), key=jax.random.key(0))[0])(model)
    if kind == "rssm":
        assert float(jnp.abs(grads.initial_deter).max()) > 0
    else:
        for block in grads.sequence_model.stack.blocks:
            assert float(jnp.abs(block.ssm.reset_state).max()) > 0


@pytest.mark.parametrize("kind", KINDS)
def test_reset_cuts_the_past(kind, tiny_model, random_batch):
    model = learned_initial_model(tiny_model, kind)
    r = 9
    batch = random_batch(T=16, starts=(0, r))
    carry = random_carry(model, 2)
    base = observe_fn(model, batch, carry)
    rng = np.random.default_rng(1)
    past = batch._replace(
        obs={"vector": batch.obs["vector"].at[:r].set(rng.standard_normal((r, 5)))},
        action=batch.action.at[:r].set(rng.standard_normal((r, 3))),
    )
    out = observe_fn(model, past, random_carry(model, 3))
    np.testing.assert_allclose(out.state.deter[r:], base.state.deter[r:], atol=1e-5)
    np.testing.assert_allclose(out.prior_logits[r:], base.prior_logits[r:], atol=1e-5)
    np.testing.assert_array_equal(out.state.stoch[r:], base.state.stoch[r:])
    for xs, ys in zip(out.state.hidden, base.state.hidden, strict=True):
        np.testing.assert_allclose(xs[r:], ys[r:], atol=1e-5)
    assert not np.allclose(out.state.deter[r - 1], base.state.deter[r - 1])


def test_no_resets_ablation_carries_the_past(tiny_model, random_batch):
    """ssm.resets=False (the paper's ablation): the state crosses is_first, so the past reaches past it."""
    model = tiny_model("s3m", ssm={"resets": False})
    r = 9
    batch = random_batch(T=16, starts=(0, r))
    base = observe_fn(model, batch, model.initial_carry())
    rng = np.random.default_rng(1)
    past = batch._replace(obs={"vector": batch.obs["vector"].at[:r].set(rng.standard_normal((r, 5)))})
    out = observe_fn(model, past, model.initial_carry())
    for xs, ys in zip(out.state.hidden, base.state.hidden, strict=True):
        assert not np.allclose(xs[r], ys[r], atol=1e-4)
    assert not np.allclose(out.state.deter[r + 1 :], base.state.deter[r + 1 :], atol=1e-4)


def test_no_resets_ablation_step_equals_sequence(tiny_model, random_batch):
    model = tiny_model("s3m", ssm={"resets": False})
    batch = random_batch(T=12, starts=(0, 4, 9))
    carry = random_carry(model, 5)
    stepped, _ = step_loop(model, batch, carry, jax.random.split(jax.random.key(0), 12))
    observed, _ = _observe(model, batch, carry, jax.random.key(0))
    assert_states_close(observed.state, stepped)


def test_policy_features(tiny_model, random_batch):
    model = tiny_model("s3m")
    observed = observe_fn(model, random_batch(T=6), model.initial_carry())
    state = observed.state
    z = state.stoch.reshape(6, -1)
    x = jnp.concatenate(
        [state.hidden[0].real, state.hidden[0].imag, state.hidden[1].real, state.hidden[1].imag], -1
    )
    np.testing.assert_array_equal(
        model.policy_features(state, "output"), jnp.concatenate([z, state.deter], -1)
    )
    np.testing.assert_array_equal(model.policy_features(state, "hidden"), jnp.concatenate([z, x], -1))
    np.testing.assert_array_equal(
        model.policy_features(state, "full"), jnp.concatenate([z, state.deter, x], -1)
    )
    for kind in ("output", "hidden", "full"):
        assert model.policy_features(state, kind).shape == (6, model.policy_feature_size(kind))
        assert model.policy_features(state, kind).dtype == jnp.float32
    assert model.policy_features(state).shape[-1] == model.policy_feature_size("full")  # the config default
    # ValueError from the dispatch, or a TypeError first where runtime type checks are on
    with pytest.raises((ValueError, TypeError), match="everything"):
        model.policy_features(state, "everything")


def test_rssm_refuses_hidden_features(tiny_model, random_batch):
    model = tiny_model("rssm")
    state = observe_fn(model, random_batch(T=4), model.initial_carry()).state
    assert isinstance(state, LatentState) and state.hidden == ()
    assert model.policy_features(state, "output").shape == (4, model.feature_size)
    for kind in ("hidden", "full"):
        with pytest.raises(ValueError, match=f"kind '{kind}' needs SSM hidden states x; RSSM has none"):
            model.policy_features(state, kind)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("lead", [(), (3,), (2, 4)])
def test_carry_vector_round_trip_is_exact(kind, lead, tiny_model):
    """carry_to_vector / carry_from_vector: every entry once (complex x as Re and Im), any leading dims."""
    model = tiny_model(kind)
    carries = [random_carry(model, seed) for seed in range(int(np.prod(lead, dtype=int)))]
    carry = jax.tree.map(lambda *xs: jnp.stack(xs).reshape(*lead, *xs[0].shape), *carries)
    vector = model.carry_to_vector(carry)
    assert vector.shape == (*lead, model.carry_size) and vector.dtype == jnp.float32
    entries = sum(x.size * (2 if jnp.iscomplexobj(x) else 1) for x in jax.tree.leaves(model.initial_carry()))
    assert model.carry_size == entries
    back = model.carry_from_vector(vector)
    assert jax.tree.structure(back) == jax.tree.structure(carry)
    for a, b in zip(jax.tree.leaves(carry), jax.tree.leaves(back), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_carry_vector_of_the_wrong_size_is_refused(tiny_model):
    model = tiny_model("s3m")
    with pytest.raises(
        ValueError, match=f"carry vector has 3 entries; this model's carry has {model.carry_size}"
    ):
        model.carry_from_vector(jnp.zeros(3))
