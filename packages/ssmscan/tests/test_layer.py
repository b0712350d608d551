"""S5SSM, S5Block and S5Stack: sequence mode vs step mode vs an independent float64 NumPy layer."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssmscan import S5SSM, S5Block, S5Stack

H, P, T = 6, 8, 40


def pairs_to_complex(x):
    x = np.asarray(x)
    return x[..., 0] + 1j * x[..., 1]


def reference_discretization(xp, Lambda, step, B, discretization):
    """(Λ̄, B̄) by the textbook formulas, with the array module ``xp`` (NumPy, or jax.numpy for gradients)."""
    if discretization == "bilinear":
        denominator = 1 - step * Lambda / 2
        return (1 + step * Lambda / 2) / denominator, (step / denominator)[:, None] * B
    Lambda_bar = xp.exp(step * Lambda)
    return Lambda_bar, ((Lambda_bar - 1) / Lambda)[:, None] * B


def numpy_layer(layer, u, reset, x0):
    """S5 layer from its raw parameters, float64, one step at a time (independent of the library)."""
    Lambda = np.asarray(layer.Lambda_re) + 1j * np.asarray(layer.Lambda_im)
    step = np.exp(np.asarray(layer.log_step))
    B, C, D = pairs_to_complex(layer.B_tilde), pairs_to_complex(layer.C_tilde), np.asarray(layer.D)
    Lambda_bar, B_bar = reference_discretization(np, Lambda, step, B, layer.discretization)
    s = np.zeros(len(Lambda)) if layer.reset_state is None else pairs_to_complex(layer.reset_state)
    x, ys, xs = np.asarray(x0, complex), [], []
    for t in range(len(u)):
        x = Lambda_bar * (s if reset[t] else x) + B_bar @ u[t]
        y = (C @ x).real * (2 if layer.conj_sym else 1) + D * u[t]
        ys.append(y)
        xs.append(x)
    return np.array(ys), np.array(xs)


def with_random_reset_state(layer, key):
    if layer.reset_state is None:
        return layer
    return eqx.tree_at(lambda m: m.reset_state, layer, jax.random.normal(key, layer.reset_state.shape))


def inputs(seed, length=T, hidden=P):
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((length, H))
    reset = rng.random(length) < 0.15
    reset[5:7] = True
    x0 = rng.standard_normal(hidden) + 1j * rng.standard_normal(hidden)
    return u, reset, x0


LAYER_OPTIONS = [
    {},
    {"discretization": "zoh"},
    {"conj_sym": True, "blocks": 2},
    {"learn_reset_state": True, "blocks": 4},
    {"method": "associative", "learn_reset_state": True, "C_init": "lecun"},
]


@pytest.mark.parametrize("options", LAYER_OPTIONS)
def test_sequence_mode_matches_numpy_layer(options):
    layer = S5SSM(H, P, key=jax.random.key(0), dtype=jnp.float64, **options)
    layer = with_random_reset_state(layer, jax.random.key(1))
    u, reset, x0 = inputs(0, hidden=layer.hidden_size)
    ys, xs = layer(jnp.asarray(u), jnp.asarray(reset), jnp.asarray(x0))
    want_ys, want_xs = numpy_layer(layer, u, reset, x0)
    assert ys.shape == (T, H) and xs.shape == (T, layer.hidden_size)
    np.testing.assert_allclose(np.asarray(xs), want_xs, atol=1e-10)
    np.testing.assert_allclose(np.asarray(ys), want_ys, atol=1e-10)


def complex_layer_loss(params, u, reset, x0, conj_sym, discretization):
    """A scalar of the layer's outputs, written with complex matmuls (B̄ u, C̃ x) in a Python loop: the
    reference for the layer's gradients, which computes those products as real matmuls."""
    Lambda = params["Lambda_re"] + 1j * params["Lambda_im"]
    step = jnp.exp(params["log_step"])
    B = params["B_tilde"][..., 0] + 1j * params["B_tilde"][..., 1]
    C = params["C_tilde"][..., 0] + 1j * params["C_tilde"][..., 1]
    Lambda_bar, B_bar = reference_discretization(jnp, Lambda, step, B, discretization)
    x, total = x0, 0.0
    for t in range(u.shape[0]):
        x = Lambda_bar * jnp.where(reset[t], 0.0, x) + B_bar @ u[t]
        y = (C @ x).real * (2 if conj_sym else 1) + params["D"] * u[t]
        total = total + jnp.sum(jnp.sin(y) * (t + 1)) + jnp.sum(jnp.abs(x) ** 2) / (t + 1)
    return total


