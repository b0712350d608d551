"""Linear recurrences with episode resets: x_t = a_t ⊙ ((1 − r_t) ⊙ x_{t−1} + r_t ⊙ s) + b_t.

Two implementations share one signature: a sequential ``jax.lax.scan`` and a parallel
``jax.lax.associative_scan``. For the parallel one every reset and the initial state are folded into
the affine elements *before* scanning (see :func:`fold_resets`), so the scan operator is the plain
composition of affine maps and is associative for any reset state ``s``. Folding ``s`` inside the
binary operator instead counts it once per tree level for some tree shapes, which is wrong.
"""

from typing import Literal

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Inexact

Method = Literal["auto", "associative", "sequential"]
_METHODS = ("auto", "associative", "sequential")


def compose_affine(earlier: tuple[Array, Array], later: tuple[Array, Array]) -> tuple[Array, Array]:
    """Compose two affine maps x ↦ a x + b: apply ``earlier`` first, then ``later``.

    (a_i, b_i) ∘ (a_j, b_j) = (a_j a_i, a_j b_i + b_j). This is the binary operator of the
    associative scan; it is associative because function composition is.
    """
    a_i, b_i = earlier
    a_j, b_j = later
    return a_j * a_i, a_j * b_i + b_j


def _reset_mask(reset: ArrayLike, b: Array) -> Array:
    """Reset flags [T] or [T, ...] right-padded with unit dims so they broadcast against ``b``."""
    reset = jnp.asarray(reset)
    if reset.ndim == 0 or reset.shape[0] != b.shape[0] or reset.ndim > b.ndim:
        raise ValueError(
            f"reset must have shape [T] or [T, ...] with T={b.shape[0]} matching b's time axis "
            f"(b has shape {b.shape}); got {reset.shape}"
        )
    mask = reset.reshape(reset.shape + (1,) * (b.ndim - reset.ndim))
    if not _broadcasts_to(mask.shape, b.shape):
        raise ValueError(f"reset shape {reset.shape} does not broadcast over b's leading dims {b.shape}")
    return mask


def _fold_into_inputs(a, a_first, b, r, x0, reset_state):
    """b'_t = b_t + r_t a_t s, then b'_1 += a_1 (1 − r_1) x_0 (``r`` a bool mask or None).

    ``a`` broadcasts against ``b`` (full or constant over time); ``a_first`` is the first step's a.
    """
    if r is not None and reset_state is not None:
        b = jnp.where(r, b + a * jnp.asarray(reset_state), b)
    if x0 is not None:
        carried = a_first * jnp.asarray(x0)
        b = b.at[0].add(carried if r is None else jnp.where(r[0], jnp.zeros((), carried.dtype), carried))
    return b


def fold_resets(
    a: Inexact[ArrayLike, "..."],
    b: Inexact[ArrayLike, "T ..."],
    reset: ArrayLike | None = None,
    x0: ArrayLike | None = None,
    reset_state: ArrayLike | None = None,
) -> tuple[Inexact[Array, "T ..."], Inexact[Array, "T ..."]]:
    """Fold resets, reset state and initial state into plain affine elements (a'_t, b'_t).

    a'_t = a_t (1 − r_t),  b'_t = b_t + r_t a_t s,  b'_1 += a'_1 x_0.
    Afterwards x_t = a'_t x_{t−1} + b'_t with x_0 = 0 gives the same x_{1:T} as the resettable
    recurrence, so any scan of the plain operator :func:`compose_affine` is exact.
    """
    b = jnp.asarray(b)
    a = jnp.broadcast_to(jnp.asarray(a, dtype=jnp.result_type(a, b)), b.shape)
    # Selects rather than products with r: same values, and cheaper than complex multiplies.
    r = None if reset is None else _reset_mask(reset, b).astype(bool)
    b = _fold_into_inputs(a, a[0], b, r, x0, reset_state)
    if r is not None:
        a = jnp.where(r, jnp.zeros((), a.dtype), a)
    return a, b


def _associative(a, b, reset, x0, reset_state):
    if _constant_over_time(a, b):
        return _associative_constant(a, b, reset, x0, reset_state)
    a, b = fold_resets(a, b, reset, x0, reset_state)
    _, xs = jax.lax.associative_scan(compose_affine, (a, b), axis=0)
    return xs


def _constant_over_time(a, b) -> bool:
    return jnp.ndim(a) < jnp.ndim(b) or jnp.shape(a)[0] == 1


def _promote(a, b):
    """``a`` and ``b`` in their common dtype; a transition constant over time loses its unit time axis."""
    b = jnp.asarray(b)
    dtype = jnp.result_type(a, b)
    a = jnp.asarray(a, dtype)
    if a.ndim == b.ndim and a.shape[0] == 1:
        a = a[0]
    return a, b.astype(dtype)


def _associative_constant(a, b, reset, x0, reset_state):
    """Parallel scan specialised to a transition ``a`` that is constant over time (the S5 case).

    An element covering n steps is the affine map x ↦ (aⁿ·m) x + β, where m ∈ {0, 1} says whether
    no reset happened inside it. The recursion pairs elements exactly as ``lax.associative_scan``
    does, so in every combine the later operand covers 2^level steps and its transition is
    a^(2^level)·m: one power per level (by repeated squaring) and a mask broadcast over the state
    axis replace the full [T, ..., P] tensor of transitions the generic scan carries.
    """
    a, b = _promote(a, b)
    r = None if reset is None else _reset_mask(reset, b).astype(bool)
    b = _fold_into_inputs(a, a, b, r, x0, reset_state)
    keep = None if r is None else (~r).astype(jnp.real(b).dtype)
    return _scan_constant(keep, b, a)


