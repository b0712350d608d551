"""linear_recurrence against a plain float64 NumPy loop, written here independently of the library."""

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings

from ssmscan import compose_affine, fold_resets, linear_recurrence

METHODS = ["sequential", "associative"]


def reference_recurrence(a, b, reset, x0, s):
    """x_t = a_t ((1 - r_t) x_{t-1} + r_t s) + b_t, one step at a time, complex128."""
    b = np.asarray(b, np.complex128)
    a = np.broadcast_to(np.asarray(a, np.complex128), b.shape)
    r = np.zeros(b.shape[0], bool) if reset is None else np.asarray(reset, bool)
    r = r.reshape(r.shape + (1,) * (b.ndim - r.ndim))
    x = np.broadcast_to(np.zeros(()) if x0 is None else x0, b.shape[1:]).astype(np.complex128)
    s = np.zeros(()) if s is None else s
    out = np.empty_like(b)
    for t in range(b.shape[0]):
        start = np.broadcast_to(r[t], x.shape)
        x = a[t] * np.where(start, s, x) + b[t]
        out[t] = x
    return out


def reference_gradients(a, b, reset, x0, s, w):
    """Holomorphic derivatives of F = Σ_t w_t x_t w.r.t. a, b, x0, s by an explicit adjoint loop."""
    b = np.asarray(b, np.complex128)
    a_full = np.broadcast_to(np.asarray(a, np.complex128), b.shape)
    r = np.asarray(reset, np.float64).reshape((b.shape[0],) + (1,) * (b.ndim - 1))
    xs = reference_recurrence(a, b, reset, x0, s)
    previous = np.concatenate([np.broadcast_to(x0, b.shape[1:])[None], xs[:-1]])
    carried = (1 - r) * previous + r * s  # the state each step multiplies by a_t
    adjoint = np.empty_like(b)
    running = np.zeros(b.shape[1:], np.complex128)
    for t in reversed(range(b.shape[0])):
        running = w[t] + running
        adjoint[t] = running
        running = running * a_full[t] * (1 - r[t])
    d_a = adjoint * carried
    d_b = adjoint
    d_x0 = adjoint[0] * a_full[0] * (1 - r[0])
    d_s = (adjoint * a_full * r).sum(0)
    return d_a, d_b, d_x0, d_s


def random_complex(rng, shape, scale=1.0):
    return scale * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))


def random_transition(rng, shape):
    """|a| < 1, as for a stable discretized SSM."""
    return rng.uniform(0.3, 0.99, shape) * np.exp(1j * rng.uniform(-np.pi, np.pi, shape))


def random_resets(rng, length, shape=()):
    """Resets at random positions, always including t = 0 and a pair of consecutive steps."""
    reset = rng.random((length, *shape)) < 0.2
    reset[0] = True
    if length >= 4:
        reset[2:4] = True
    return reset


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("batch", [(), (3,), (2, 3)])
@pytest.mark.parametrize("time_varying", [False, True])
@pytest.mark.parametrize("length", [1, 5, 64])
def test_matches_float64_loop(method, batch, time_varying, length):
    rng = np.random.default_rng(hash((method, batch, time_varying, length)) % 2**32)
    P = 4
    b = random_complex(rng, (length, *batch, P))
    a = random_transition(rng, (length, *batch, P) if time_varying else (P,))
    x0 = random_complex(rng, (*batch, P))
    s = random_complex(rng, (P,))
    reset = random_resets(rng, length)
    got = linear_recurrence(a, b, reset, x0, s, method=method)
    want = reference_recurrence(a, b, reset, x0, s)
    assert got.dtype == jnp.complex128
    np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=1e-10)


@pytest.mark.parametrize("method", METHODS)
def test_per_sequence_resets_broadcast_over_state(method):
    """reset [T, B] applies per batch element and broadcasts over the state axis."""
    rng = np.random.default_rng(1)
    T, B, P = 20, 3, 5
    a, b = random_transition(rng, (P,)), random_complex(rng, (T, B, P))
    reset = random_resets(rng, T, (B,))
    s = random_complex(rng, (B, P))
    got = np.asarray(linear_recurrence(a, b, reset, None, s, method=method))
    for i in range(B):
        want = reference_recurrence(a, b[:, i], reset[:, i], None, s[i])
        np.testing.assert_allclose(got[:, i], want, rtol=0, atol=1e-10)


@pytest.mark.parametrize("method", METHODS)
def test_real_inputs_stay_real(method):
    rng = np.random.default_rng(2)
    a, b = rng.uniform(-0.9, 0.9, (7, 3)), rng.standard_normal((7, 3))
    reset = np.array([0, 0, 1, 0, 1, 1, 0], bool)
    got = linear_recurrence(a, b, reset, np.ones(3), np.full(3, 2.0), method=method)
    assert got.dtype == jnp.float64
    np.testing.assert_allclose(
        np.asarray(got), reference_recurrence(a, b, reset, np.ones(3), 2.0).real, atol=1e-12
    )


