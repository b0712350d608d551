"""Actor and critic of R2I / DreamerV3, trained on imagined rollouts of the world model."""

from typing import Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from worldmodel import MLP, Imagined, twohot_bins, twohot_symlog_loss, twohot_symlog_mean, unimix_logits

from ._returns import ReturnScale, lambda_returns, update_return_scale

ActionKind = Literal["discrete", "continuous"]


class Actor(eqx.Module):
    """π(a | features): categorical with 1% unimix (one-hot actions) or a normal with bounded parameters.

    The normal (DreamerV3) has mean tanh(μ) ∈ [−1, 1] and std (max − min)·σ(ρ + 2) + min.
    """

    mlp: MLP
    kind: ActionKind = eqx.field(static=True)
    action_size: int = eqx.field(static=True)
    unimix: float = eqx.field(static=True)
    min_std: float = eqx.field(static=True)
    max_std: float = eqx.field(static=True)

    def __init__(
        self,
        in_size: int,
        action_size: int,
        kind: ActionKind,
        *,
        units: int,
        layers: int,
        key: PRNGKeyArray,
        unimix: float = 0.01,
        min_std: float = 0.1,
        max_std: float = 1.0,
    ):
        if kind not in ("discrete", "continuous"):
            raise ValueError(f"unknown action kind {kind!r}; expected 'discrete' or 'continuous'")
        out = action_size if kind == "discrete" else 2 * action_size
        self.mlp = MLP(in_size, out, units, layers, key=key)
        self.kind, self.action_size = kind, action_size
        self.unimix, self.min_std, self.max_std = unimix, min_std, max_std

    def _normal(self, features):
        raw_mean, raw_std = jnp.split(self.mlp(features), 2)
        std = (self.max_std - self.min_std) * jax.nn.sigmoid(raw_std + 2.0) + self.min_std
        return jnp.tanh(raw_mean), std

    def _logits(self, features):
        # One categorical over the actions: the [S, K] latent helper with S = 1.
        return unimix_logits(self.mlp(features)[None], self.unimix)[0]

    def sample(self, features: Float[Array, " G"], key: PRNGKeyArray) -> Float[Array, " A"]:
        """One action: one-hot [A] (discrete) or a reparameterized normal sample (continuous).

        Continuous samples are NOT clipped: a clip here would zero the pathwise gradient of every sample
        outside [−1, 1]. As in DreamerV3 (``action_clip``), the world model clips the actions it reads
        with a straight-through gradient and the env is given the clipped action.
        """
        if self.kind == "discrete":
            index = jax.random.categorical(key, self._logits(features))
            return jax.nn.one_hot(index, self.action_size)
        mean, std = self._normal(features)
        return mean + std * jax.random.normal(key, mean.shape)

    def mode(self, features: Float[Array, " G"]) -> Float[Array, " A"]:
        """The most likely action, for evaluation."""
        if self.kind == "discrete":
            return jax.nn.one_hot(jnp.argmax(self._logits(features)), self.action_size)
        return self._normal(features)[0]

    def log_prob(self, features: Float[Array, " G"], action: Float[Array, " A"]) -> Float[Array, ""]:
        return self._log_prob_of(self._distribution(features), action)

    def entropy(self, features: Float[Array, " G"]) -> Float[Array, ""]:
        return self._entropy_of(self._distribution(features))

    def log_prob_and_entropy(
        self, features: Float[Array, " G"], action: Float[Array, " A"]
    ) -> tuple[Float[Array, ""], Float[Array, ""]]:
        """(log π(action | features), entropy of π(· | features)) from one evaluation of the network, so
        the actor loss needs one backward pass through it, not two."""
        distribution = self._distribution(features)
        return self._log_prob_of(distribution, action), self._entropy_of(distribution)

    def _distribution(self, features):
        """The policy's parameters: log-probabilities (discrete) or (mean, std) (continuous)."""
        return self._logits(features) if self.kind == "discrete" else self._normal(features)

    def _log_prob_of(self, distribution, action):
        if self.kind == "discrete":
            return jnp.sum(action * distribution)
        mean, std = distribution
        return jnp.sum(jax.scipy.stats.norm.logpdf(action, mean, std))

    def _entropy_of(self, distribution):
        if self.kind == "discrete":
            return -jnp.sum(jnp.exp(distribution) * distribution)
        _, std = distribution
        return jnp.sum(0.5 * jnp.log(2 * jnp.pi * jnp.e * std**2))


class Critic(eqx.Module):
    """v(features) as a two-hot distribution over 255 symlog bins; output layer zero-initialized."""

    mlp: MLP
    num_bins: int = eqx.field(static=True)

    def __init__(self, in_size: int, *, units: int, layers: int, key: PRNGKeyArray, num_bins: int = 255):
        self.mlp = MLP(in_size, num_bins, units, layers, key=key, zero_out=True)
        self.num_bins = num_bins

    def logits(self, features: Float[Array, " F"]) -> Float[Array, " K"]:
        return self.mlp(features)

    def value(self, features: Float[Array, " F"]) -> Float[Array, ""]:
        return twohot_symlog_mean(self.logits(features), twohot_bins(self.num_bins))

    def loss(
        self,
        features: Float[Array, " F"],
        target: Float[Array, ""],
        *,
        regularizer_target: Float[Array, ""] | None = None,
        regularizer_scale: float = 1.0,
    ) -> Float[Array, ""]:
        """Two-hot symlog cross-entropy towards ``target`` (gradients stop at the target), plus
        ``regularizer_scale`` times the same loss towards ``regularizer_target`` when given (the slow
        critic's value), from one evaluation of the network: one backward pass instead of two."""
        bins = twohot_bins(self.num_bins)
        logits = self.logits(features)
        loss = twohot_symlog_loss(logits, jax.lax.stop_gradient(target), bins)
        if regularizer_target is not None:
            loss += regularizer_scale * twohot_symlog_loss(
                logits, jax.lax.stop_gradient(regularizer_target), bins
            )
        return loss


