"""ssmscan: resettable parallel linear recurrences and S5 state-space layers for JAX/Equinox.

Public API:
    linear_recurrence   x_t = a_t ⊙ ((1 − r_t) x_{t−1} + r_t s) + b_t, sequential or parallel
    fold_resets, compose_affine, auto_method   the pieces of the parallel scan
    discretize_bilinear, discretize_zoh        continuous → discrete diagonal systems
    hippo_n                                     HiPPO-N eigendecomposition (S5 initialization)
    S5SSM, S5Block, S5Stack                     equinox layers with sequence and step modes
"""

from ._discretize import discretize_bilinear, discretize_zoh
from ._init import hippo_legs, hippo_n, init_B_tilde, init_C_tilde, init_log_step
from ._layer import S5SSM, S5Block, S5Stack
from ._scan import auto_method, compose_affine, fold_resets, linear_recurrence

__all__ = [
    "S5SSM",
    "S5Block",
    "S5Stack",
    "auto_method",
    "compose_affine",
    "discretize_bilinear",
    "discretize_zoh",
    "fold_resets",
    "hippo_legs",
    "hippo_n",
    "init_B_tilde",
    "init_C_tilde",
    "init_log_step",
    "linear_recurrence",
]
__version__ = "0.1.0"
