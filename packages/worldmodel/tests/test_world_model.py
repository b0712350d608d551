"""WorldModel: loss parts, single trace of jit(loss+grad), imagination, image observations."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worldmodel import (
    Batch,
    WorldModel,
    batch_loss,
    bernoulli_nll,
    initial_carries,
    make_optimizer,
    preset,
    symlog,
    train_step,
    twohot_symlog_loss,
)
from worldmodel._nets import upsample_conv


def stack(batches):
    return jax.tree.map(lambda *xs: jnp.stack(xs), *batches)


def test_loss_is_the_weighted_sum_of_its_parts(tiny_model, random_batch):
    model = tiny_model("s3m")
    batch = random_batch(T=12, starts=(0, 6))
    batch = batch._replace(is_terminal=batch.is_terminal.at[11].set(True))
    key = jax.random.key(0)
    loss, metrics = eqx.filter_jit(lambda m, b, c, k: m.loss(b, c, key=k))(
        model, batch, model.initial_carry(), key
    )
    observed, _ = model.observe(batch.obs, batch.action, batch.is_first, model.initial_carry(), key=key)
    feats = model.features(observed.state)
    recon = jnp.sum((jax.vmap(model.decoder.vector)(feats) - symlog(batch.obs["vector"])) ** 2, -1)
    reward = twohot_symlog_loss(jax.vmap(model.reward)(feats), batch.reward, model.reward.bins)
    cont = bernoulli_nll(jax.vmap(model.cont)(feats), 1.0 - batch.is_terminal)
    np.testing.assert_allclose(metrics["recon_vector"], recon.mean(), rtol=1e-5)
    np.testing.assert_allclose(metrics["reward"], reward.mean(), rtol=1e-5)
    np.testing.assert_allclose(metrics["cont"], cont.mean(), rtol=1e-5)
    # zero-initialized reward head: uniform logits, so the loss is log(bins) whatever the reward
    np.testing.assert_allclose(metrics["reward"], np.log(model.config.reward_bins), rtol=1e-5)
    expected = metrics["pred"] + 0.5 * metrics["dyn"] + 0.1 * metrics["rep"]
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    assert metrics["dyn"] >= 1.0 and metrics["rep"] >= 1.0  # free bits


def test_pred_is_the_sum_of_its_parts_and_kl_above_the_floor_is_by_hand(tiny_model, random_batch):
    """``pred`` = recon + reward + cont, and with a prior pushed far from the posterior the KL sits above
    the free-bits floor, so dyn = rep = KL[q ‖ p], written out here in NumPy, per step."""
    model = tiny_model("s3m")
    out = model.prior.mlp.out
    model = eqx.tree_at(lambda m: m.prior.mlp.out.bias, model, 4.0 * jnp.sin(jnp.arange(out.bias.size)))
    batch = random_batch(T=10, starts=(0, 4))
    key = jax.random.key(5)
    _, metrics = model.loss(batch, model.initial_carry(), key=key)
    parts = metrics["recon_vector"] + metrics["reward"] + metrics["cont"]
    np.testing.assert_allclose(metrics["pred"], parts, rtol=1e-6)
    observed, _ = model.observe(batch.obs, batch.action, batch.is_first, model.initial_carry(), key=key)
    q = np.asarray(jax.nn.softmax(observed.post_logits, -1), np.float64)
    p = np.asarray(jax.nn.softmax(observed.prior_logits, -1), np.float64)
    kl = np.sum(q * (np.log(q) - np.log(p)), axis=(-2, -1))  # per step, summed over the latents
    free = model.config.loss.free_nats
    assert kl.min() > free
    np.testing.assert_allclose(metrics["dyn"], kl.mean(), rtol=1e-5)
    np.testing.assert_allclose(metrics["rep"], kl.mean(), rtol=1e-5)
    np.testing.assert_allclose(metrics["kl"], kl.mean(), rtol=1e-5)


@pytest.mark.parametrize("kind", ["s3m", "rssm"])
def test_jit_loss_and_grad_traces_once(kind, tiny_model, random_batch):
    model = tiny_model(kind)

    @eqx.filter_jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def loss_and_grad(model, batch, carry, key):
        return eqx.filter_value_and_grad(batch_loss, has_aux=True)(model, batch, carry, key)

    carry = initial_carries(model, 2)
    for seed in range(3):
        batch = stack([random_batch(T=8, seed=2 * seed), random_batch(T=8, seed=2 * seed + 1, starts=(0, 5))])
        (loss, (_, observed, carry)), grads = loss_and_grad(model, batch, carry, jax.random.key(seed))
        assert np.isfinite(loss) and observed.state.deter.shape == (2, 8, model.config.deter)
    grad_norm = optax.tree.norm(eqx.filter(grads, eqx.is_inexact_array))
    assert np.isfinite(grad_norm) and grad_norm > 0


def test_batch_loss_with_one_key_per_sequence_splits_like_one_key(tiny_model, random_batch):
    """A batch split into parts, each with its sequences' keys, gives the numbers of the whole batch."""
    model = tiny_model("s3m")
    batch = stack([random_batch(T=8, seed=0), random_batch(T=8, seed=1, starts=(0, 5))])
    key = jax.random.key(3)
    whole, (_, observed, _) = batch_loss(model, batch, initial_carries(model, 2), key)
    keys = jax.random.split(key, 2)
    halves = [
        batch_loss(
            model,
            jax.tree.map(lambda x, i=i: x[i : i + 1], batch),
            initial_carries(model, 1),
            keys[i : i + 1],
        )
        for i in range(2)
    ]
    np.testing.assert_allclose((halves[0][0] + halves[1][0]) / 2, whole, rtol=1e-6)
    for i, (_, (_, part, _)) in enumerate(halves):
        np.testing.assert_allclose(part.state.deter[0], observed.state.deter[i], rtol=1e-6)
    first = jax.tree.map(lambda x: x[:1], batch)
    _, (_, other_key, _) = batch_loss(model, first, initial_carries(model, 1), keys[1:])
    assert not np.array_equal(other_key.state.stoch[0], observed.state.stoch[0])  # the key is used


