"""r2i_agent: the R2I agent built on ``worldmodel`` and ``r2i_envs`` (in progress).

Public API so far:
    Replay, Field                          preallocated per-env ring buffers sampled as fixed-length windows
    lambda_returns                         TD(λ) returns of imagined trajectories
    ReturnScale, update_return_scale       EMA of the 5th-95th percentile range of returns
    ema_update                             slow-critic parameter EMA
"""

from ._replay import Field, Replay
from ._returns import ReturnScale, ema_update, lambda_returns, update_return_scale

__all__ = ["Field", "Replay", "ReturnScale", "ema_update", "lambda_returns", "update_return_scale"]
