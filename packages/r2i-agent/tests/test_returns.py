"""λ-returns, return scale and EMA against values computed by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from r2i_agent._returns import ReturnScale, ema_update, lambda_returns, update_return_scale


def test_lambda_returns_by_hand():
    # H = 2: states s0, s1, s2. R_1 = r_2 + γ c_2 ((1−λ) v_2 + λ v_2) = r_2 + γ c_2 v_2;
    # R_0 = r_1 + γ c_1 ((1−λ) v_1 + λ R_1).
    r, c, v = [9.0, 1.0, 2.0], [9.0, 1.0, 0.5], [9.0, 10.0, 4.0]
    gamma, lam = 0.9, 0.8
    R1 = 2.0 + 0.9 * 0.5 * 4.0
    R0 = 1.0 + 0.9 * 1.0 * (0.2 * 10.0 + 0.8 * R1)
    got = lambda_returns(jnp.array(r), jnp.array(c), jnp.array(v), gamma, lam)
    np.testing.assert_allclose(np.asarray(got), [R0, R1], rtol=1e-6)


def test_lambda_returns_limits():
    """λ = 0 gives one-step TD targets; λ = 1 gives discounted rewards bootstrapped at the end."""
    rng = np.random.default_rng(0)
    r, c, v = (jnp.asarray(rng.random((6, 3)), jnp.float32) for _ in range(3))
    td = lambda_returns(r, c, v, 0.99, 0.0)
    np.testing.assert_allclose(np.asarray(td), np.asarray(r[1:] + 0.99 * c[1:] * v[1:]), rtol=1e-6)
    mc = np.asarray(lambda_returns(r, c, v, 0.99, 1.0))
    want = np.asarray(v[-1])
    for t in reversed(range(5)):
        want = np.asarray(r[t + 1]) + 0.99 * np.asarray(c[t + 1]) * want
        np.testing.assert_allclose(mc[t], want, rtol=1e-5)


def test_return_scale_tracks_percentile_range():
    returns = jnp.arange(101.0)  # P5 = 5, P95 = 95
    state = update_return_scale(ReturnScale.init(), returns, decay=0.99)
    np.testing.assert_allclose([float(state.low), float(state.high)], [0.05, 0.95], rtol=1e-6)
    assert float(state.scale) == 1.0  # range 0.9 < 1: advantages are not scaled up
    for _ in range(2000):
        state = update_return_scale(state, returns, decay=0.99)
    assert float(state.scale) == pytest.approx(90.0, rel=1e-3)


def test_ema_update():
    slow = {"w": jnp.zeros(3)}
    fast = {"w": jnp.ones(3)}
    out = ema_update(slow, fast, 0.02)
    np.testing.assert_allclose(np.asarray(out["w"]), 0.02)
    assert jax.tree_util.tree_structure(out) == jax.tree_util.tree_structure(slow)
