"""The sequence-model interface shared by S3M (R2I) and the RSSM baseline (DreamerV3)."""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._nets import LatentHead
from ._types import Action, Actions, Carry, DeterStep, Embed, Flag, Flags, HiddenStep, LatentState, Stoch


class SequenceModel(eqx.Module):
    """Causal recurrent core: h_t, x_t = f(z_{t−1}, a_{t−1}; h_{t−1}, x_{t−1}), restarted where is_first.

    At an episode start (is_first_t) the previous state is replaced by the initial state (``initial``:
    zeros, or R2I's learned one), a_{t−1} is zeroed, and the step is taken from there, so h_t never sees
    the previous episode. The prior p(z_t | h_t) therefore predicts z_t from the past.

    Implementations:
        :class:`S3M` — S5 stack; posterior q(z_t | o_t) for all t at once, then one parallel scan.
        :class:`RSSM` — DreamerV3 LayerNorm GRU; posterior q(z_t | h_t, o_t), a sequential scan.
    """

    deter_size: eqx.AbstractVar[int]
    hidden_size: eqx.AbstractVar[int]
    stoch: eqx.AbstractVar[int]
    classes: eqx.AbstractVar[int]
    action_size: eqx.AbstractVar[int]

    @abc.abstractmethod
    def initial_hidden(self) -> HiddenStep:
        """The recurrent hidden state x an episode starts from (``()`` where there is none): the learned
        SSM reset state s where there is one, else zeros."""

    @abc.abstractmethod
    def posterior_input_size(self, embed_size: int) -> int:
        """Input size of the posterior head for an encoder embedding of ``embed_size``."""

    @abc.abstractmethod
    def posterior_input(self, deter: DeterStep, embed: Float[Array, " E"]) -> Float[Array, " I"]:
        """What the posterior head reads at one step."""

    @abc.abstractmethod
    def step(
        self, prev: LatentState, prev_action: Action, is_first: Flag, initial: LatentState
    ) -> tuple[DeterStep, HiddenStep]:
        """One step: (h_t, x_t) from the previous state and action (O(1) per step); from ``initial``
        instead where is_first."""

    @abc.abstractmethod
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
        """Posterior states [T] of one sequence, the posterior logits [T, S, K] and the carry for the
        next chunk; episodes start from ``initial``. ``actions[t]`` is taken after step t, so it only
        enters h_{t+1}."""


ACTION_CLIP = 1.0


def clip_action(action: Action) -> Action:
    """``action`` scaled into [−1, 1] where it lies outside, with the gradient of that scaling held
    fixed (straight-through, DreamerV3's ``action_clip``): one-hot actions pass unchanged, and an
    unclipped continuous sample outside the range still gets a pathwise gradient."""
    size = jnp.maximum(ACTION_CLIP, jnp.abs(action))
    return action * jax.lax.stop_gradient(ACTION_CLIP / size)


def prev_inputs(stoch: Stoch, action: Action, is_first: Flag, initial_stoch: Stoch) -> Float[Array, " I"]:
    """[flatten(z_{t−1}), clip(a_{t−1})]; at an episode start [flatten(initial z), 0], so nothing crosses
    the boundary."""
    first = jnp.asarray(is_first, stoch.dtype)
    stoch = (1.0 - first) * stoch + first * initial_stoch
    return jnp.concatenate([stoch.reshape(-1), (1.0 - first) * clip_action(action.astype(stoch.dtype))])


def shift_in(first: Float[Array, "*rest"], seq: Float[Array, " T *rest"]) -> Float[Array, " T *rest"]:
    """[first, seq_0, …, seq_{T−2}]: the previous step's value for every t."""
    return jnp.concatenate([first[None], seq[:-1]], axis=0)


def last(tree):
    """The last time step of every leaf."""
    return jax.tree.map(lambda x: x[-1], tree)
