"""HiPPO-N initialization against the HiPPO-LegS matrix written out here."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssmscan import hippo_n, init_B_tilde, init_C_tilde


def legs_matrix(N):
    A = np.zeros((N, N))
    for n in range(N):
        for k in range(N):
            if n > k:
                A[n, k] = -np.sqrt((2 * n + 1) * (2 * k + 1))
            elif n == k:
                A[n, k] = -(n + 1)
    return A


def hippo_n_matrix(N):
    p = np.sqrt(np.arange(N) + 0.5)
    return legs_matrix(N) + np.outer(p, p)


@pytest.mark.parametrize(("state_size", "blocks"), [(8, 1), (16, 1), (16, 4), (64, 8)])
def test_eigendecomposition_reconstructs_hippo_n(state_size, blocks):
    Lambda, V, Vinv = hippo_n(state_size, blocks)
    size = state_size // blocks
    want = np.kron(np.eye(blocks), hippo_n_matrix(size))
    np.testing.assert_allclose(V @ np.diag(Lambda) @ Vinv, want, atol=1e-10)
    np.testing.assert_allclose(Vinv @ V, np.eye(state_size), atol=1e-12)
    np.testing.assert_allclose(Lambda.real, -0.5, atol=1e-12)


def test_hippo_n_is_the_normal_part_of_legs():
    """HiPPO-N + ½I is skew-symmetric and HiPPO-N − LegS is rank one."""
    N = 12
    normal = hippo_n_matrix(N)
    np.testing.assert_allclose(normal + 0.5 * np.eye(N), -(normal + 0.5 * np.eye(N)).T, atol=1e-12)
    assert np.linalg.matrix_rank(normal - legs_matrix(N)) == 1


def test_each_block_lists_negative_imaginary_half_first():
    """The layer keeps each block's first half for conjugate symmetry: it must hold one of each pair."""
    Lambda, _, _ = hippo_n(16, 2)
    for block in Lambda.reshape(2, 8):
        first, second = block[:4], block[4:]
        assert np.all(first.imag <= 0)
        np.testing.assert_allclose(np.sort_complex(first.conj()), np.sort_complex(second), atol=1e-10)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="multiple of blocks"):
        hippo_n(10, 3)


def test_c_init_scales():
    """LeCun over fan-in P·H is about √H smaller than S5's per-row init (design §3)."""
    _, V, _ = hippo_n(64)
    H = 100
    s5 = init_C_tilde(jax.random.key(0), V, H, "s5", jnp.float64)
    lecun = init_C_tilde(jax.random.key(0), V, H, "lecun", jnp.float64)
    ratio = float(jnp.std(jnp.abs(s5)) / jnp.std(jnp.abs(lecun)))
    assert ratio == pytest.approx(np.sqrt(H), rel=1e-6)
    # Under pytest the jaxtyping hook refuses the bad Literal first; without it, ValueError does.
    with pytest.raises((ValueError, TypeError), match=r"unknown C initialization|glorot"):
        init_C_tilde(jax.random.key(0), V, H, "glorot")


@pytest.mark.parametrize(("state_size", "model_size"), [(64, 16), (16, 256)])
def test_b_init_is_lecun_over_the_state_size(state_size, model_size):
    """B = V B̃ is real with std 1/√P whatever H (S5 and R2I: LeCun-normal over shape (P, H), whose
    fan-in axis is P); the old 1/√H fails both cases by a factor of 2 or more."""
    _, V, Vinv = hippo_n(state_size, 4)
    B = np.asarray(V) @ np.asarray(init_B_tilde(jax.random.key(0), Vinv, model_size, jnp.float64))
    np.testing.assert_allclose(B.imag, 0.0, atol=1e-12)
    assert float(np.std(B.real)) == pytest.approx(state_size**-0.5, rel=0.05)
