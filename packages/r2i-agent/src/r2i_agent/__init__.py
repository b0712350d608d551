"""r2i_agent: the R2I agent built on ``worldmodel`` and ``r2i_envs`` (in progress: replay so far).

Public API:
    Replay, Field   preallocated per-env ring buffers sampled as fixed-length windows
"""

from ._replay import Field, Replay

__all__ = ["Field", "Replay"]
