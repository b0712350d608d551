"""r2i_agent: the R2I agent (actor-critic, replay, training loop, checkpoints, CLI) on ``worldmodel`` and
``r2i_envs``.

Public API:
    train, evaluate                        run / evaluate an agent (what ``r2i-agent train|eval`` call)
    AgentConfig, ActorCriticConfig, TrainConfig, AGENT_PRESETS, agent_preset   typed configuration
    Agent, make_agent, make_update, act    the learned parts, the jitted update, the acting step
    Replay, Field                          preallocated per-env ring buffers sampled as fixed-length windows
    Actor, Critic, actor_critic_losses, ActorCriticSettings, ActorCriticLosses, trajectory_weights
    lambda_returns, ReturnScale, update_return_scale, ema_update   return math

Names are imported on first use, so ``r2i-agent --help`` and its input checks start without JAX.
"""

import importlib
from typing import Any

_EXPORTS = {
    "train": "_train",
    "evaluate": "_train",
    "AgentConfig": "_config",
    "ActorCriticConfig": "_config",
    "TrainConfig": "_config",
    "AGENT_PRESETS": "_config",
    "agent_preset": "_config",
    "Agent": "_agent",
    "make_agent": "_agent",
    "make_update": "_agent",
    "act": "_agent",
    "Replay": "_replay",
    "Field": "_replay",
    "Actor": "_actor_critic",
    "Critic": "_actor_critic",
    "actor_critic_losses": "_actor_critic",
    "ActorCriticSettings": "_actor_critic",
    "ActorCriticLosses": "_actor_critic",
    "trajectory_weights": "_actor_critic",
    "lambda_returns": "_returns",
    "ReturnScale": "_returns",
    "update_return_scale": "_returns",
    "ema_update": "_returns",
}

__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'r2i_agent' has no attribute {name!r}")
    return getattr(importlib.import_module(f"r2i_agent.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return __all__