def uniform_policy(features, key):
    return jax.nn.one_hot(jax.random.randint(key, (), 0, 3), 3)


@pytest.mark.parametrize("kind", ["s3m", "rssm"])
def test_imagination_shapes_and_heads(kind, tiny_model, random_batch):
    model = tiny_model(kind)
    B, T, H = 2, 6, 4
    batch = stack([random_batch(T=T, seed=0), random_batch(T=T, seed=1)])
    _, (_, observed, _) = eqx.filter_jit(batch_loss)(
        model, batch, initial_carries(model, B), jax.random.key(0)
    )
    imagine = eqx.filter_jit(lambda m, s, k: m.imagine(uniform_policy, s, horizon=H, key=k))
    imagined = imagine(model, observed.state, jax.random.key(1))
    N, L, cfg = B * T, H + 1, model.config
    assert imagined.state.deter.shape == (N, L, cfg.deter)
    assert imagined.state.stoch.shape == (N, L, cfg.stoch, cfg.classes)
    assert imagined.features.shape == (N, L, model.feature_size)
    assert imagined.policy_features.shape == (N, L, model.policy_feature_size())
    assert imagined.actions.shape == (N, L, 3)
    assert imagined.rewards.shape == imagined.continues.shape == (N, L)
    # index 0 is the start: every posterior state of the batch, flattened
    np.testing.assert_array_equal(imagined.state.deter[:, 0], observed.state.deter.reshape(N, -1))
    for x_im, x_obs in zip(imagined.state.hidden, observed.state.hidden, strict=True):
        np.testing.assert_array_equal(x_im[:, 0], x_obs.reshape(N, -1))
    # rewards and continues are the heads' predictions of the imagined features
    np.testing.assert_allclose(
        imagined.rewards, jax.vmap(jax.vmap(model.reward.mean))(imagined.features), atol=1e-6
    )
    # continues are the head's mode (R2I, DreamerV3): 1 where P(continue) > 0.5
    probs = jax.nn.sigmoid(jax.vmap(jax.vmap(model.cont))(imagined.features))
    np.testing.assert_array_equal(imagined.continues, (probs > 0.5).astype(np.float32))
    assert 0 < float(imagined.continues.mean()) < 1  # both outcomes occur, so the mode is checked
    np.testing.assert_allclose(imagined.rewards, 0.0, atol=1e-5)  # zero-initialized reward head
    # ... so changing the head changes them: bias the reward head towards the top bin
    out = model.reward.mlp.out
    biased = eqx.tree_at(lambda m: m.reward.mlp.out.bias, model, out.bias.at[-1].set(50.0))
    again = imagine(biased, observed.state, jax.random.key(1))
    np.testing.assert_allclose(again.rewards, np.expm1(cfg.reward_range), rtol=1e-3)
    # imagined steps follow the prior: h_{t+1} = step(s_t, a_t), z from p(z | h)
    state_t = jax.tree.map(lambda x: x[0, 2], imagined.state)
    deter, _ = model.sequence_model.step(state_t, imagined.actions[0, 2], False, model.initial_state())
    np.testing.assert_allclose(imagined.state.deter[0, 3], deter, atol=1e-5)
    # the policy saw the policy features, and its actions are one-hot
    np.testing.assert_array_equal(imagined.actions.sum(-1), 1.0)