@pytest.mark.parametrize("method", METHODS)
def test_reset_equals_fresh_start_from_reset_state(method):
    """A reset at t gives exactly the run that starts at t from x_{t-1} = s, and leaves x_{<t} alone."""
    rng = np.random.default_rng(3)
    T, P, t = 30, 6, 17
    a, b = random_transition(rng, (T, P)), random_complex(rng, (T, P))
    x0, s = random_complex(rng, (P,)), random_complex(rng, (P,))
    reset = np.zeros(T, bool)
    reset[t] = True
    with_reset = np.asarray(linear_recurrence(a, b, reset, x0, s, method=method))
    without = np.asarray(linear_recurrence(a, b, None, x0, method=method))
    fresh = np.asarray(linear_recurrence(a[t:], b[t:], None, s, method=method))
    np.testing.assert_allclose(with_reset[:t], without[:t], atol=1e-12)
    np.testing.assert_allclose(with_reset[t:], fresh, atol=1e-12)
    np.testing.assert_allclose(with_reset[t], a[t] * s + b[t], atol=1e-12)  # not one step early


@pytest.mark.parametrize("method", METHODS)
def test_defaults_are_zero_states(method):
    rng = np.random.default_rng(4)
    a, b = random_transition(rng, (4,)), random_complex(rng, (9, 4))
    reset = random_resets(rng, 9)
    np.testing.assert_allclose(
        np.asarray(linear_recurrence(a, b, reset, method=method)),
        reference_recurrence(a, b, reset, np.zeros(4), np.zeros(4)),
        atol=1e-12,
    )
    np.testing.assert_allclose(
        np.asarray(linear_recurrence(a, b, None, method=method)),
        np.asarray(linear_recurrence(a, b, np.zeros(9, bool), method=method)),
        atol=0,
    )


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("time_varying", [False, True])
def test_gradients_match_adjoint_loop(method, time_varying):
    """jax.grad through either method equals an independent reverse-mode loop (float64, 1e-10).

    Complex inputs are parametrized by real and imaginary parts, so the gradient of the real loss
    Re(Σ w_t x_t) w.r.t. (re, im) is (Re F', −Im F') for the holomorphic derivative F'.
    """
    rng = np.random.default_rng(5 + time_varying)
    T, B, P = 24, 2, 3
    a = random_transition(rng, (T, B, P) if time_varying else (P,))
    b, w = random_complex(rng, (T, B, P)), random_complex(rng, (T, B, P))
    x0, s = random_complex(rng, (B, P)), random_complex(rng, (P,))
    reset = random_resets(rng, T)

    def loss(parts):
        a_, b_, x0_, s_ = (jax.lax.complex(re, im) for re, im in parts)
        xs = linear_recurrence(a_, b_, reset, x0_, s_, method=method)
        return jnp.sum((w * xs).real)

    grads = jax.grad(loss)(tuple((jnp.asarray(z.real), jnp.asarray(z.imag)) for z in (a, b, x0, s)))
    d_a, d_b, d_x0, d_s = reference_gradients(a, b, reset, x0, s, w)
    if not time_varying:
        d_a = d_a.sum(axis=(0, 1))
    d_s = d_s.sum(axis=0)  # s is shared over the batch
    for (g_re, g_im), want in zip(grads, (d_a, d_b, d_x0, d_s), strict=True):
        np.testing.assert_allclose(np.asarray(g_re), want.real, rtol=0, atol=1e-10)
        np.testing.assert_allclose(np.asarray(g_im), -want.imag, rtol=0, atol=1e-10)


@pytest.mark.parametrize("method", METHODS)
def test_jit_vmap(method):
    rng = np.random.default_rng(6)
    a, b = random_transition(rng, (4,)), random_complex(rng, (5, 11, 4))
    reset = rng.random((5, 11)) < 0.3
    fn = jax.jit(jax.vmap(lambda b_, r_: linear_recurrence(a, b_, r_, method=method)))
    got = np.asarray(fn(b, reset))
    for i in range(5):
        np.testing.assert_allclose(got[i], reference_recurrence(a, b[i], reset[i], None, None), atol=1e-10)


@pytest.mark.parametrize("time_varying", [False, True])
def test_associative_equals_loop_for_every_length_up_to_64(time_varying):
    """Each length gives a different scan tree; a reset state folded in wrongly shows up in some.

    Constant transitions take the specialised scan (powers of a per level), time-varying ones the
    generic scan over folded affine elements; both must be exact for every tree shape.
    """
    rng = np.random.default_rng(7)
    P = 2
    fn = jax.jit(lambda a, b, r, x0, s: linear_recurrence(a, b, r, x0, s, method="associative"))
    for T in range(1, 65):
        a = random_transition(rng, (T, P) if time_varying else (1, P))
        b = random_complex(rng, (T, P))
        x0, s = random_complex(rng, (P,)), random_complex(rng, (P,), scale=3.0)
        reset = rng.random(T) < 0.4
        np.testing.assert_allclose(
            np.asarray(fn(a, b, reset, x0, s)), reference_recurrence(a, b, reset, x0, s), atol=1e-10
        )


