"""WorldModel: encoder, posterior, sequence model (S3M or RSSM), prior and heads; observe, loss, imagine."""

from collections.abc import Callable, Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Key, PRNGKeyArray

from ._config import OptimConfig, PolicyInput, WorldModelConfig
from ._losses import (
    bernoulli_nll,
    categorical_entropy,
    categorical_kl,
    dyn_rep_losses,
    sample_straight_through,
)
from ._nets import ContinueHead, LatentHead, MultiDecoder, MultiEncoder, RewardHead, check_obs_shapes
from ._rssm import RSSM
from ._s3m import S3M
from ._sequence import SequenceModel
from ._types import Action, Actions, Batch, Carry, Flag, Flags, Imagined, LatentState, Observation, Observed

Policy = Callable[[Float[Array, " G"], PRNGKeyArray], Action]

SEQUENCE_MODELS: dict[str, type[SequenceModel]] = {"s3m": S3M, "rssm": RSSM}


def _hidden_features(state: LatentState) -> Float[Array, "*batch X"]:
    """Every SSM layer's complex state x as real features [Re x, Im x]."""
    parts = [part for x in state.hidden for part in (x.real, x.imag)]
    return jnp.concatenate(parts, axis=-1).astype(state.deter.dtype)


def _stoch_features(state: LatentState) -> Float[Array, "*batch SK"]:
    return state.stoch.reshape(*state.stoch.shape[:-2], -1)


def _real_parts(leaf: Array) -> int:
    """Real numbers per entry of ``leaf`` in a carry vector: 2 for complex x (Re, Im), else 1."""
    return 2 if jnp.iscomplexobj(leaf) else 1


_POLICY_FEATURES: dict[str, Callable[[LatentState], list[Array]]] = {
    "output": lambda s: [_stoch_features(s), s.deter],
    "hidden": lambda s: [_stoch_features(s), _hidden_features(s)],
    "full": lambda s: [_stoch_features(s), s.deter, _hidden_features(s)],
}