def test_image_observations_shapes_and_loss():
    config = preset("tiny")
    model = WorldModel(config, {"image": (64, 64, 3), "vector": (2,)}, 2, key=jax.random.key(0))
    embed_size = 8 * config.cnn_depth * 4 * 4  # 4×4×(8·depth) after four stride-2 convs
    assert model.encoder.out_size == config.enc_units + embed_size
    image = jax.random.randint(jax.random.key(1), (64, 64, 3), 0, 256).astype(jnp.uint8)
    T = 2
    batch = Batch(
        obs={"image": jnp.broadcast_to(image, (T, 64, 64, 3)), "vector": jnp.ones((T, 2))},
        action=jnp.zeros((T, 2)),
        reward=jnp.zeros(T),
        is_first=jnp.arange(T) == 0,
        is_terminal=jnp.zeros(T, bool),
    )

    @eqx.filter_jit
    def run(model, batch):
        feats = jnp.zeros(model.feature_size)
        mean = model.decoder.image(feats)
        loss = model.loss(batch, model.initial_carry(), key=jax.random.key(2))
        return model.encoder.image(image), mean, model.decoder.image.loss(feats, image), loss

    embed, mean, image_loss, (loss, metrics) = run(model, batch)
    assert embed.shape == (embed_size,) and mean.shape == (64, 64, 3)
    np.testing.assert_allclose(image_loss, jnp.sum((mean - (image / 255.0 - 0.5)) ** 2), rtol=1e-5)
    assert set(metrics) >= {"recon_image", "recon_vector"} and np.isfinite(loss)


@given(
    channels=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    size=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    use_bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=15, deadline=None)
def test_upsample_conv_is_the_transposed_convolution(channels, size, use_bias, seed):
    """The decoder's phase-wise convolution gives equinox's ConvTranspose2d (kernel 4, stride 2,
    padding 1): values and gradients for input and weight, in float64."""
    with jax.enable_x64(True):
        keys = jax.random.split(jax.random.key(seed), 3)
        conv = eqx.nn.ConvTranspose2d(
            *channels, 4, stride=2, padding=1, use_bias=use_bias, key=keys[0], dtype=jnp.float64
        )
        x = jax.random.normal(keys[1], (channels[0], *size), jnp.float64)
        cotangent = jax.random.normal(keys[2], (channels[1], 2 * size[0], 2 * size[1]), jnp.float64)
        want, want_vjp = eqx.filter_vjp(lambda c, x: c(x), conv, x)
        got, got_vjp = eqx.filter_vjp(upsample_conv, conv, x)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        got_grads, want_grads = jax.tree.leaves(got_vjp(cotangent)), jax.tree.leaves(want_vjp(cotangent))
        assert len(got_grads) == (3 if use_bias else 2)  # weight, bias if any, input
        for a, b in zip(got_grads, want_grads, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_upsample_conv_refuses_other_transposed_convolutions():
    conv = eqx.nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1, key=jax.random.key(0))
    with pytest.raises(ValueError, match="kernel 4, stride 2, padding 1"):
        upsample_conv(conv, jnp.zeros((2, 4, 4)))


def test_bad_observation_shapes_are_refused():
    config = preset("tiny")
    with pytest.raises(ValueError, match="keys 'vector' and/or 'image'"):
        WorldModel(config, {"pixels": (64, 64, 3)}, 2, key=jax.random.key(0))
    with pytest.raises(ValueError, match="64×64×C"):
        WorldModel(config, {"image": (32, 32, 3)}, 2, key=jax.random.key(0))


def test_train_step_updates_parameters(tiny_model, random_batch):
    model = tiny_model("s3m")
    optimizer = make_optimizer(model.config.optim)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    batch = stack([random_batch(T=8, seed=0)])
    new, opt_state, _, _ = eqx.filter_jit(train_step)(
        model, opt_state, optimizer, batch, initial_carries(model, 1), jax.random.key(0)
    )
    old_leaves = jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))
    new_leaves = jax.tree.leaves(eqx.filter(new, eqx.is_inexact_array))
    assert any(not np.array_equal(a, b) for a, b in zip(old_leaves, new_leaves, strict=True))
    # the SSM's eigenvalues are trained too (no parameter is frozen by accident)
    ssm_old, ssm_new = model.sequence_model.stack.blocks[0].ssm, new.sequence_model.stack.blocks[0].ssm
    assert not np.array_equal(ssm_old.log_step, ssm_new.log_step)


def test_float64_model_and_conj_sym_sizes(tiny_model, random_batch):
    """dtype="float64" reaches every parameter and state; conj_sym halves x in the policy features."""
    with jax.enable_x64(True):
        model = tiny_model("s3m", dtype="float64", ssm={"conj_sym": True})
        params = jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))
        assert {x.dtype for x in params} == {jnp.dtype("float64")}
        batch = jax.tree.map(
            lambda x: x.astype(jnp.float64) if x.dtype == jnp.float32 else x, random_batch(T=5)
        )
        observed, _ = model.observe(
            batch.obs, batch.action, batch.is_first, model.initial_carry(), key=jax.random.key(0)
        )
        assert observed.state.deter.dtype == jnp.float64
        assert [x.shape for x in observed.state.hidden] == [(5, 4), (5, 4)]  # P/2 of P = 8
        assert all(x.dtype == jnp.complex128 for x in observed.state.hidden)
        features = model.policy_features(observed.state, "hidden")
        assert features.dtype == jnp.float64
        assert features.shape == (5, model.policy_feature_size("hidden")) == (5, 16 + 2 * 2 * 4)