@pytest.mark.parametrize("options", [{}, {"discretization": "zoh", "conj_sym": True, "blocks": 2}])
def test_layer_gradients_match_complex_matmul_reference(options):
    layer = S5SSM(H, P, key=jax.random.key(6), dtype=jnp.float64, **options)
    u, reset, x0 = (jnp.asarray(v) for v in inputs(3, length=12, hidden=layer.hidden_size))
    names = ("Lambda_re", "Lambda_im", "log_step", "B_tilde", "C_tilde", "D")

    def layer_loss(params, u):
        module = eqx.tree_at(lambda m: [getattr(m, n) for n in names], layer, [params[n] for n in names])
        ys, xs = module(u, reset, x0)
        weights = jnp.arange(1, u.shape[0] + 1.0)
        return jnp.sum(jnp.sin(ys) * weights[:, None]) + jnp.sum(jnp.abs(xs) ** 2 / weights[:, None])

    def reference(params, u):
        return complex_layer_loss(params, u, reset, x0, layer.conj_sym, layer.discretization)

    params = {n: getattr(layer, n) for n in names}
    value, grads = jax.value_and_grad(layer_loss, argnums=(0, 1))(params, u)
    want_value, want_grads = jax.value_and_grad(reference, argnums=(0, 1))(params, u)
    np.testing.assert_allclose(float(value), float(want_value), rtol=1e-12)
    for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(want_grads), strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-9, atol=1e-10)


def run_steps(module, state, u, reset):
    def body(carry, inputs):
        y, carry = module.step(carry, *inputs)
        return carry, (y, carry)

    _, (ys, states) = jax.lax.scan(body, state, (u, reset))
    return ys, states


@pytest.mark.parametrize("options", LAYER_OPTIONS)
def test_step_mode_equals_sequence_mode_float64(options):
    layer = S5SSM(H, P, key=jax.random.key(2), dtype=jnp.float64, **options)
    layer = with_random_reset_state(layer, jax.random.key(3))
    u, reset, x0 = (jnp.asarray(v) for v in inputs(1, hidden=layer.hidden_size))
    ys, xs = layer(u, reset, x0)
    step_ys, step_xs = run_steps(layer, x0, u, reset)
    np.testing.assert_allclose(np.asarray(step_ys), np.asarray(ys), rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(step_xs), np.asarray(xs), rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["sequential", "associative"])
def test_step_mode_equals_sequence_mode_float32(method):
    with jax.enable_x64(False):
        layer = S5SSM(H, P, key=jax.random.key(4), learn_reset_state=True, method=method)
        layer = with_random_reset_state(layer, jax.random.key(5))
        u, reset, x0 = inputs(2, length=256)
        u, reset, x0 = jnp.asarray(u, jnp.float32), jnp.asarray(reset), jnp.asarray(x0, jnp.complex64)
        ys, xs = layer(u, reset, x0)
        step_ys, step_xs = run_steps(layer, x0, u, reset)
        assert ys.dtype == jnp.float32 and xs.dtype == jnp.complex64
        np.testing.assert_allclose(np.asarray(step_ys), np.asarray(ys), rtol=0, atol=1e-5)
        np.testing.assert_allclose(np.asarray(step_xs), np.asarray(xs), rtol=0, atol=1e-5)