class WorldModel(eqx.Module):
    """R2I world model (``sequence_model="s3m"``) or the DreamerV3 RSSM baseline (``"rssm"``).

    Methods take ONE sequence (or step); callers ``jax.vmap`` over the batch. ``imagine`` takes starts
    with any leading dims and flattens them.

    Example:
        >>> wm = WorldModel(preset("tiny"), {"vector": (5,)}, action_size=3, key=jax.random.key(0))
        >>> T = 8
        >>> batch = Batch(obs={"vector": jnp.ones((T, 5))}, action=jnp.zeros((T, 3)),
        ...               reward=jnp.zeros(T), is_first=jnp.arange(T) == 0, is_terminal=jnp.zeros(T, bool))
        >>> loss, metrics = wm.loss(batch, wm.initial_carry(), key=jax.random.key(1))
    """

    encoder: MultiEncoder
    posterior: LatentHead
    sequence_model: SequenceModel
    prior: LatentHead
    decoder: MultiDecoder
    reward: RewardHead
    cont: ContinueHead
    initial_deter: Float[Array, " D"] | None
    config: WorldModelConfig = eqx.field(static=True)
    obs_shapes: tuple[tuple[str, tuple[int, ...]], ...] = eqx.field(static=True)
    action_size: int = eqx.field(static=True)

    def __init__(
        self,
        config: WorldModelConfig,
        obs_shapes: Mapping[str, tuple[int, ...]],
        action_size: int,
        *,
        key: PRNGKeyArray,
    ):
        """Args:
        config: sizes and choices (see :func:`preset`).
        obs_shapes: ``{"vector": (O,)}`` and/or ``{"image": (64, 64, C)}``.
        action_size: A, size of the (one-hot or continuous) action vector.
        key: PRNG key for the initial parameters.
        """
        check_obs_shapes(obs_shapes)
        if config.sequence_model not in SEQUENCE_MODELS:
            raise ValueError(
                f"unknown sequence_model {config.sequence_model!r}; expected one of {tuple(SEQUENCE_MODELS)}"
            )
        dtype = jnp.dtype(config.dtype)
        keys = jax.random.split(key, 7)
        c = config
        self.config = config
        self.obs_shapes = tuple(sorted((k, tuple(int(n) for n in v)) for k, v in obs_shapes.items()))
        self.action_size = action_size
        self.encoder = MultiEncoder(
            obs_shapes, c.enc_units, c.enc_layers, c.cnn_depth, key=keys[0], dtype=dtype
        )
        self.sequence_model = SEQUENCE_MODELS[c.sequence_model](config, action_size, key=keys[1])
        post_in = self.sequence_model.posterior_input_size(self.encoder.out_size)
        self.posterior = LatentHead(
            post_in, c.units, c.latent_layers, c.stoch, c.classes, c.unimix, key=keys[2], dtype=dtype
        )
        self.prior = LatentHead(
            c.deter, c.units, c.latent_layers, c.stoch, c.classes, c.unimix, key=keys[3], dtype=dtype
        )
        feat = self.feature_size
        self.decoder = MultiDecoder(
            feat, obs_shapes, c.enc_units, c.enc_layers, c.cnn_depth, key=keys[4], dtype=dtype
        )
        self.reward = RewardHead(
            feat, c.units, c.layers, c.reward_bins, c.reward_range, key=keys[5], dtype=dtype
        )
        self.cont = ContinueHead(feat, c.units, c.layers, key=keys[6], dtype=dtype)
        self.initial_deter = jnp.zeros(c.deter, dtype) if c.initial == "learned" else None

    # ----- states and features -----

    @property
    def feature_size(self) -> int:
        """Size of (z, h), what the heads read."""
        return self.config.stoch * self.config.classes + self.config.deter

    def initial_state(self) -> LatentState:
        """The state every episode starts from (is_first puts it in place of the previous one).

        ``initial="learned"`` (R2I, DreamerV3): h = tanh(w) of a learned vector w, z the prior's mode
        at that h (one-hot), and S3M's x the learned SSM reset states. ``"zeros"``: all zeros.
        """
        dtype = jnp.dtype(self.config.dtype)
        hidden = self.sequence_model.initial_hidden()
        if self.initial_deter is None:
            deter = jnp.zeros(self.config.deter, dtype)
            return LatentState(deter, hidden, jnp.zeros((self.config.stoch, self.config.classes), dtype))
        deter = jnp.tanh(self.initial_deter)
        logits = jax.lax.stop_gradient(self.prior(deter))
        stoch = jax.nn.one_hot(jnp.argmax(logits, -1), self.config.classes, dtype=dtype)
        return LatentState(deter=deter, hidden=hidden, stoch=stoch)

    def initial_carry(self) -> Carry:
        """The initial state and a zero action: the carry before an episode's first chunk."""
        return Carry(state=self.initial_state(), action=jnp.zeros(self.action_size, self.config.dtype))

    @property
    def carry_size(self) -> int:
        """Length of :meth:`carry_to_vector`'s vector: every carry entry, complex x counted twice."""
        return sum(leaf.size * _real_parts(leaf) for leaf in jax.tree.leaves(self.initial_carry()))

    @staticmethod
    def carry_to_vector(carry: Carry) -> Float[Array, "*batch C"]:
        """The carry as one real float32 vector per sequence (complex x as [Re, Im]), e.g. to keep the
        acting state in a replay buffer and start training windows from it (DreamerV3's replay context)."""
        lead = carry.action.shape[:-1]
        parts = []
        for leaf in jax.tree.leaves(carry):
            flat = leaf.reshape(*lead, -1)
            parts += [flat.real, flat.imag] if _real_parts(flat) == 2 else [flat]
        return jnp.concatenate([part.astype(jnp.float32) for part in parts], axis=-1)

    def carry_from_vector(self, vector: Float[Array, "*batch C"]) -> Carry:
        """Inverse of :meth:`carry_to_vector`: the carry (any leading dims) in this model's dtypes."""
        if vector.shape[-1] != self.carry_size:
            raise ValueError(
                f"carry vector has {vector.shape[-1]} entries; this model's carry has {self.carry_size}"
            )
        lead = vector.shape[:-1]
        leaves, treedef = jax.tree.flatten(self.initial_carry())
        values, offset = [], 0
        for leaf in leaves:
            parts = _real_parts(leaf)
            chunks = jnp.split(vector[..., offset : offset + parts * leaf.size], parts, axis=-1)
            value = jax.lax.complex(*chunks) if parts == 2 else chunks[0]
            values.append(value.reshape(*lead, *leaf.shape).astype(leaf.dtype))
            offset += parts * leaf.size
        return jax.tree.unflatten(treedef, values)

    def features(self, state: LatentState) -> Float[Array, "*batch F"]:
        """(z, h): flattened one-hot z and h, over any leading dims."""
        return jnp.concatenate([_stoch_features(state), state.deter], axis=-1)

    def _check_kind(self, kind: PolicyInput | None) -> PolicyInput:
        kind = self.config.policy_input if kind is None else kind
        if kind not in _POLICY_FEATURES:
            raise ValueError(
                f"unknown policy feature kind {kind!r}; expected one of {tuple(_POLICY_FEATURES)}"
            )
        if kind != "output" and self.sequence_model.hidden_size == 0:
            raise ValueError(
                f"policy feature kind {kind!r} needs SSM hidden states x; "
                f"{type(self.sequence_model).__name__} has none, use 'output'"
            )
        return kind

    def policy_features(
        self, state: LatentState, kind: PolicyInput | None = None
    ) -> Float[Array, "*batch G"]:
        """Policy input: ``output`` (z, h), ``hidden`` (z, x) or ``full`` (z, h, x); complex x → [Re, Im].

        ``kind`` defaults to the config's ``policy_input``; the RSSM has no x and allows only ``output``.
        """
        return jnp.concatenate(_POLICY_FEATURES[self._check_kind(kind)](state), axis=-1)

    def policy_feature_size(self, kind: PolicyInput | None = None) -> int:
        """Size of :meth:`policy_features` of one step: what the actor's input layer needs."""
        kind = self._check_kind(kind)
        stoch = self.config.stoch * self.config.classes
        deter, hidden = self.config.deter, self.sequence_model.hidden_size
        return {"output": stoch + deter, "hidden": stoch + hidden, "full": stoch + deter + hidden}[kind]

    # ----- observing -----

    def observe(
        self, obs: Observation, actions: Actions, is_first: Flags, carry: Carry, *, key: PRNGKeyArray
    ) -> tuple[Observed, Carry]:
        """Posterior states of one sequence [T] and the carry for the next chunk of the same episodes.

        ``actions[t]`` is the action taken after ``obs[t]``; it enters h_{t+1} only. For S3M the posterior
        is computed for all t at once and then all h_t, x_t come out of one scan.
        """
        embed = jax.vmap(self.encoder)(obs)
        states, post_logits, carry = self.sequence_model.observe(
            self.posterior, embed, actions, is_first, carry, self.initial_state(), key=key
        )
        prior_logits = jax.vmap(self.prior)(states.deter)
        return Observed(state=states, post_logits=post_logits, prior_logits=prior_logits), carry

    def observe_step(
        self, carry: Carry, obs: Observation, is_first: Flag, *, key: PRNGKeyArray
    ) -> LatentState:
        """One step of ``observe`` for acting: the posterior state of ``obs`` after ``carry``.

        The next carry is ``Carry(state, action_taken)``.
        """
        deter, hidden = self.sequence_model.step(carry.state, carry.action, is_first, self.initial_state())
        embed = self.encoder(obs)
        logits = self.posterior(self.sequence_model.posterior_input(deter, embed))
        return LatentState(deter=deter, hidden=hidden, stoch=sample_straight_through(logits, key=key))

    # ----- loss -----

    def loss_and_states(
        self, batch: Batch, carry: Carry, *, key: PRNGKeyArray
    ) -> tuple[Float[Array, ""], tuple[dict[str, Float[Array, ""]], Observed, Carry]]:
        """:meth:`loss` that also returns the posterior states (imagination starts) and the next carry."""
        scales = self.config.loss
        observed, new_carry = self.observe(batch.obs, batch.action, batch.is_first, carry, key=key)
        feats = self.features(observed.state)
        recon = jax.vmap(self.decoder.loss)(feats, batch.obs)
        reward = jax.vmap(self.reward.loss)(feats, batch.reward.astype(feats.dtype))
        cont_target = 1.0 - jnp.asarray(batch.is_terminal, feats.dtype)
        cont = bernoulli_nll(jax.vmap(self.cont)(feats), cont_target)
        pred = sum(recon.values()) + reward + cont
        dyn, rep = dyn_rep_losses(observed.post_logits, observed.prior_logits, scales.free_nats)
        total = jnp.mean(scales.pred * pred + scales.dyn * dyn + scales.rep * rep)
        metrics = {
            "loss": total,
            "pred": jnp.mean(pred),
            **{f"recon_{name}": jnp.mean(value) for name, value in recon.items()},
            "reward": jnp.mean(reward),
            "cont": jnp.mean(cont),
            "dyn": jnp.mean(dyn),
            "rep": jnp.mean(rep),
            "kl": jnp.mean(categorical_kl(observed.post_logits, observed.prior_logits)),
            "post_entropy": jnp.mean(categorical_entropy(observed.post_logits)),
            "prior_entropy": jnp.mean(categorical_entropy(observed.prior_logits)),
        }
        return total, (metrics, observed, new_carry)

    def loss(
        self, batch: Batch, carry: Carry, *, key: PRNGKeyArray
    ) -> tuple[Float[Array, ""], dict[str, Float[Array, ""]]]:
        """World-model loss of one sequence [T], averaged over time, and its parts:

        L = β_pred·(recon + reward + cont) + β_dyn·max(free, KL[sg(q) ‖ p]) + β_rep·max(free, KL[q ‖ sg(p)]).
        Recon: symlog MSE (vector), MSE (image); reward: two-hot symlog; cont: Bernoulli with
        target 1 − is_terminal.
        """
        total, (metrics, _, _) = self.loss_and_states(batch, carry, key=key)
        return total, metrics

    # ----- imagination -----

    def imagine_step(self, state: LatentState, action: Action, *, key: PRNGKeyArray) -> LatentState:
        """Next latent state in imagination: step mode, z from the prior p(z | h)."""
        deter, hidden = self.sequence_model.step(state, action, False, state)  # no episode starts here
        stoch = sample_straight_through(self.prior(deter), key=key)
        return LatentState(deter=deter, hidden=hidden, stoch=stoch)

    def _rollout(self, policy: Policy, start: LatentState, horizon: int, key: PRNGKeyArray) -> Imagined:
        def body(state, key_t):
            act_key, z_key = jax.random.split(key_t)
            inputs = self.policy_features(state)
            action = policy(jax.lax.stop_gradient(inputs), act_key)  # the policy reads sg(state) (DreamerV3)
            return self.imagine_step(state, action, key=z_key), (state, inputs, action)

        keys = jax.random.split(key, horizon + 1)
        final, (states, inputs, actions) = jax.lax.scan(body, start, keys[:-1])
        final_inputs = self.policy_features(final)
        final_action = policy(jax.lax.stop_gradient(final_inputs), keys[-1])
        append = lambda seq, x: jnp.concatenate([seq, x[None]], axis=0)
        states = jax.tree.map(append, states, final)
        feats = jax.vmap(self.features)(states)
        return Imagined(
            state=states,
            features=feats,
            policy_features=append(inputs, final_inputs),
            actions=append(actions, final_action),
            rewards=jax.vmap(self.reward.mean)(feats),
            continues=jax.vmap(self.cont.mode)(feats),
        )

    def imagine(
        self,
        policy: Policy,
        start: LatentState,
        horizon: int | None = None,
        *,
        key: PRNGKeyArray | Key[Array, " N"],
    ) -> Imagined:
        """Roll ``horizon`` steps (default: config) from EVERY start state, e.g. all B·T posterior states.

        ``start`` may have any leading dims ([B, T] from a vmapped ``observe``); they are flattened to N
        and gradients do not flow into the starts. ``policy(features, key) -> action`` sees one example,
        with a stop-gradient: gradients reach the actions only through the model's dynamics. Rewards are
        the reward head's mean, continues the continue head's mode (1 where P(continue) > 0.5), as in R2I
        and DreamerV3. ``key`` is one key (split into one per start) or already one key per start, [N].
        """
        horizon = self.config.imag_horizon if horizon is None else horizon
        lead = start.deter.ndim - 1
        flat = jax.tree.map(lambda x: x.reshape(-1, *x.shape[lead:]), jax.lax.stop_gradient(start))
        n = flat.deter.shape[0]
        keys = key if key.shape == (n,) else jax.random.split(key, n)
        return jax.vmap(lambda s, k: self._rollout(policy, s, horizon, k))(flat, keys)


