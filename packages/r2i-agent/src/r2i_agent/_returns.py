"""Returns of imagined trajectories and their normalization (DreamerV3 / R2I actor-critic math)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def lambda_returns(
    rewards: Float[Array, "steps ..."],
    continues: Float[Array, "steps ..."],
    values: Float[Array, "steps ..."],
    discount: float,
    lambda_: float,
) -> Float[Array, "horizon ..."]:
    """TD(λ) returns R_0..R_{H−1} of an imagined trajectory of H + 1 = steps states s_0..s_H.

    R_t = r_{t+1} + γ c_{t+1} ((1 − λ) v_{t+1} + λ R_{t+1}),  R_H = v_H,
    where r_t, c_t are the reward and continue predicted for state s_t and v_t its value. Index 0 of
    ``rewards`` and ``continues`` (the start state) is unused, as in DreamerV3.
    """

    def backward(next_return, step):
        reward, cont, value = step
        ret = reward + discount * cont * ((1 - lambda_) * value + lambda_ * next_return)
        return ret, ret

    _, returns = jax.lax.scan(backward, values[-1], (rewards[1:], continues[1:], values[1:]), reverse=True)
    return returns


class ReturnScale(NamedTuple):
    """EMAs of the 5th and 95th percentile of λ-returns; advantages are divided by max(1, high − low)."""

    low: Float[Array, ""]
    high: Float[Array, ""]

    @classmethod
    def init(cls) -> "ReturnScale":
        return cls(jnp.zeros(()), jnp.zeros(()))

    @property
    def scale(self) -> Float[Array, ""]:
        """max(1, S) with S = EMA(P95) − EMA(P5) = EMA(P95 − P5): large returns shrink, small are kept."""
        return jnp.maximum(1.0, self.high - self.low)


def update_return_scale(state: ReturnScale, returns: Float[Array, "..."], decay: float = 0.99) -> ReturnScale:
    """One EMA step towards this batch's 5th and 95th percentiles of ``returns``."""
    returns = jax.lax.stop_gradient(returns)
    low, high = jnp.percentile(returns, 5.0), jnp.percentile(returns, 95.0)
    return ReturnScale(decay * state.low + (1 - decay) * low, decay * state.high + (1 - decay) * high)


def ema_update(slow, fast, rate: float):
    """slow ← (1 − rate)·slow + rate·fast over matching pytrees (slow critic, EMA 0.02)."""
    return jax.tree_util.tree_map(lambda s, f: (1 - rate) * s + rate * f, slow, fast)
