"""Initializers of the S5 layer: HiPPO-N eigenbasis, input/output matrices and timescales."""

from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Complex, Float, PRNGKeyArray


def hippo_legs(size: int) -> np.ndarray:
    """HiPPO-LegS matrix A (float64): A_nk = −√((2n+1)(2k+1)) for n > k, −(n+1) on the diagonal."""
    q = np.sqrt(2.0 * np.arange(size) + 1.0)
    A = -np.tril(np.outer(q, q), k=-1) - np.diag(np.arange(size) + 1.0)
    return A


def _hippo_n_block(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and unitary eigenvectors of HiPPO-N, the normal part of HiPPO-LegS.

    HiPPO-N = A + p pᵀ with p_n = √(n + ½) equals −½ I + S with S skew-symmetric, so its
    eigenvalues are −½ + iω and its eigenvectors those of the Hermitian matrix −iS.
    """
    p = np.sqrt(np.arange(size) + 0.5)
    normal = hippo_legs(size) + np.outer(p, p)
    skew = normal + 0.5 * np.eye(size)
    omega, V = np.linalg.eigh(-1j * skew)
    Lambda = -0.5 + 1j * omega
    return Lambda, V


def hippo_n(
    state_size: int, blocks: int = 1
) -> tuple[Complex[np.ndarray, " P"], Complex[np.ndarray, "P P"], Complex[np.ndarray, "P P"]]:
    """HiPPO-N initialization (S5): ``(Lambda, V, Vinv)`` with HiPPO-N = V diag(Λ) V⁻¹ per block.

    With ``blocks = J > 1`` the state is split into J independent HiPPO-N blocks of size P/J and V is
    block-diagonal. Eigenvalues come in conjugate pairs ordered so that each block's first half holds
    the eigenvalues with Im Λ ≤ 0 (the layer keeps those for conjugate symmetry). float64/complex128
    numpy arrays; cast when building parameters.
    """
    if state_size < 1 or blocks < 1 or state_size % blocks:
        raise ValueError(f"state_size ({state_size}) must be a positive multiple of blocks ({blocks})")
    size = state_size // blocks
    Lambda_block, V_block = _hippo_n_block(size)
    Lambda = np.tile(Lambda_block, blocks)
    V = np.kron(np.eye(blocks), V_block)
    return Lambda, V, V.conj().T


def _truncated_normal(key: PRNGKeyArray, shape: tuple[int, ...], std: float, dtype) -> Array:
    # A standard normal truncated to ±2 has std 0.8796; rescale so the result has std ``std``.
    return jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype) * (std / 0.87962566103423978)


def init_log_step(
    key: PRNGKeyArray, size: int, dt_min: float, dt_max: float, dtype=jnp.float32
) -> Float[Array, " P"]:
    """log Δ uniform in [log dt_min, log dt_max], one timescale per state."""
    return jax.random.uniform(key, (size,), dtype, jnp.log(dt_min), jnp.log(dt_max))


def init_B_tilde(
    key: PRNGKeyArray, Vinv: Complex[np.ndarray, "P Pfull"], model_size: int, dtype=jnp.float32
) -> Complex[Array, "P H"]:
    """B̃ = V⁻¹ B with B real [P_full, H], LeCun-normal over shape (P_full, H) as S5 and R2I do: JAX's
    ``lecun_normal`` reads fan-in from the second-to-last axis, so the std is 1/√P_full."""
    full = Vinv.shape[1]
    B = _truncated_normal(key, (full, model_size), (1.0 / full) ** 0.5, dtype)
    return jnp.asarray(Vinv, dtype=_complex(dtype)) @ B.astype(_complex(dtype))


CInit = Literal["s5", "lecun"]


def init_C_tilde(
    key: PRNGKeyArray,
    V: Complex[np.ndarray, "Pfull P"],
    model_size: int,
    scheme: CInit = "s5",
    dtype=jnp.float32,
) -> Complex[Array, "H P"]:
    """C̃ = C V with C complex [H, P_full].

    ``"s5"``: real and imaginary parts truncated-normal with variance 1/P_full per row (S5).
    ``"lecun"``: variance 1/(P_full·H), LeCun over fan-in P·H as in the published R2I code, about √H
    smaller.
    """
    full = V.shape[0]
    fan_in = {"s5": full, "lecun": full * model_size}
    if scheme not in fan_in:
        raise ValueError(f"unknown C initialization {scheme!r}; expected one of {tuple(fan_in)}")
    parts = _truncated_normal(key, (2, model_size, full), (1.0 / fan_in[scheme]) ** 0.5, dtype)
    C = jax.lax.complex(parts[0], parts[1])
    return C @ jnp.asarray(V, dtype=C.dtype)


def _complex(dtype) -> jnp.dtype:
    return jnp.result_type(dtype, jnp.complex64)
