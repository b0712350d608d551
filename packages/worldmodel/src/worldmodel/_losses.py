"""Pure functions: symlog, two-hot bins, categorical latents with unimix, KL with free bits, likelihoods."""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._types import Logits, Stoch


def symlog(x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
    """symlog(x) = sign(x)·log(1 + |x|): squashes large magnitudes, identity near 0 (DreamerV3)."""
    return jnp.sign(x) * jnp.log1p(jnp.abs(x))


def symexp(x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
    """Inverse of symlog: sign(x)·(exp(|x|) − 1)."""
    return jnp.sign(x) * jnp.expm1(jnp.abs(x))


def twohot_bins(num: int = 255, low: float = -20.0, high: float = 20.0) -> Float[Array, " K"]:
    """Equally spaced bin centres in symlog space (DreamerV3: 255 bins in [−20, 20])."""
    return jnp.linspace(low, high, num)


def twohot_encode(y: Float[Array, "*shape"], bins: Float[Array, " K"]) -> Float[Array, "*shape K"]:
    """Two-hot weights over ``bins``: the two neighbouring bins share the mass so that Σ w·bins = y.

    ``y`` is already in bin space (symlog space for rewards) and is clipped to the bin range.
    """
    y = jnp.clip(y, bins[0], bins[-1])
    upper = jnp.clip(jnp.searchsorted(bins, y, side="right"), 1, len(bins) - 1)
    lower = upper - 1
    width = bins[upper] - bins[lower]
    w_upper = (y - bins[lower]) / width
    k = jnp.arange(len(bins))
    return (k == lower[..., None]) * (1 - w_upper)[..., None] + (k == upper[..., None]) * w_upper[..., None]


def twohot_decode(probs: Float[Array, "*shape K"], bins: Float[Array, " K"]) -> Float[Array, "*shape"]:
    """Expected bin value Σ p·bins (in bin space; apply ``symexp`` for rewards)."""
    return probs @ bins


def twohot_symlog_loss(
    logits: Float[Array, "*shape K"], target: Float[Array, "*shape"], bins: Float[Array, " K"]
) -> Float[Array, "*shape"]:
    """Cross-entropy between softmax(logits) and twohot(symlog(target)): the reward/critic loss."""
    weights = jax.lax.stop_gradient(twohot_encode(symlog(target), bins))
    return -jnp.sum(weights * jax.nn.log_softmax(logits, axis=-1), axis=-1)


def twohot_symlog_mean(logits: Float[Array, "*shape K"], bins: Float[Array, " K"]) -> Float[Array, "*shape"]:
    """Predicted value of a two-hot symlog head: symexp(Σ softmax(logits)·bins)."""
    return symexp(twohot_decode(jax.nn.softmax(logits, axis=-1), bins))


def unimix_logits(logits: Logits, unimix: float) -> Logits:
    """Log of (1 − u)·softmax(logits) + u/K: every class keeps probability ≥ u/K, so KLs stay finite."""
    probs = jax.nn.softmax(logits, axis=-1)
    probs = (1.0 - unimix) * probs + unimix / logits.shape[-1]
    return jnp.log(probs)


def sample_straight_through(logits: Logits, *, key: PRNGKeyArray) -> Stoch:
    """One-hot sample of each categorical; gradients flow as if it were the probabilities.

    Sampled by inverse CDF: the first class whose cumulative probability exceeds one uniform number per
    categorical, where Gumbel-max (``jax.random.categorical``) needs one random number per class: 5× faster
    for [1024, 32, 32] logits on CPU, where imagination samples the prior at every step (docs/benchmarks.md).
    """
    probs = jax.nn.softmax(logits, axis=-1)
    cdf = jnp.cumsum(probs, axis=-1)
    cdf = cdf / cdf[..., -1:]  # ends at exactly 1 > u: the index stays below K
    u = jax.random.uniform(key, (*logits.shape[:-1], 1), probs.dtype)
    index = jnp.sum(cdf <= u, axis=-1)
    one_hot = jax.nn.one_hot(index, logits.shape[-1], dtype=probs.dtype)
    return one_hot + (probs - jax.lax.stop_gradient(probs))  # exactly one-hot values, gradient of probs


def categorical_kl(q_logits: Logits, p_logits: Logits) -> Float[Array, "*batch"]:
    """KL[q ‖ p] of S independent categoricals, summed over the S latents (nats)."""
    q_log = jax.nn.log_softmax(q_logits, axis=-1)
    p_log = jax.nn.log_softmax(p_logits, axis=-1)
    return jnp.sum(jnp.exp(q_log) * (q_log - p_log), axis=(-2, -1))


def categorical_entropy(logits: Logits) -> Float[Array, "*batch"]:
    """Entropy of S independent categoricals, summed over the latents (nats)."""
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.sum(jnp.exp(log_p) * log_p, axis=(-2, -1))


def dyn_rep_losses(
    post_logits: Logits, prior_logits: Logits, free_nats: float
) -> tuple[Float[Array, "*batch"], Float[Array, "*batch"]]:
    """(dyn, rep) = (max(free, KL[sg(q) ‖ p]), max(free, KL[q ‖ sg(p)])) per step.

    The dynamics loss trains the prior towards the posterior; the representation loss (with a smaller
    weight) keeps the posterior predictable. Below ``free_nats`` a term has no gradient (free bits).
    """
    sg = jax.lax.stop_gradient
    dyn = categorical_kl(sg(post_logits), prior_logits)
    rep = categorical_kl(post_logits, sg(prior_logits))
    return jnp.maximum(free_nats, dyn), jnp.maximum(free_nats, rep)


def bernoulli_nll(logit: Float[Array, "*shape"], target: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
    """−log Bernoulli(target | sigmoid(logit)), stable for any logit."""
    return -(target * jax.nn.log_sigmoid(logit) + (1.0 - target) * jax.nn.log_sigmoid(-logit))