def _scan_constant(keep, b, power):
    """Inclusive prefix of the elements (power·keep_t, b_t); ``keep`` None means no resets."""
    length = b.shape[0]
    if length < 2:
        return b

    def transition(k):
        return power if keep is None else power * keep[k]

    earlier, later = slice(0, -1, 2), slice(1, None, 2)
    reduced_b = transition(later) * b[earlier] + b[later]
    reduced_keep = None if keep is None else keep[earlier] * keep[later]
    odd = _scan_constant(reduced_keep, reduced_b, power * power)
    evens = slice(2, None, 2)
    prefix = odd if length % 2 else odd[:-1]
    even = jnp.concatenate([b[:1], transition(evens) * prefix + b[evens]], axis=0)
    return _interleave(even, odd)


def _interleave(even, odd):
    """[e0, o0, e1, o1, ...]; ``even`` has as many or one more entries than ``odd``."""
    if even.shape[0] > odd.shape[0]:
        odd = jnp.concatenate([odd, jnp.zeros_like(odd[:1])], axis=0)
        merged = jnp.stack([even, odd], axis=1).reshape((-1, *even.shape[1:]))
        return merged[:-1]
    return jnp.stack([even, odd], axis=1).reshape((-1, *even.shape[1:]))


def _sequential(a, b, reset, x0, reset_state):
    a, b = _promote(a, b)
    dtype = b.dtype
    time_varying = a.ndim == b.ndim
    state_shape = b.shape[1:]
    x_init = (
        jnp.zeros(state_shape, dtype) if x0 is None else jnp.broadcast_to(jnp.asarray(x0, dtype), state_shape)
    )
    s = jnp.zeros((), dtype) if reset_state is None else jnp.asarray(reset_state, dtype)
    r = None if reset is None else _reset_mask(reset, b).astype(bool)

    def step(x_prev, inputs):
        a_t, b_t, r_t = inputs
        if r_t is not None:
            x_prev = jnp.where(r_t, s, x_prev)
        x = (a if a_t is None else a_t) * x_prev + b_t
        return x, x

    _, xs = jax.lax.scan(step, x_init, (a if time_varying else None, b, r))
    return xs


# Measured with tools/bench_scan.py (docs/benchmarks.md): on CPU the sequential scan is faster at
# every length tried (64-8192) and compiles faster. On accelerators the parallel scan's O(log T)
# depth wins once T is more than a few dozen steps.
_ASSOCIATIVE_MIN_LENGTH = {"cpu": None, "gpu": 32, "tpu": 32}


def auto_method(length: int, backend: str | None = None) -> Literal["associative", "sequential"]:
    """The method ``method="auto"`` picks for a sequence of ``length`` steps on ``backend``.

    CPU: always sequential. GPU/TPU (and unknown accelerators): associative from 32 steps on.
    """
    backend = jax.default_backend() if backend is None else backend
    threshold = _ASSOCIATIVE_MIN_LENGTH.get(backend, 32)
    if threshold is None or length < threshold:
        return "sequential"
    return "associative"


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    try:
        return jnp.broadcast_shapes(shape, target) == tuple(target)
    except ValueError:
        return False


_IMPLEMENTATIONS = {"associative": _associative, "sequential": _sequential}


def linear_recurrence(
    a: Inexact[ArrayLike, "..."],
    b: Inexact[ArrayLike, "T ..."],
    reset: ArrayLike | None = None,
    x0: Inexact[ArrayLike, "..."] | None = None,
    reset_state: Inexact[ArrayLike, "..."] | None = None,
    *,
    method: Method = "auto",
) -> Inexact[Array, "T ..."]:
    """All states of x_t = a_t ⊙ ((1 − r_t) ⊙ x_{t−1} + r_t ⊙ s) + b_t for t = 1..T.

    Args:
        a: transition, broadcastable to ``b`` (numpy rules): e.g. ``[P]`` constant over time or
            ``[T, ..., P]`` time-varying. Real or complex.
        b: inputs ``[T, ..., P]``; time is axis 0 (``jax.vmap`` for other batch layouts).
        reset: ``[T]`` or ``[T, ...]`` flags (bool or 0/1), right-padded to broadcast over ``b``.
            ``reset[t]`` marks the FIRST step of a new episode: x_{t-1} is replaced by ``s`` before
            step t, so with s = 0, x_t = b_t.
        x0: state before the first step, broadcastable to ``b.shape[1:]``; default zeros.
        reset_state: ``s``, broadcastable to ``b.shape[1:]``; default zeros (may be learned).
        method: ``"sequential"`` (``lax.scan``), ``"associative"`` (``lax.associative_scan``,
            O(log T) depth) or ``"auto"`` (see :func:`auto_method`).

    Returns:
        ``xs`` with ``xs[t] = x_t``, shape ``b.shape``, dtype ``result_type(a, b)``.

    Example:
        >>> xs = linear_recurrence(jnp.full(4, 0.5), jnp.ones((3, 4)), reset=jnp.array([0, 0, 1]))
        >>> xs[:, 0].tolist()
        [1.0, 1.5, 1.0]
    """
    if method not in _METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {_METHODS}")
    b = jnp.asarray(b)
    if b.ndim == 0:
        raise ValueError("b must have a time axis: shape [T, ...]")
    if not _broadcasts_to(jnp.shape(a), b.shape):
        raise ValueError(f"a with shape {jnp.shape(a)} does not broadcast to b's shape {b.shape}")
    for name, value in (("x0", x0), ("reset_state", reset_state)):
        if value is not None and not _broadcasts_to(jnp.shape(value), b.shape[1:]):
            raise ValueError(f"{name} with shape {jnp.shape(value)} does not broadcast to {b.shape[1:]}")
    if method == "auto":
        method = auto_method(b.shape[0])
    return _IMPLEMENTATIONS[method](a, b, reset, x0, reset_state)