def test_conjugate_symmetric_layer_equals_full_complex_layer():
    """2·Re(C̃ x) over P/2 states == Re(C̃ x) over the P states with each conjugate pair restored."""
    half = S5SSM(H, P, key=jax.random.key(6), conj_sym=True, dtype=jnp.float64)
    full = S5SSM(H, P, key=jax.random.key(7), dtype=jnp.float64)

    def doubled(pairs, axis, conjugate_sign):
        conjugate = pairs * jnp.array([1.0, conjugate_sign])
        return jnp.concatenate([pairs, conjugate], axis=axis)

    full = eqx.tree_at(
        lambda m: (m.Lambda_re, m.Lambda_im, m.B_tilde, m.C_tilde, m.D, m.log_step),
        full,
        (
            jnp.tile(half.Lambda_re, 2),
            jnp.concatenate([half.Lambda_im, -half.Lambda_im]),
            doubled(half.B_tilde, 0, -1.0),
            doubled(half.C_tilde, 1, -1.0),
            half.D,
            jnp.tile(half.log_step, 2),
        ),
    )
    u, reset, _ = inputs(3)
    ys_half, _ = half(jnp.asarray(u), jnp.asarray(reset))
    ys_full, _ = full(jnp.asarray(u), jnp.asarray(reset))
    np.testing.assert_allclose(np.asarray(ys_half), np.asarray(ys_full), atol=1e-10)


@pytest.mark.parametrize("discretization", ["bilinear", "zoh"])
def test_initial_discrete_eigenvalues_inside_unit_circle(discretization):
    layer = S5SSM(32, 64, key=jax.random.key(8), blocks=8, discretization=discretization)
    Lambda_bar, _ = layer.discretized()
    assert float(jnp.max(jnp.abs(Lambda_bar))) < 1.0


def test_clip_eigs_keeps_trained_eigenvalues_stable():
    layer = S5SSM(H, P, key=jax.random.key(9), clip_eigs=True)
    layer = eqx.tree_at(lambda m: m.Lambda_re, layer, jnp.full(P, 0.3, layer.Lambda_re.dtype))
    assert float(jnp.max(jnp.abs(layer.discretized()[0]))) < 1.0


def test_resets_equal_restarting_from_init_state():
    layer = S5SSM(H, P, key=jax.random.key(10), dtype=jnp.float64)
    u, _, x0 = inputs(4)
    starts = [0, 13, 14, 30]
    reset = np.zeros(T, bool)
    reset[starts] = True
    ys, xs = layer(jnp.asarray(u), jnp.asarray(reset), jnp.asarray(x0))
    for begin, end in zip(starts, [*starts[1:], T], strict=True):
        fresh_ys, fresh_xs = layer(jnp.asarray(u[begin:end]), None, layer.init_state())
        np.testing.assert_allclose(np.asarray(ys[begin:end]), np.asarray(fresh_ys), atol=1e-12)
        np.testing.assert_allclose(np.asarray(xs[begin:end]), np.asarray(fresh_xs), atol=1e-12)


def test_no_resets_equal_plain_s5():
    layer = S5SSM(H, P, key=jax.random.key(11), dtype=jnp.float64)
    u, _, _ = inputs(5)
    plain_ys, _ = layer(jnp.asarray(u))
    zero_ys, _ = layer(jnp.asarray(u), jnp.zeros(T, bool), layer.init_state())
    np.testing.assert_allclose(np.asarray(plain_ys), np.asarray(zero_ys), atol=0)
    want, _ = numpy_layer(layer, u, np.zeros(T, bool), np.zeros(P))
    np.testing.assert_allclose(np.asarray(plain_ys), want, atol=1e-10)


def test_init_state_shape_and_dtype():
    layer = S5SSM(H, P, key=jax.random.key(12), conj_sym=True)
    assert layer.init_state().shape == (P // 2,)
    assert layer.init_state().dtype == jnp.complex64  # parameters default to float32
    assert S5SSM(H, P, key=jax.random.key(12), dtype=jnp.float64).init_state().dtype == jnp.complex128


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"state_size": 9, "blocks": 2}, "divisible by blocks"),
        ({"state_size": 6, "blocks": 2, "conj_sym": True}, "even block size"),
        ({"discretization": "euler"}, "unknown discretization|euler"),
        ({"dt_min": 0.2, "dt_max": 0.1}, "dt_min"),
        ({"model_size": 0}, "positive"),
    ],
)
def test_bad_configuration_has_clear_message(kwargs, message):
    args = {"model_size": H, "state_size": P}
    args.update(kwargs)
    # A bad Literal is refused by the jaxtyping hook (TypeError) under pytest, by ValueError without it.
    with pytest.raises((ValueError, TypeError), match=message):
        S5SSM(**args, key=jax.random.key(0))


