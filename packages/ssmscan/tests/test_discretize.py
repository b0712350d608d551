"""Discretization against float64 references built from dense matrices and scipy's expm."""

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from ssmscan import discretize_bilinear, discretize_zoh, hippo_n


def random_system(rng, P=6, H=3):
    Lambda = -rng.uniform(0.05, 2.0, P) + 1j * rng.uniform(-5, 5, P)
    B_tilde = rng.standard_normal((P, H)) + 1j * rng.standard_normal((P, H))
    log_step = rng.uniform(np.log(1e-3), np.log(1e-1), P)
    return Lambda, B_tilde, log_step


def random_dense_system(rng, P, H):
    """A diagonal system (Λ, B̃) and the dense system A = V Λ V⁻¹, B = V B̃ for a random unitary V."""
    Lambda, B_tilde, _ = random_system(rng, P, H)
    V = np.linalg.qr(rng.standard_normal((P, P)) + 1j * rng.standard_normal((P, P)))[0]
    return Lambda, B_tilde, V, V @ np.diag(Lambda) @ V.conj().T, V @ B_tilde


def test_bilinear_matches_dense_tustin_in_eigenbasis():
    """Tustin on the dense system A = V Λ V⁻¹ (uniform Δ), mapped back to the eigenbasis."""
    P = 6
    Lambda, B_tilde, V, A, B = random_dense_system(np.random.default_rng(0), P, 3)
    step = 0.05
    left = np.linalg.inv(np.eye(P) - step / 2 * A)
    A_bar, B_bar = left @ (np.eye(P) + step / 2 * A), left @ (step * B)
    Lambda_bar, B_bar_diag = discretize_bilinear(
        jnp.asarray(Lambda), jnp.asarray(B_tilde), jnp.full(P, np.log(step))
    )
    np.testing.assert_allclose(V.conj().T @ A_bar @ V, np.diag(np.asarray(Lambda_bar)), atol=1e-12)
    np.testing.assert_allclose(V.conj().T @ B_bar, np.asarray(B_bar_diag), atol=1e-12)


def test_zoh_matches_expm_of_augmented_system():
    """exp([[λΔ, Δ], [0, 0]]) = [[exp(λΔ), ∫₀^Δ exp(λτ) dτ], [0, 1]] per state, with per-state Δ."""
    rng = np.random.default_rng(1)
    Lambda, B_tilde, log_step = random_system(rng)
    Lambda_bar, B_bar = discretize_zoh(jnp.asarray(Lambda), jnp.asarray(B_tilde), jnp.asarray(log_step))
    for p, (lam, step) in enumerate(zip(Lambda, np.exp(log_step), strict=True)):
        block = scipy.linalg.expm(np.array([[lam * step, step], [0.0, 0.0]]))
        np.testing.assert_allclose(complex(Lambda_bar[p]), block[0, 0], atol=1e-12)
        np.testing.assert_allclose(np.asarray(B_bar[p]), block[0, 1] * B_tilde[p], atol=1e-12)


def test_zoh_matches_expm_of_dense_system():
    P, H = 5, 2
    Lambda, B_tilde, V, A, B = random_dense_system(np.random.default_rng(2), P, H)
    step = 0.07
    augmented = np.zeros((P + H, P + H), complex)
    augmented[:P, :P], augmented[:P, P:] = A * step, B * step
    dense = scipy.linalg.expm(augmented)
    Lambda_bar, B_bar = discretize_zoh(jnp.asarray(Lambda), jnp.asarray(B_tilde), jnp.full(P, np.log(step)))
    np.testing.assert_allclose(V.conj().T @ dense[:P, :P] @ V, np.diag(np.asarray(Lambda_bar)), atol=1e-11)
    np.testing.assert_allclose(V.conj().T @ dense[:P, P:], np.asarray(B_bar), atol=1e-11)


@pytest.mark.parametrize("rule", [discretize_bilinear, discretize_zoh])
@pytest.mark.parametrize("blocks", [1, 4])
def test_hippo_initialization_is_stable(rule, blocks):
    """|Λ̄| < 1 over the whole initial timescale range dt ∈ [1e-3, 1e-1]."""
    Lambda, _, _ = hippo_n(64, blocks)
    for step in (1e-3, 1e-2, 1e-1):
        Lambda_bar, _ = rule(jnp.asarray(Lambda), jnp.ones((64, 1), complex), jnp.full(64, np.log(step)))
        assert float(jnp.max(jnp.abs(Lambda_bar))) < 1.0


def test_rules_agree_for_small_steps():
    """Both rules are consistent discretizations: they agree to O(Δ³) per step."""
    rng = np.random.default_rng(3)
    Lambda, B_tilde, _ = random_system(rng)
    log_step = jnp.full(6, np.log(1e-4))
    for got, want in zip(
        discretize_bilinear(jnp.asarray(Lambda), jnp.asarray(B_tilde), log_step),
        discretize_zoh(jnp.asarray(Lambda), jnp.asarray(B_tilde), log_step),
        strict=True,
    ):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-10)