class ActorCriticSettings(NamedTuple):
    """Loss settings (DreamerV3/R2I defaults): discount 1 − 1/333, λ 0.95, entropy 3e-4."""

    discount: float = 1.0 - 1.0 / 333.0
    lambda_: float = 0.95
    entropy: float = 3e-4
    slow_regularizer: float = 1.0
    return_decay: float = 0.99


def trajectory_weights(
    continues: Float[Array, "N L"], discount: float, start_continues: Float[Array, " N"] | None = None
) -> Float[Array, "N L"]:
    """w_0 = s, w_t = s·Π_{k=1..t} γ c_k: the chance (discounted) that the imagined episode is still going.

    s is the start's real 1 − is_terminal (1 when not given): a rollout from a terminal state imagines
    past the episode's end and gets weight 0, as in DreamerV3. ``continues[:, 0]`` is not used.
    """
    start = jnp.ones_like(continues[:, 0]) if start_continues is None else start_continues
    alive = jnp.cumprod(discount * continues[:, 1:], axis=1)
    weights = start[:, None] * jnp.concatenate([jnp.ones_like(continues[:, :1]), alive], axis=1)
    return jax.lax.stop_gradient(weights)


class ActorCriticLosses(NamedTuple):
    """Both losses, the return scale they normalized by and scalar metrics."""

    actor: Float[Array, ""]
    critic: Float[Array, ""]
    scale: ReturnScale
    metrics: dict[str, Float[Array, ""]]


def _frozen(module: eqx.Module) -> eqx.Module:
    """``module`` with stop-gradients on its parameters: gradients still reach its inputs."""
    return jax.tree.map(lambda x: jax.lax.stop_gradient(x) if eqx.is_array(x) else x, module)


def imagined_returns(
    critic: Critic, imagined: Imagined, settings: ActorCriticSettings
) -> tuple[Float[Array, "N L"], Float[Array, "N Lm1"]]:
    """(values [N, L], λ-returns [N, L − 1]) of rollouts, bootstrapped from the CURRENT critic's values as
    R2I's and DreamerV3's ``VFunction.score`` do; the critic's parameters get no gradient from them."""
    values = jax.vmap(jax.vmap(_frozen(critic).value))(imagined.policy_features)
    returns = jax.vmap(lambda r, c, v: lambda_returns(r, c, v, settings.discount, settings.lambda_))(
        imagined.rewards, imagined.continues, values
    )
    return values, returns


def actor_critic_losses(
    actor: Actor,
    critic: Critic,
    slow_critic: Critic,
    imagined: Imagined,
    scale: ReturnScale,
    settings: ActorCriticSettings | None = None,
    start_continues: Float[Array, " N"] | None = None,
    *,
    update_scale: bool = True,
) -> ActorCriticLosses:
    """Actor and critic losses on rollouts [N, L] from ``WorldModel.imagine``.

    For continuous actors, call ``imagine`` with ``actor.sample`` inside the differentiated function so
    the return's gradient reaches the actor through the world model.

    Actor and critic both read ``imagined.policy_features`` (R2I's actor-critic input: (z, x) by default
    for S3M), not the heads' (z, h). λ-returns bootstrap from the current critic (:func:`imagined_returns`).
    With ``update_scale`` the return scale's EMA first takes this batch's returns and then normalizes
    them, as R2I does (else ``scale`` is used as given, e.g. already updated with a larger batch).
    Discrete actors use REINFORCE with advantages (R_t − v_t)/max(1, S); continuous actors backpropagate
    the scaled return through the world model. The critic regresses sg(R_t) and is pulled towards the
    slow critic's value (the slow critic is only this regularizer's target). Both losses weight step t by
    :func:`trajectory_weights` and skip the last state, which has no return. ``start_continues``
    (1 − is_terminal of the real start states) zeroes the rollouts from terminal states.
    """
    settings = ActorCriticSettings() if settings is None else settings
    values, returns = imagined_returns(critic, imagined, settings)
    if update_scale:
        scale = update_return_scale(scale, returns, settings.return_decay)
    weights = trajectory_weights(imagined.continues, settings.discount, start_continues)[:, :-1]
    head = jax.lax.stop_gradient(imagined.policy_features[:, :-1])
    advantage = (returns - values[:, :-1]) / scale.scale  # the critic's parameters are frozen here
    log_prob, entropy = jax.vmap(jax.vmap(actor.log_prob_and_entropy))(
        head, jax.lax.stop_gradient(imagined.actions[:, :-1])
    )
    if actor.kind == "discrete":
        objective = log_prob * jax.lax.stop_gradient(advantage)
    else:
        objective = advantage
    actor_loss = -jnp.mean(weights * (objective + settings.entropy * entropy))
    slow_values = jax.vmap(jax.vmap(slow_critic.value))(head)
    critic_step_loss = lambda h, ret, slow: critic.loss(
        h, ret, regularizer_target=slow, regularizer_scale=settings.slow_regularizer
    )  # fit the returns, and stay near the slow critic
    critic_loss = jnp.mean(weights * jax.vmap(jax.vmap(critic_step_loss))(head, returns, slow_values))
    metrics = {
        "return_mean": jnp.mean(returns),
        "advantage_mean": jnp.mean(advantage),
        "entropy": jnp.mean(entropy),
        "value_mean": jnp.mean(values[:, :-1]),
        "return_scale": scale.scale,
    }
    return ActorCriticLosses(actor_loss, critic_loss, jax.lax.stop_gradient(scale), metrics)
