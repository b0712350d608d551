"""S5 layers: a diagonal complex MIMO state-space layer, its residual block, and a stack of blocks."""

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Complex, Float, PRNGKeyArray

from ._discretize import DISCRETIZATIONS
from ._init import CInit, hippo_n, init_B_tilde, init_C_tilde, init_log_step
from ._scan import Method, linear_recurrence
from ._types import Reset, Resets, Sequence, State, States, Step

Discretization = Literal["bilinear", "zoh"]


def _as_complex(pair: Float[Array, "... 2"]) -> Complex[Array, "..."]:
    return jax.lax.complex(pair[..., 0], pair[..., 1])


def _as_pair(z: Complex[Array, "..."]) -> Float[Array, "... 2"]:
    return jnp.stack([z.real, z.imag], axis=-1)


def _input_projection(u: Float[Array, "... H"], B_bar: Complex[Array, "P H"]) -> Complex[Array, "... P"]:
    """u B̄ᵀ for a real u as ONE real matmul against [Re B̄; Im B̄]: a complex matmul of u cast to complex
    does twice the multiplies and runs ~5× slower on CPU (docs/benchmarks.md)."""
    size = B_bar.shape[0]
    weight = jnp.concatenate([B_bar.real, B_bar.imag])
    y = u.astype(weight.dtype) @ weight.T
    return jax.lax.complex(y[..., :size], y[..., size:])


def _real_readout(x: Complex[Array, "... P"], C: Float[Array, "H P 2"]) -> Float[Array, "... H"]:
    """Re(x C̃ᵀ) as ONE real matmul: [Re x, Im x] against [Re C̃, −Im C̃], without the imaginary part a
    complex matmul would compute and drop."""
    weight = jnp.concatenate([C[..., 0], -C[..., 1]], axis=-1)
    return jnp.concatenate([x.real, x.imag], axis=-1) @ weight.T


