"""Discretization of the diagonal continuous system x'(t) = Λ x(t) + B̃ u(t) with per-state step Δ."""

import jax.numpy as jnp
from jaxtyping import Array, Complex, Float


def discretize_bilinear(
    Lambda: Complex[Array, " P"], B_tilde: Complex[Array, "P H"], log_step: Float[Array, " P"]
) -> tuple[Complex[Array, " P"], Complex[Array, "P H"]]:
    """Bilinear (Tustin) rule: Λ̄ = (1 − ΔΛ/2)⁻¹(1 + ΔΛ/2), B̄ = (1 − ΔΛ/2)⁻¹ Δ B̃.

    Maps the open left half-plane into the unit disc, so Re Λ < 0 ⇒ |Λ̄| < 1 for every Δ > 0.
    """
    step = jnp.exp(log_step)
    inverse = 1.0 / (1.0 - 0.5 * step * Lambda)
    Lambda_bar = inverse * (1.0 + 0.5 * step * Lambda)
    B_bar = (inverse * step)[:, None] * B_tilde
    return Lambda_bar, B_bar


def discretize_zoh(
    Lambda: Complex[Array, " P"], B_tilde: Complex[Array, "P H"], log_step: Float[Array, " P"]
) -> tuple[Complex[Array, " P"], Complex[Array, "P H"]]:
    """Zero-order hold: Λ̄ = exp(ΛΔ), B̄ = Λ⁻¹(Λ̄ − 1) B̃ (exact for inputs constant over a step)."""
    step = jnp.exp(log_step)
    Lambda_bar = jnp.exp(Lambda * step)
    B_bar = ((Lambda_bar - 1.0) / Lambda)[:, None] * B_tilde
    return Lambda_bar, B_bar


DISCRETIZATIONS = {"bilinear": discretize_bilinear, "zoh": discretize_zoh}
