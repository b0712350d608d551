"""S3M: the R2I sequence model — an S5 stack fed with (z_{t−1}, a_{t−1})."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ssmscan import S5Stack

from ._config import WorldModelConfig
from ._losses import sample_straight_through
from ._nets import Dense, LatentHead, linear
from ._sequence import SequenceModel, last, prev_inputs, shift_in
from ._types import (
    Action,
    Actions,
    Carry,
    DeterSeq,
    DeterStep,
    Embed,
    Flag,
    Flags,
    HiddenSeq,
    HiddenStep,
    LatentState,
    StochSeq,
)


class S3M(SequenceModel):
    """u_t = Dense([z_{t−1}, a_{t−1}]); (y_t, x_t) = S5Stack(u, resets at is_first); h_t = SiLU(Linear(y_t)).

    The output projection is R2I's (a Linear then SiLU). A reset puts each block's reset state s in place
    of x_{t−1}: learned with ``initial="learned"`` (R2I's learned initial state) or
    ``ssm.learn_reset_state``, else zeros.

    ``x_t`` are the complex hidden states of every S5 block. Sequence mode (:meth:`sequence`) runs all
    T steps in one resettable scan; :meth:`step` gives the same numbers one step at a time.

    Example:
        >>> cfg = preset("tiny")
        >>> s3m = S3M(cfg, action_size=2, key=jax.random.key(0))
        >>> T = 10
        >>> deter, hidden = s3m.sequence(jnp.zeros((T, 4, 4)), jnp.zeros((T, 2)), jnp.zeros(T, bool),
        ...                              s3m.initial_hidden(), jnp.zeros((4, 4)))
    """

    in_proj: Dense
    stack: S5Stack
    out_proj: eqx.nn.Linear
    deter_size: int = eqx.field(static=True)
    hidden_size: int = eqx.field(static=True)
    stoch: int = eqx.field(static=True)
    classes: int = eqx.field(static=True)
    action_size: int = eqx.field(static=True)
    resets: bool = eqx.field(static=True)

    def __init__(self, config: WorldModelConfig, action_size: int, *, key: PRNGKeyArray):
        ssm = config.ssm
        dtype = jnp.dtype(config.dtype)
        in_key, stack_key, out_key = jax.random.split(key, 3)
        self.stoch, self.classes, self.action_size = config.stoch, config.classes, action_size
        self.in_proj = Dense(config.stoch * config.classes + action_size, ssm.width, key=in_key, dtype=dtype)
        self.stack = S5Stack(
            ssm.layers,
            ssm.width,
            ssm.state,
            key=stack_key,
            blocks=ssm.blocks,
            conj_sym=ssm.conj_sym,
            discretization=ssm.discretization,
            C_init=ssm.C_init,
            learn_reset_state=ssm.learn_reset_state or config.initial == "learned",
            dt_min=ssm.dt_min,
            dt_max=ssm.dt_max,
            dtype=dtype,
        )
        self.out_proj = eqx.nn.Linear(ssm.width, config.deter, key=out_key, dtype=dtype)
        self.deter_size = config.deter
        self.resets = ssm.resets
        self.hidden_size = 2 * sum(block.ssm.hidden_size for block in self.stack.blocks)

    def initial_hidden(self) -> HiddenStep:
        return self.stack.reset_values()

    def posterior_input_size(self, embed_size: int) -> int:
        """q(z_t | o_t) reads the embedding only: it is not recurrent."""
        return embed_size

    def posterior_input(self, deter: DeterStep, embed: Float[Array, " E"]) -> Float[Array, " E"]:
        return embed

    def sequence(
        self,
        prev_stoch: StochSeq,
        prev_action: Actions,
        is_first: Flags,
        hidden0: HiddenStep,
        initial_stoch: Float[Array, "S K"],
    ) -> tuple[DeterSeq, HiddenSeq]:
        """All (h_t, x_t) of a sequence [T] from z_{t−1}, a_{t−1} [T] in one scan, reset where is_first
        (z_{t−1} then reads ``initial_stoch``, x_{t−1} the reset state)."""
        inputs = lambda z, a, f: self.in_proj(prev_inputs(z, a, f, initial_stoch))
        u = jax.vmap(inputs)(prev_stoch, prev_action, is_first)
        ys, hidden = self.stack(u, self._resets(is_first), hidden0)
        return jax.vmap(self._output)(ys), hidden

    def step(
        self, prev: LatentState, prev_action: Action, is_first: Flag, initial: LatentState
    ) -> tuple[DeterStep, HiddenStep]:
        u = self.in_proj(prev_inputs(prev.stoch, prev_action, is_first, initial.stoch))
        y, hidden = self.stack.step(prev.hidden, u, self._resets(is_first))
        return self._output(y), hidden

    def _output(self, y: Float[Array, " H"]) -> DeterStep:
        return jax.nn.silu(linear(self.out_proj, y))

    def _resets(self, is_first):
        """Where the scan resets its state: at episode starts, or nowhere (the no-resets ablation)."""
        is_first = jnp.asarray(is_first, bool)
        return is_first if self.resets else jnp.zeros_like(is_first)

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
        """Posterior q(z_t | o_t) for all t at once, then all h_t, x_t in one scan."""
        keys = jax.random.split(key, embed.shape[0])
        post_logits = jax.vmap(posterior)(embed)
        stoch = jax.vmap(lambda logits, k: sample_straight_through(logits, key=k))(post_logits, keys)
        prev_stoch = shift_in(carry.state.stoch, stoch)
        prev_action = shift_in(carry.action, actions.astype(stoch.dtype))
        deter, hidden = self.sequence(prev_stoch, prev_action, is_first, carry.state.hidden, initial.stoch)
        states = LatentState(deter=deter, hidden=hidden, stoch=stoch)
        return states, post_logits, Carry(state=last(states), action=actions[-1].astype(stoch.dtype))