def batch_loss(
    model: WorldModel, batch: Batch, carry: Carry, key: PRNGKeyArray | Key[Array, " B"]
) -> tuple[Float[Array, ""], tuple[dict[str, Float[Array, ""]], Observed, Carry]]:
    """Mean world-model loss of a batch [B, T] (``batch`` and ``carry`` with a leading B), for ``jax.grad``.

    Returns (loss, (mean metrics, posterior states [B, T], next carries [B])). ``key`` is split into one
    key per sequence, or is already that (shape [B]), so a batch split into parts gives the same numbers.
    """
    size = batch.action.shape[0]
    keys = key if key.shape == (size,) else jax.random.split(key, size)
    losses, (metrics, observed, carry) = jax.vmap(lambda b, c, k: model.loss_and_states(b, c, key=k))(
        batch, carry, keys
    )
    return jnp.mean(losses), (jax.tree.map(jnp.mean, metrics), observed, carry)


SSM_PARAMETERS = frozenset({"Lambda_re", "Lambda_im", "B_tilde", "C_tilde", "D", "log_step"})


def _leaf_name(path) -> str:
    last = path[-1]
    return str(getattr(last, "name", getattr(last, "key", last)))


def parameter_groups(params):
    """``"ssm"`` for the S5 layers' Λ, B̃, C̃, D and log Δ (R2I's ``model_opt_groups``), ``"rest"`` for
    every other parameter, as a pytree of labels matching ``params``."""
    label = lambda path, _: "ssm" if _leaf_name(path) in SSM_PARAMETERS else "rest"
    return jax.tree_util.tree_map_with_path(label, params)