def test_wrong_input_width_is_refused():
    layer = S5SSM(H, P, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"u of shape \[T, 6\]"):
        layer(jnp.ones((T, H + 1)))


@pytest.mark.parametrize("module_cls", [S5Block, S5Stack])
def test_block_and_stack_step_mode_equals_sequence_mode(module_cls):
    args = (2, H, P) if module_cls is S5Stack else (H, P)
    module = module_cls(*args, key=jax.random.key(13), dtype=jnp.float64, learn_reset_state=True, blocks=2)
    u, reset, _ = inputs(6)
    u, reset = jnp.asarray(u), jnp.asarray(reset)
    ys, xs = module(u, reset)
    step_ys, step_xs = run_steps(module, module.init_state(), u, reset)
    np.testing.assert_allclose(np.asarray(step_ys), np.asarray(ys), atol=1e-12)
    if module_cls is S5Stack:
        assert len(xs) == len(step_xs) == 2
        for a, b in zip(xs, step_xs, strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-12)
    else:
        np.testing.assert_allclose(np.asarray(xs), np.asarray(step_xs), atol=1e-12)


def test_block_is_post_norm_residual_glu():
    block = S5Block(H, P, key=jax.random.key(14), dtype=jnp.float64)
    u = jnp.asarray(inputs(7)[0])
    z, _ = block.ssm(u)
    z = jax.nn.gelu(z)
    glu = jax.vmap(block.glu_value)(z) * jax.nn.sigmoid(jax.vmap(block.glu_gate)(z))
    pre = u + glu
    want = (pre - pre.mean(-1, keepdims=True)) / jnp.sqrt(pre.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(np.asarray(block(u)[0]), np.asarray(want), atol=1e-10)


def test_block_dropout_only_with_key():
    block = S5Block(H, P, key=jax.random.key(15), dropout=0.5)
    u = jnp.asarray(inputs(8)[0], jnp.float32)
    deterministic = block(u)[0]
    np.testing.assert_array_equal(np.asarray(block(u)[0]), np.asarray(deterministic))
    assert not np.allclose(np.asarray(block(u, key=jax.random.key(0))[0]), np.asarray(deterministic))


def test_stack_jit_vmap_grad_and_shapes():
    with jax.enable_x64(False):
        stack = S5Stack(3, H, P, key=jax.random.key(16), conj_sym=True)
        batch_u = jax.random.normal(jax.random.key(17), (4, T, H))
        batch_reset = jax.random.bernoulli(jax.random.key(18), 0.1, (4, T))

        @eqx.filter_jit
        @eqx.debug.assert_max_traces(max_traces=1)
        def loss_and_grad(model, u, reset):
            def loss(m):
                ys, xs = jax.vmap(m)(u, reset)
                return jnp.mean(ys**2) + sum(jnp.mean(jnp.abs(x) ** 2) for x in xs)

            return eqx.filter_value_and_grad(loss)(model)

        for _ in range(2):
            value, grads = loss_and_grad(stack, batch_u, batch_reset)
        ys, xs = jax.vmap(stack)(batch_u, batch_reset)
        assert ys.shape == (4, T, H)
        assert [x.shape for x in xs] == [(4, T, P // 2)] * 3
        assert np.isfinite(float(value))
        leaves = jax.tree_util.tree_leaves(eqx.filter(grads, eqx.is_inexact_array))
        assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
        assert float(jnp.abs(grads.blocks[0].ssm.log_step).sum()) > 0
        assert float(jnp.abs(grads.blocks[0].ssm.Lambda_im).sum()) > 0


def test_stack_needs_a_layer():
    with pytest.raises(ValueError, match="num_layers"):
        S5Stack(0, H, P, key=jax.random.key(0))
