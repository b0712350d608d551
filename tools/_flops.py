"""Matmul and convolution FLOPs of a JAX function, counted from its jaxpr.

XLA's cost analysis counts the body of a loop once; R2I's update is mostly loops (imagination, the GRU,
the sequential scan), so this walks the jaxpr instead and multiplies each ``scan`` body by its length.
Only ``dot_general`` and ``conv_general_dilated`` are counted (2 FLOPs per multiply-add): they are where
the time goes, and what a matmul-throughput comparison needs. Elementwise work is left out.
"""

import math

import equinox as eqx
import jax
from jax.extend import core


def _dot_flops(eqn) -> int:
    lhs, rhs = (v.aval.shape for v in eqn.invars[:2])
    (lhs_contract, rhs_contract), (lhs_batch, _) = eqn.params["dimension_numbers"]
    batch = math.prod(lhs[d] for d in lhs_batch)
    contract = math.prod(lhs[d] for d in lhs_contract)
    lhs_free = math.prod(n for d, n in enumerate(lhs) if d not in (*lhs_contract, *lhs_batch))
    rhs_free = math.prod(
        n for d, n in enumerate(rhs) if d not in (*rhs_contract, *eqn.params["dimension_numbers"][1][1])
    )
    flops = 2 * batch * contract * lhs_free * rhs_free
    return flops * (4 if jax.numpy.issubdtype(eqn.invars[0].aval.dtype, jax.numpy.complexfloating) else 1)


def _conv_flops(eqn) -> int:
    out = eqn.outvars[0].aval.shape
    rhs = eqn.invars[1].aval.shape
    spec = eqn.params["dimension_numbers"]
    kernel_in = rhs[spec.rhs_spec[1]]
    kernel_spatial = math.prod(rhs[d] for d in spec.rhs_spec[2:])
    return 2 * math.prod(out) * kernel_in * kernel_spatial


def _sub_jaxprs(eqn):
    for value in eqn.params.values():
        values = value if isinstance(value, tuple | list) else (value,)
        for v in values:
            if isinstance(v, core.ClosedJaxpr):
                yield v.jaxpr
            elif isinstance(v, core.Jaxpr):
                yield v


def jaxpr_flops(jaxpr) -> int:
    """Matmul + conv FLOPs of ``jaxpr``; scan bodies times their length, cond the costliest branch."""
    total = 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "dot_general":
            total += _dot_flops(eqn)
        elif name == "conv_general_dilated":
            total += _conv_flops(eqn)
        elif name == "cond":
            total += max(jaxpr_flops(b.jaxpr) for b in eqn.params["branches"])
        else:
            inner = sum(jaxpr_flops(sub) for sub in _sub_jaxprs(eqn))
            total += inner * (eqn.params["length"] if name == "scan" else 1)
    return total


def count_flops(fn, *args) -> int:
    """Matmul + conv FLOPs of one call ``fn(*args)``; non-array arguments are static (as in
    ``eqx.filter_jit``)."""
    closed, _, _ = eqx.filter_make_jaxpr(fn)(*args)
    return jaxpr_flops(closed.jaxpr)
