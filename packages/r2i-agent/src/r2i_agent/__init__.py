"""r2i_agent: the R2I agent built on ``worldmodel`` and ``r2i_envs`` (in progress).

Public API so far:
    Replay, Field                          preallocated per-env ring buffers sampled as fixed-length windows
    lambda_returns                         TD(λ) returns of imagined trajectories
    ReturnScale, update_return_scale       EMA of the 5th-95th percentile range of returns
    ema_update                             slow-critic parameter EMA
    Actor, Critic                          policy (categorical / bounded normal) and two-hot value head
    actor_critic_losses, ActorCriticSettings, ActorCriticLosses, trajectory_weights   losses on imagination
"""

from ._actor_critic import (
    Actor,
    ActorCriticLosses,
    ActorCriticSettings,
    Critic,
    actor_critic_losses,
    trajectory_weights,
)
from ._replay import Field, Replay
from ._returns import ReturnScale, ema_update, lambda_returns, update_return_scale

__all__ = [
    "Actor",
    "ActorCriticLosses",
    "ActorCriticSettings",
    "Critic",
    "Field",
    "Replay",
    "ReturnScale",
    "actor_critic_losses",
    "ema_update",
    "lambda_returns",
    "trajectory_weights",
    "update_return_scale",
]