def decayed_weights(params):
    """Which parameters weight decay shrinks: the weight matrices and kernels of linear and
    convolutional layers (R2I's ``/(w|kernel)$``), not biases, norms, SSM parameters or initial states."""
    decays = lambda path, x: _leaf_name(path) == "weight" and getattr(x, "ndim", 0) >= 2
    return jax.tree_util.tree_map_with_path(decays, params)


def _flattened(inner: optax.GradientTransformation) -> optax.GradientTransformation:
    """``optax.flatten(inner)``, passing through a group without parameters (the RSSM has no S5 ones)."""
    flat = optax.flatten(inner)

    def init(params):
        return flat.init(params) if jax.tree.leaves(params) else optax.EmptyState()

    def update(updates, state, params=None):
        return flat.update(updates, state, params) if jax.tree.leaves(updates) else (updates, state)

    return optax.GradientTransformation(init, update)


def make_optimizer(config: OptimConfig) -> optax.GradientTransformation:
    """R2I's world-model optimizer: the S5 parameters (:func:`parameter_groups`) and all others in two
    groups, each clipped by its own global norm, then Adam (lr, eps) and, for the others, decoupled
    weight decay on :func:`decayed_weights` (``weight_decay``; the S5 group never decays).

    Each group runs on its parameters concatenated into one vector (``optax.flatten``): the same update,
    but a handful of XLA kernels instead of several per parameter array, which halves the compile time
    of a whole agent update on CPU (docs/benchmarks.md). Its state holds flat vectors.
    """

    def group(decay: bool) -> optax.GradientTransformation:
        steps = [
            _flattened(
                optax.chain(optax.clip_by_global_norm(config.clip), optax.scale_by_adam(eps=config.eps))
            )
        ]
        if decay and config.weight_decay > 0:
            steps.append(optax.add_decayed_weights(config.weight_decay, mask=decayed_weights))
        return optax.chain(*steps, optax.scale(-config.lr))

    return optax.multi_transform({"ssm": group(False), "rest": group(True)}, parameter_groups)


def initial_carries(model: WorldModel, batch_size: int) -> Carry:
    """``model.initial_carry()`` stacked over a batch of B sequences."""
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (batch_size, *x.shape)), model.initial_carry())


def train_step(
    model: WorldModel,
    opt_state: optax.OptState,
    optimizer: optax.GradientTransformation,
    batch: Batch,
    carry: Carry,
    key: PRNGKeyArray,
) -> tuple[WorldModel, optax.OptState, Float[Array, ""], tuple[dict[str, Float[Array, ""]], Observed, Carry]]:
    """One world-model update on a batch [B, T]: (model, opt_state, loss, (metrics, states, carry)).

    Wrap in ``eqx.filter_jit``; ``opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))``.
    """
    (loss, aux), grads = eqx.filter_value_and_grad(batch_loss, has_aux=True)(model, batch, carry, key)
    updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_inexact_array))
    return eqx.apply_updates(model, updates), opt_state, loss, aux
