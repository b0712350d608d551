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

    At an episode start (is_first_t) z_{t−1} and a_{t−1} are zeroed and the recurrent state is reset,
    so h_t never sees the previous episode. The prior p(z_t | h_t) therefore predicts z_t from the past.

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
        """The recurrent hidden state x before any step (``()`` where there is none)."""

    @abc.abstractmethod
    def posterior_input_size(self, embed_size: int) -> int:
        """Input size of the posterior head for an encoder embedding of ``embed_size``."""

    @abc.abstractmethod
    def posterior_input(self, deter: DeterStep, embed: Float[Array, " E"]) -> Float[Array, " I"]:
        """What the posterior head reads at one step."""

    @abc.abstractmethod
    def step(self, prev: LatentState, prev_action: Action, is_first: Flag) -> tuple[DeterStep, HiddenStep]:
        """One step: (h_t, x_t) from the previous state and action (O(1) per step)."""

    @abc.abstractmethod
    def observe(
        self,
        posterior: LatentHead,
        embed: Embed,
        actions: Actions,
        is_first: Flags,
        carry: Carry,
        *,
        key: PRNGKeyArray,
    ) -> tuple[LatentState, Float[Array, "T S K"], Carry]:
        """Posterior states [T] of one sequence, the posterior logits [T, S, K] and the carry for the
        next chunk. ``actions[t]`` is taken after step t, so it only enters h_{t+1}."""


def prev_inputs(stoch: Stoch, action: Action, is_first: Flag) -> Float[Array, " I"]:
    """[flatten(z_{t−1}), a_{t−1}], zeroed at an episode start so nothing crosses the boundary."""
    keep = 1.0 - jnp.asarray(is_first, stoch.dtype)
    return keep * jnp.concatenate([stoch.reshape(-1), action.astype(stoch.dtype)])


def shift_in(first: Float[Array, "*rest"], seq: Float[Array, " T *rest"]) -> Float[Array, " T *rest"]:
    """[first, seq_0, …, seq_{T−2}]: the previous step's value for every t."""
    return jnp.concatenate([first[None], seq[:-1]], axis=0)


def last(tree):
    """The last time step of every leaf."""
    return jax.tree.map(lambda x: x[-1], tree)
