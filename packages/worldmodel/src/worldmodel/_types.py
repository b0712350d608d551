"""Named array shapes and the state containers of the world model.

Letters: ``T`` time steps, ``S`` categorical latents (32), ``K`` classes per latent (32), ``D`` deter
size (h), ``P`` SSM state size, ``A`` action size, ``E`` embedding size, ``F`` feature size, ``N`` number
of imagination starts, ``L`` imagination length (horizon + 1), ``*batch`` any leading dims.
"""

from typing import NamedTuple, TypeAlias

from jaxtyping import Array, ArrayLike, Bool, Complex, Float, Num

Deter: TypeAlias = Float[Array, "*batch D"]
Stoch: TypeAlias = Float[Array, "*batch S K"]
Logits: TypeAlias = Float[Array, "*batch S K"]
Hidden: TypeAlias = tuple[Complex[Array, "*batch P"], ...]
DeterStep: TypeAlias = Float[Array, " D"]
DeterSeq: TypeAlias = Float[Array, "T D"]
StochSeq: TypeAlias = Float[Array, "T S K"]
HiddenStep: TypeAlias = tuple[Complex[Array, " P"], ...]
HiddenSeq: TypeAlias = tuple[Complex[Array, "T P"], ...]
Action: TypeAlias = Float[Array, " A"]
Actions: TypeAlias = Float[Array, "T A"]
Flags: TypeAlias = Bool[ArrayLike, " T"] | Num[ArrayLike, " T"]
Flag: TypeAlias = Bool[ArrayLike, ""] | Num[ArrayLike, ""]
Embed: TypeAlias = Float[Array, "T E"]
Features: TypeAlias = Float[Array, "*batch F"]
Observation: TypeAlias = dict[str, Num[Array, "..."]]


class LatentState(NamedTuple):
    """Latent state of one step (or, with leading dims, of many).

    deter: h_t, the sequence model's output [D].
    hidden: x_t, the SSM hidden state of every S5 layer (complex [P] each); ``()`` for the RSSM.
    stoch: z_t, one-hot samples of S categoricals with K classes [S, K] (straight-through gradients).
    """

    deter: Deter
    hidden: Hidden
    stoch: Stoch


class Carry(NamedTuple):
    """What ``observe`` hands to the next chunk of the same episode: the last state and last action."""

    state: LatentState
    action: Float[Array, "*batch A"]


class Observed(NamedTuple):
    """Output of ``observe`` for a sequence [T]: posterior states and both distributions' logits."""

    state: LatentState
    post_logits: Float[Array, "T S K"]
    prior_logits: Float[Array, "T S K"]


class Batch(NamedTuple):
    """One training sequence [T] (vmap for a batch). ``action[t]`` is the action taken after ``obs[t]``.

    obs: dict with ``"vector"`` [T, O] float and/or ``"image"`` [T, 64, 64, C] uint8.
    reward: r_t received on arriving at obs[t]. is_first / is_terminal: episode flags of step t.
    """

    obs: Observation
    action: Actions
    reward: Float[Array, " T"]
    is_first: Flags
    is_terminal: Flags


class Imagined(NamedTuple):
    """An imagined rollout from N starts over L = horizon + 1 steps (index 0 is the start state).

    features: (z, h) that the heads read [N, L, F]. policy_features: the policy's input [N, L, F'].
    actions: a_t = policy(policy_features_t) [N, L, A]. rewards, continues: reward head mean and continue
    head mode (0 or 1) of each state [N, L].
    """

    state: LatentState
    features: Float[Array, "N L F"]
    policy_features: Float[Array, "N L G"]
    actions: Float[Array, "N L A"]
    rewards: Float[Array, "N L"]
    continues: Float[Array, "N L"]
