"""RSSM: DreamerV3's recurrent state-space model with a LayerNorm GRU (the baseline)."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._config import WorldModelConfig
from ._losses import sample_straight_through
from ._nets import Dense, LatentHead, linear
from ._sequence import SequenceModel, prev_inputs
from ._types import Action, Actions, Carry, DeterStep, Embed, Flag, Flags, HiddenStep, LatentState


def layernorm_gru(gates: Float[Array, " G"], h_prev: Float[Array, " D"]) -> Float[Array, " D"]:
    """DreamerV3 GRU update from the LayerNorm-ed gate pre-activations [reset, candidate, update]:
    h = u·tanh(r·c) + (1 − u)·h_prev with r = σ(reset), u = σ(update − 1) (biased towards keeping h)."""
    reset, cand, update = jnp.split(gates, 3)
    reset = jax.nn.sigmoid(reset)
    cand = jnp.tanh(reset * cand)
    update = jax.nn.sigmoid(update - 1.0)
    return update * cand + (1.0 - update) * h_prev


class RSSM(SequenceModel):
    """x = Dense([z_{t−1}, a_{t−1}]); h_t = GRU(x, h_{t−1}) with LayerNorm on the gates.

    h is both the recurrent state and the output (there is no separate SSM state x: ``hidden == ()``).
    The posterior q(z_t | h_t, o_t) depends on h_t, so ``observe`` is a sequential scan.
    """

    in_layer: Dense
    gates: eqx.nn.Linear
    norm: eqx.nn.LayerNorm
    deter_size: int = eqx.field(static=True)
    hidden_size: int = eqx.field(static=True)
    stoch: int = eqx.field(static=True)
    classes: int = eqx.field(static=True)
    action_size: int = eqx.field(static=True)

    def __init__(self, config: WorldModelConfig, action_size: int, *, key: PRNGKeyArray):
        dtype = jnp.dtype(config.dtype)
        in_key, gate_key = jax.random.split(key)
        self.stoch, self.classes, self.action_size = config.stoch, config.classes, action_size
        self.in_layer = Dense(
            config.stoch * config.classes + action_size, config.units, key=in_key, dtype=dtype
        )
        self.gates = eqx.nn.Linear(
            config.units + config.deter, 3 * config.deter, use_bias=False, key=gate_key, dtype=dtype
        )
        self.norm = eqx.nn.LayerNorm(3 * config.deter, dtype=dtype)
        self.deter_size = config.deter
        self.hidden_size = 0

    def initial_hidden(self) -> HiddenStep:
        return ()

    def posterior_input_size(self, embed_size: int) -> int:
        """q(z_t | h_t, o_t) reads [h_t, embedding]."""
        return self.deter_size + embed_size

    def posterior_input(self, deter: DeterStep, embed: Float[Array, " E"]) -> Float[Array, " I"]:
        return jnp.concatenate([deter, embed])

    def step(
        self, prev: LatentState, prev_action: Action, is_first: Flag, initial: LatentState
    ) -> tuple[DeterStep, HiddenStep]:
        """h_t from h_{t−1}, z_{t−1} and a_{t−1}; at an episode start from ``initial``'s h and z, a = 0."""
        first = jnp.asarray(is_first, prev.deter.dtype)
        h_prev = (1.0 - first) * prev.deter + first * initial.deter
        x = self.in_layer(prev_inputs(prev.stoch, prev_action, is_first, initial.stoch))
        return layernorm_gru(self.norm(linear(self.gates, jnp.concatenate([x, h_prev]))), h_prev), ()

    def observe(
        self,
        posterior: LatentHead,
        embed: Embed,
        actions: Actions,
        is_first: Flags,
        carry: Carry,
        initial: LatentState,
        *,
        key: PRNGKeyArray,
    ) -> tuple[LatentState, Float[Array, "T S K"], Carry]:
        """Sequential: h_t = GRU(h_{t−1}, z_{t−1}, a_{t−1}); z_t ~ q(z_t | h_t, o_t)."""
        keys = jax.random.split(key, embed.shape[0])
        dtype = carry.state.deter.dtype

        def body(carry: Carry, inputs):
            embed_t, action_t, first_t, key_t = inputs
            deter, hidden = self.step(carry.state, carry.action, first_t, initial)
            logits = posterior(self.posterior_input(deter, embed_t))
            stoch = sample_straight_through(logits, key=key_t)
            state = LatentState(deter=deter, hidden=hidden, stoch=stoch)
            return Carry(state=state, action=action_t.astype(dtype)), (state, logits)

        carry, (states, post_logits) = jax.lax.scan(
            body, carry, (embed, actions, jnp.asarray(is_first, bool), keys)
        )
        return states, post_logits, carry