complex_numbers = st.builds(
    complex,
    st.floats(-2, 2, allow_nan=False, allow_infinity=False),
    st.floats(-2, 2, allow_nan=False, allow_infinity=False),
)


# An element before folding: (a, b, reset flag, reset state s). Folding runs in the test body, not in the
# strategy, because JAX's first compilation of an op must not happen while hypothesis draws.
raw_elements = st.tuples(complex_numbers, complex_numbers, st.booleans(), complex_numbers)


def fold_one(element):
    """One affine element after resets were folded in: (a(1−r), b + r a s)."""
    a, b, r, s = element
    folded_a, folded_b = fold_resets(np.array([a]), np.array([b]), np.array([r]), None, s)
    return folded_a[0], folded_b[0]


@settings(max_examples=200, deadline=None)
@given(raw_elements, raw_elements, raw_elements)
def test_operator_is_associative(raw1, raw2, raw3):
    e1, e2, e3 = fold_one(raw1), fold_one(raw2), fold_one(raw3)
    left = compose_affine(compose_affine(e1, e2), e3)
    right = compose_affine(e1, compose_affine(e2, e3))
    for x, y in zip(left, right, strict=True):
        assert abs(complex(x) - complex(y)) <= 1e-12 * (1 + abs(complex(x)))


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 64),
    st.integers(0, 2**31 - 1),
    st.sampled_from([(), (2,), (1, 3)]),
    st.floats(0.0, 1.0),
    st.sampled_from(["time-varying", "constant", "constant per sequence"]),
)
def test_associative_equals_sequential_property(length, seed, batch, reset_rate, transition):
    rng = np.random.default_rng(seed)
    P = 3
    shapes = {"time-varying": (length, *batch, P), "constant": (P,), "constant per sequence": (*batch, P)}
    a = random_transition(rng, shapes[transition])
    b = random_complex(rng, (length, *batch, P))
    x0, s = random_complex(rng, (*batch, P)), random_complex(rng, (P,))
    reset = rng.random(length) < reset_rate
    want = reference_recurrence(a, b, reset, x0, s)
    for method in METHODS:
        got = linear_recurrence(a, b, reset, x0, s, method=method)
        np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=1e-10)


def test_auto_method_rule():
    from ssmscan import auto_method

    assert auto_method(8192, "cpu") == "sequential"
    assert auto_method(16, "gpu") == "sequential"
    assert auto_method(1024, "gpu") == "associative"
    rng = np.random.default_rng(8)
    a, b = random_transition(rng, (3,)), random_complex(rng, (10, 3))
    np.testing.assert_allclose(
        np.asarray(linear_recurrence(a, b, method="auto")),
        reference_recurrence(a, b, None, None, None),
        atol=1e-12,
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "parallel"}, "unknown method|parallel"),
        ({"a": np.ones(5)}, "does not broadcast"),
        ({"reset": np.zeros(7, bool)}, "reset must have shape"),
        ({"reset": np.zeros((6, 4), bool)}, "does not broadcast"),
        ({"x0": np.ones(5)}, "x0 with shape"),
        ({"reset_state": np.ones((4, 3))}, "reset_state with shape"),
        ({"b": np.float64(1.0)}, "time axis|'b'"),
    ],
)
def test_bad_input_has_clear_message(kwargs, message):
    args = {"a": np.full(3, 0.5), "b": np.ones((6, 2, 3))}
    args.update(kwargs)
    # A bad Literal is refused by the jaxtyping hook (TypeError) under pytest, by ValueError without it.
    with pytest.raises((ValueError, TypeError), match=message):
        linear_recurrence(**args)


def test_fold_resets_drops_x0_when_first_step_resets():
    a, b = np.full((3, 1), 0.5), np.ones((3, 1))
    folded_a, folded_b = fold_resets(a, b, np.array([1, 0, 0]), np.full(1, 100.0), np.full(1, 2.0))
    np.testing.assert_allclose(np.asarray(folded_a[:, 0]), [0.0, 0.5, 0.5])
    np.testing.assert_allclose(np.asarray(folded_b[:, 0]), [2.0, 1.0, 1.0])


def test_fixed_shapes_trace_once():
    """Same shapes → one trace; this is what training loops rely on."""
    import equinox as eqx

    @eqx.debug.assert_max_traces(max_traces=1)
    def run(a, b, r):
        return linear_recurrence(a, b, r, method="associative")

    fn = jax.jit(run)
    rng = np.random.default_rng(9)
    for _ in range(3):
        fn(random_transition(rng, (4,)), random_complex(rng, (12, 4)), rng.random(12) < 0.5)