def _kept_eigenvalues(state_size: int, blocks: int, conj_sym: bool) -> np.ndarray:
    """Indices of the eigenvalues a layer keeps: all, or per block the half with Im Λ ≤ 0."""
    if not conj_sym:
        return np.arange(state_size)
    size = state_size // blocks
    return np.concatenate([block * size + np.arange(size // 2) for block in range(blocks)])


class S5SSM(eqx.Module):
    """S5 state-space layer: x_t = Λ̄ x_{t−1} + B̄ u_t, y_t = Re(C̃ x_t) + D ⊙ u_t, with resets.

    Parameters follow S5 (Smith et al., 2023): Λ from the HiPPO-N eigendecomposition (optionally
    ``blocks`` independent blocks), B̃ = V⁻¹B, C̃ = CV, D ∈ R^H, log Δ ∈ R^P. Complex parameters are
    stored as trailing [re, im] pairs so any optimizer treats them as real.

    Conjugate symmetry (``conj_sym=True``): the eigenvalues of a real system come in conjugate pairs,
    so the layer keeps only P/2 of them and outputs y = 2·Re(C̃ x) + D u. Then hidden states have
    ``P/2`` entries; ``hidden_size`` says how many.

    A reset at step t (first step of an episode) replaces x_{t−1} with the reset state (zeros, or a
    learned vector with ``learn_reset_state=True``) before step t is applied.

    Example:
        >>> layer = S5SSM(model_size=8, state_size=16, key=jax.random.key(0))
        >>> ys, xs = layer(jnp.ones((100, 8)), reset=jnp.zeros(100, bool))
        >>> ys.shape, xs.shape
        ((100, 8), (100, 16))
    """

    Lambda_re: Float[Array, " P"]
    Lambda_im: Float[Array, " P"]
    B_tilde: Float[Array, "P H 2"]
    C_tilde: Float[Array, "H P 2"]
    D: Float[Array, " H"]
    log_step: Float[Array, " P"]
    reset_state: Float[Array, "P 2"] | None
    model_size: int = eqx.field(static=True)
    state_size: int = eqx.field(static=True)
    conj_sym: bool = eqx.field(static=True)
    discretization: Discretization = eqx.field(static=True)
    clip_eigs: bool = eqx.field(static=True)
    method: Method = eqx.field(static=True)

    def __init__(
        self,
        model_size: int,
        state_size: int,
        *,
        key: PRNGKeyArray,
        blocks: int = 1,
        conj_sym: bool = False,
        discretization: Discretization = "bilinear",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        C_init: CInit = "s5",
        clip_eigs: bool = False,
        learn_reset_state: bool = False,
        method: Method = "auto",
        dtype=jnp.float32,
    ):
        """Build the layer and its initial parameters.

        Args:
            model_size: H, width of inputs and outputs.
            state_size: P, size of the HiPPO-N system (the layer carries P/2 states with conj_sym).
            key: PRNG key for B, C, D and log Δ.
            blocks: J, number of HiPPO-N blocks on the diagonal (P % J == 0).
            conj_sym: keep half of each conjugate pair and output 2·Re(C̃ x).
            discretization: ``"bilinear"`` (default) or ``"zoh"``.
            dt_min, dt_max: range of the log-uniform initial timescales Δ.
            C_init: ``"s5"`` (default) or ``"lecun"`` (published R2I code), see ``init_C_tilde``.
            clip_eigs: keep Re Λ ≤ −1e−4 when discretizing so |Λ̄| < 1 throughout training.
            learn_reset_state: learn the state that a reset puts in place of x_{t−1} (else zeros).
            method: scan method of ``linear_recurrence`` used in sequence mode.
            dtype: real parameter dtype (float32 or float64).
        """
        _check_sizes(model_size, state_size, blocks, conj_sym)
        if discretization not in DISCRETIZATIONS:
            raise ValueError(
                f"unknown discretization {discretization!r}; expected one of {tuple(DISCRETIZATIONS)}"
            )
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
        b_key, c_key, d_key, step_key = jax.random.split(key, 4)
        Lambda, V, Vinv = hippo_n(state_size, blocks)
        kept = _kept_eigenvalues(state_size, blocks, conj_sym)
        self.Lambda_re = jnp.asarray(Lambda[kept].real, dtype)
        self.Lambda_im = jnp.asarray(Lambda[kept].imag, dtype)
        self.B_tilde = _as_pair(init_B_tilde(b_key, Vinv[kept, :], model_size, dtype))
        self.C_tilde = _as_pair(init_C_tilde(c_key, V[:, kept], model_size, C_init, dtype))
        self.D = jax.random.normal(d_key, (model_size,), dtype)
        self.log_step = init_log_step(step_key, len(kept), dt_min, dt_max, dtype)
        self.reset_state = jnp.zeros((len(kept), 2), dtype) if learn_reset_state else None
        self.model_size = model_size
        self.state_size = state_size
        self.conj_sym = conj_sym
        self.discretization = discretization
        self.clip_eigs = clip_eigs
        self.method = method

    @property
    def hidden_size(self) -> int:
        """Number of complex states carried: P, or P/2 with conjugate symmetry."""
        return self.state_size // 2 if self.conj_sym else self.state_size

    def discretized(self) -> tuple[Complex[Array, " P"], Complex[Array, "P H"]]:
        """(Λ̄, B̄) of the current parameters."""
        Lambda_re = jnp.minimum(self.Lambda_re, -1e-4) if self.clip_eigs else self.Lambda_re
        Lambda = jax.lax.complex(Lambda_re, self.Lambda_im)
        return DISCRETIZATIONS[self.discretization](Lambda, _as_complex(self.B_tilde), self.log_step)

    def init_state(self) -> State:
        """Zero state of shape [hidden_size] and the layer's complex dtype."""
        return jnp.zeros(self.hidden_size, jnp.result_type(self.Lambda_re, jnp.complex64))

    def _reset_value(self) -> State | None:
        return None if self.reset_state is None else _as_complex(self.reset_state)

    def reset_value(self) -> State:
        """The state a reset puts in place of x_{t−1}: the learned reset state, or zeros."""
        return self.init_state() if self.reset_state is None else _as_complex(self.reset_state)

    def _readout(self, x: Complex[Array, "... P"], u: Float[Array, "... H"]) -> Float[Array, "... H"]:
        y = _real_readout(x, self.C_tilde)
        return (2.0 * y if self.conj_sym else y) + self.D * u

    def __call__(
        self, u: Sequence, reset: Resets | None = None, x0: State | None = None
    ) -> tuple[Sequence, States]:
        """Sequence mode: all T steps at once. Returns (ys [T, H], xs [T, hidden_size])."""
        if u.ndim != 2 or u.shape[1] != self.model_size:
            raise ValueError(f"S5SSM expects u of shape [T, {self.model_size}], got {u.shape}")
        Lambda_bar, B_bar = self.discretized()
        b = _input_projection(u, B_bar)
        xs = linear_recurrence(Lambda_bar, b, reset, x0, self._reset_value(), method=self.method)
        return self._readout(xs, u), xs

    def step(self, x_prev: State, u_t: Step, reset_t: Reset = False) -> tuple[Step, State]:
        """Step mode: one step from x_prev. A reset replaces x_prev by the reset state first."""
        Lambda_bar, B_bar = self.discretized()
        reset_to = self._reset_value()
        x_prev = jnp.where(reset_t, 0.0 if reset_to is None else reset_to, x_prev)
        x = Lambda_bar * x_prev + _input_projection(u_t, B_bar)  # u Bᵀ: [N, P] under vmap, no transpose
        return self._readout(x, u_t), x


def _check_sizes(model_size: int, state_size: int, blocks: int, conj_sym: bool) -> None:
    if model_size < 1 or state_size < 1 or blocks < 1:
        raise ValueError(
            f"model_size, state_size and blocks must be positive, got {model_size}, {state_size}, {blocks}"
        )
    if state_size % blocks:
        raise ValueError(f"state_size ({state_size}) must be divisible by blocks ({blocks})")
    if conj_sym and (state_size // blocks) % 2:
        raise ValueError(f"conj_sym needs an even block size, got state_size/blocks = {state_size}/{blocks}")


def _linear(layer: eqx.nn.Linear, x: Float[Array, " I"]) -> Float[Array, " O"]:
    """``layer(x)`` as x @ Wᵀ + b: under ``vmap`` the dot yields [N, O] directly instead of [O, N] and a
    transpose (faster forward and backward passes on CPU)."""
    y = x @ layer.weight.T
    return y if layer.bias is None else y + layer.bias


class S5Block(eqx.Module):
    """S5 residual block (post-norm, as in S5/R2I): LayerNorm(u + GLU(GeLU(SSM(u)))).

    GLU(z) = Dense₁(z) ⊙ sigmoid(Dense₂(z)). Optional dropout after the GeLU and the GLU (default off).

    Example:
        >>> block = S5Block(model_size=8, state_size=16, key=jax.random.key(0))
        >>> ys, xs = block(jnp.ones((100, 8)))
    """

    ssm: S5SSM
    glu_value: eqx.nn.Linear
    glu_gate: eqx.nn.Linear
    norm: eqx.nn.LayerNorm
    dropout: eqx.nn.Dropout

    def __init__(
        self, model_size: int, state_size: int, *, key: PRNGKeyArray, dropout: float = 0.0, **ssm_kwargs
    ):
        """``ssm_kwargs`` go to :class:`S5SSM` (blocks, conj_sym, discretization, dtype, ...)."""
        ssm_key, value_key, gate_key = jax.random.split(key, 3)
        dtype = ssm_kwargs.get("dtype", jnp.float32)
        self.ssm = S5SSM(model_size, state_size, key=ssm_key, **ssm_kwargs)
        self.glu_value = eqx.nn.Linear(model_size, model_size, key=value_key, dtype=dtype)
        self.glu_gate = eqx.nn.Linear(model_size, model_size, key=gate_key, dtype=dtype)
        self.norm = eqx.nn.LayerNorm(model_size, dtype=dtype)
        self.dropout = eqx.nn.Dropout(dropout)

    def _mix(self, z: Step, u: Step, key: PRNGKeyArray | None) -> Step:
        """Per-step part of the block, after the SSM: GeLU → GLU → residual → LayerNorm."""
        keys = (None, None) if key is None else jax.random.split(key)
        z = self.dropout(jax.nn.gelu(z), key=keys[0], inference=key is None)
        z = _linear(self.glu_value, z) * jax.nn.sigmoid(_linear(self.glu_gate, z))
        z = self.dropout(z, key=keys[1], inference=key is None)
        return self.norm(u + z)

    def __call__(
        self,
        u: Sequence,
        reset: Resets | None = None,
        x0: State | None = None,
        *,
        key: PRNGKeyArray | None = None,
    ) -> tuple[Sequence, States]:
        """Sequence mode: (outputs [T, H], SSM hidden states [T, hidden_size]). ``key`` enables dropout."""
        z, xs = self.ssm(u, reset, x0)
        keys = None if key is None else jax.random.split(key, u.shape[0])
        mix = jax.vmap(self._mix, in_axes=(0, 0, None if keys is None else 0))
        return mix(z, u, keys), xs

    def step(self, x_prev: State, u_t: Step, reset_t: Reset = False) -> tuple[Step, State]:
        """Step mode (no dropout): (output [H], new hidden state)."""
        z, x = self.ssm.step(x_prev, u_t, reset_t)
        return self._mix(z, u_t, None), x

    def init_state(self) -> State:
        return self.ssm.init_state()

    def reset_value(self) -> State:
        """The state a reset puts in place: the SSM's learned reset state, or zeros."""
        return self.ssm.reset_value()


class S5Stack(eqx.Module):
    """N S5 blocks of equal width; every block carries its own hidden state.

    Sequence mode returns the last block's outputs and every block's hidden states; step mode carries
    a tuple with one state per block. All blocks share the same resets.

    Example:
        >>> stack = S5Stack(num_layers=3, model_size=8, state_size=16, key=jax.random.key(0))
        >>> ys, xs = stack(jnp.ones((100, 8)))
        >>> len(xs), xs[0].shape
        (3, (100, 16))
        >>> y, state = stack.step(stack.init_state(), jnp.ones(8), True)
    """

    blocks: tuple[S5Block, ...]

    def __init__(
        self, num_layers: int, model_size: int, state_size: int, *, key: PRNGKeyArray, **block_kwargs
    ):
        """``block_kwargs`` go to every :class:`S5Block` (dropout, and S5SSM options)."""
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        keys = jax.random.split(key, num_layers)
        self.blocks = tuple(S5Block(model_size, state_size, key=k, **block_kwargs) for k in keys)

    def init_state(self) -> tuple[State, ...]:
        """One zero state per block."""
        return tuple(block.init_state() for block in self.blocks)

    def reset_values(self) -> tuple[State, ...]:
        """What a reset puts in place, per block: its learned reset state, or zeros."""
        return tuple(block.reset_value() for block in self.blocks)

    def __call__(
        self,
        u: Sequence,
        reset: Resets | None = None,
        x0: tuple[State, ...] | None = None,
        *,
        key: PRNGKeyArray | None = None,
    ) -> tuple[Sequence, tuple[States, ...]]:
        """Sequence mode: (outputs [T, H], tuple of hidden states [T, hidden_size] per block)."""
        x0 = (None,) * len(self.blocks) if x0 is None else x0
        keys = (None,) * len(self.blocks) if key is None else tuple(jax.random.split(key, len(self.blocks)))
        hidden = []
        for block, x0_block, block_key in zip(self.blocks, x0, keys, strict=True):
            u, xs = block(u, reset, x0_block, key=block_key)
            hidden.append(xs)
        return u, tuple(hidden)

    def step(
        self, state: tuple[State, ...], u_t: Step, reset_t: Reset = False
    ) -> tuple[Step, tuple[State, ...]]:
        """Step mode: (output [H], tuple of new states per block)."""
        new_state = []
        for block, x_prev in zip(self.blocks, state, strict=True):
            u_t, x = block.step(x_prev, u_t, reset_t)
            new_state.append(x)
        return u_t, tuple(new_state)
