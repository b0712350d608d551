"""symlog, two-hot, unimix, straight-through sampling, KL with free bits: against hand/NumPy numbers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from worldmodel import (
    bernoulli_nll,
    categorical_kl,
    dyn_rep_losses,
    sample_straight_through,
    symexp,
    symlog,
    twohot_bins,
    twohot_decode,
    twohot_encode,
    twohot_symlog_loss,
    twohot_symlog_mean,
    unimix_logits,
)

pytestmark = pytest.mark.usefixtures("x64")


def test_symlog_values_and_round_trip():
    x = jnp.array([-1e6, -3.0, -1e-3, 0.0, 1e-3, 0.5, 7.0, 1e8])
    np.testing.assert_allclose(symlog(x), np.sign(x) * np.log1p(np.abs(x)), rtol=1e-14)
    np.testing.assert_allclose(symexp(symlog(x)), x, rtol=1e-12)
    np.testing.assert_allclose(symlog(symexp(x[1:-1])), x[1:-1], rtol=1e-12)


def test_twohot_round_trip_and_weights():
    bins = twohot_bins(255, -20.0, 20.0)
    np.testing.assert_allclose(np.diff(bins), 40 / 254)
    y = jnp.asarray(np.random.default_rng(0).uniform(-20, 20, 500)).at[:3].set(jnp.array([-20.0, 20.0, 0.0]))
    w = twohot_encode(y, bins)
    assert w.shape == (500, 255)
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-12)
    assert (w >= 0).all() and ((w > 0).sum(-1) <= 2).all()
    nonzero = [np.flatnonzero(row) for row in np.asarray(w)]
    assert all(len(ix) == 1 or ix[1] == ix[0] + 1 for ix in nonzero)
    np.testing.assert_allclose(twohot_decode(w, bins), y, atol=1e-12)
    # outside the range: clipped to the end bins
    np.testing.assert_allclose(twohot_decode(twohot_encode(jnp.array([-50.0, 31.0]), bins), bins), [-20, 20])


def test_twohot_by_hand():
    bins = jnp.array([-1.0, 0.0, 1.0, 2.0])
    np.testing.assert_allclose(twohot_encode(jnp.array(0.25), bins), [0, 0.75, 0.25, 0])
    np.testing.assert_allclose(twohot_encode(jnp.array(2.0), bins), [0, 0, 0, 1])


def test_twohot_symlog_expectation_equals_encoded_value():
    bins = twohot_bins()
    rewards = jnp.array([-300.0, -1.0, 0.0, 0.3, 12.5, 1e4])
    logits = jnp.log(twohot_encode(symlog(rewards), bins) + 1e-300)
    np.testing.assert_allclose(twohot_symlog_mean(logits, bins), rewards, rtol=1e-9, atol=1e-12)
    # the loss is the cross-entropy −Σ w log softmax(logits), minimal at the two-hot target
    loss = twohot_symlog_loss(logits, rewards, bins)
    w = twohot_encode(symlog(rewards), bins)
    entropy = -jnp.sum(jnp.where(w > 0, w * jnp.log(jnp.where(w > 0, w, 1.0)), 0.0), -1)
    np.testing.assert_allclose(loss, entropy, atol=1e-9)


def test_unimix_probabilities():
    logits = jnp.array([[1e4, -1e4, 0.0, 3.0], [0.0, 0.0, 0.0, 0.0], [-50.0, 50.0, 20.0, -3.0]])
    probs = jnp.exp(unimix_logits(logits, 0.01))
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-12)
    assert (probs >= 0.01 / 4 - 1e-15).all()
    expected = 0.99 * jax.nn.softmax(logits, -1) + 0.01 / 4
    np.testing.assert_allclose(probs, expected, rtol=1e-12)


def test_kl_with_free_bits_by_hand():
    q = np.array([[0.5, 0.5], [0.9, 0.1]])
    p = np.array([[0.25, 0.75], [0.5, 0.5]])
    # by hand: 0.5 ln 2 + 0.5 ln(2/3) + 0.9 ln 1.8 + 0.1 ln 0.2
    kl_hand = 0.5 * np.log(2) + 0.5 * np.log(2 / 3) + 0.9 * np.log(1.8) + 0.1 * np.log(0.2)
    assert abs(kl_hand - 0.5119) < 1e-4
    q_logits, p_logits = jnp.log(q), jnp.log(p)
    np.testing.assert_allclose(categorical_kl(q_logits, p_logits), kl_hand, rtol=1e-12)
    dyn, rep = dyn_rep_losses(q_logits, p_logits, free_nats=1.0)
    np.testing.assert_allclose([dyn, rep], [1.0, 1.0])
    dyn, rep = dyn_rep_losses(q_logits, p_logits, free_nats=0.5)
    np.testing.assert_allclose([dyn, rep], [kl_hand, kl_hand], rtol=1e-12)


def test_free_bits_gradients():
    q_logits = jnp.log(jnp.array([[0.5, 0.5], [0.9, 0.1]]))
    p_logits = jnp.log(jnp.array([[0.25, 0.75], [0.5, 0.5]]))
    grad = lambda i, free: jax.grad(lambda q, p: dyn_rep_losses(q, p, free)[i], argnums=(0, 1))(
        q_logits, p_logits
    )
    # below the free bits: no gradient at all
    for i in (0, 1):
        assert all(float(jnp.abs(g).max()) == 0.0 for g in grad(i, 1.0))
    # above: dyn trains only the prior, rep only the posterior
    dq, dp = grad(0, 0.1)
    assert float(jnp.abs(dq).max()) == 0.0 and float(jnp.abs(dp).max()) > 0.01
    dq, dp = grad(1, 0.1)
    assert float(jnp.abs(dq).max()) > 0.01 and float(jnp.abs(dp).max()) == 0.0


def test_straight_through_sample():
    logits = jnp.log(jnp.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]))
    z = sample_straight_through(logits, key=jax.random.key(0))
    np.testing.assert_array_equal(z.sum(-1), 1.0)
    assert set(np.unique(np.asarray(z))) <= {0.0, 1.0}
    weights = jnp.arange(6.0).reshape(2, 3)
    g = jax.grad(lambda x: jnp.sum(weights * sample_straight_through(x, key=jax.random.key(0))))(logits)
    g_probs = jax.grad(lambda x: jnp.sum(weights * jax.nn.softmax(x, -1)))(logits)
    np.testing.assert_allclose(g, g_probs, rtol=1e-12)
    counts = jax.vmap(lambda k: sample_straight_through(logits, key=k))(
        jax.random.split(jax.random.key(1), 4000)
    )
    np.testing.assert_allclose(counts.mean(0), jnp.exp(logits), atol=0.03)


def test_straight_through_sample_frequencies_match_probabilities():
    """Many categoricals of 32 classes, some classes impossible (logit −inf, also first and last): sample
    frequencies within 4.5 standard errors of the probabilities, impossible classes never drawn."""
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=2.0, size=(4, 32))
    logits[0, [0, 5, 31]] = -np.inf
    logits[1, 1:] = -np.inf  # one certain class
    logits[2, :] = 0.0  # uniform
    logits = jnp.asarray(logits, jnp.float32)
    n = 20_000
    keys = jax.random.split(jax.random.key(2), n)
    samples = jax.vmap(lambda k: sample_straight_through(logits, key=k))(keys)
    freq = np.asarray(samples, np.float64).mean(0)
    probs = np.asarray(jax.nn.softmax(logits.astype(jnp.float64), -1))
    np.testing.assert_array_equal(np.asarray(samples).sum(-1), 1.0)
    assert np.all(freq[probs == 0] == 0)
    stderr = np.sqrt(probs * (1 - probs) / n)
    z_scores = np.abs(freq - probs) / (stderr + 1e-12)
    assert np.all(z_scores <= 4.5), z_scores.max()


def test_bernoulli_nll():
    logit = jnp.array([-30.0, -1.0, 0.0, 2.0, 40.0])
    target = jnp.array([0.0, 1.0, 1.0, 0.0, 1.0])
    # −log σ(l) = log(1 + e^{−l}) for target 1, −log(1 − σ(l)) = log(1 + e^{l}) for target 0
    lg, tg = np.asarray(logit), np.asarray(target)
    expected = tg * np.logaddexp(0, -lg) + (1 - tg) * np.logaddexp(0, lg)
    np.testing.assert_allclose(bernoulli_nll(logit, target), expected, rtol=1e-9, atol=1e-12)
