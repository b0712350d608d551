import jax
import pytest


@pytest.fixture(scope="module")
def x64():
    """float64 for reference math tests (opt in per module); model tests stay in float32."""
    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="session")
def tiny_model():
    """Factory: a tiny vector-observation WorldModel with the given sequence model and overrides."""
    import dataclasses

    from worldmodel import WorldModel, preset

    def make(kind="s3m", obs_size=5, action_size=3, seed=0, ssm=None, **overrides):
        policy_input = "full" if kind == "s3m" else "output"
        config = preset("tiny", sequence_model=kind, policy_input=policy_input, **overrides)
        if ssm:
            config = dataclasses.replace(config, ssm=dataclasses.replace(config.ssm, **ssm))
        return WorldModel(config, {"vector": (obs_size,)}, action_size, key=jax.random.key(seed))

    return make


@pytest.fixture(scope="session")
def random_batch():
    """Factory: a random Batch [T] with episode starts at ``starts`` (and t = 0)."""
    import jax.numpy as jnp
    import numpy as np

    from worldmodel import Batch

    def make(T=16, obs_size=5, action_size=3, starts=(0,), seed=0):
        rng = np.random.default_rng(seed)
        is_first = np.zeros(T, bool)
        is_first[list(starts)] = True
        is_terminal = np.zeros(T, bool)
        is_terminal[[s - 1 for s in starts if s > 0]] = True
        return Batch(
            obs={"vector": jnp.asarray(rng.standard_normal((T, obs_size)), jnp.float32)},
            action=jnp.asarray(rng.standard_normal((T, action_size)), jnp.float32),
            reward=jnp.asarray(rng.standard_normal(T), jnp.float32),
            is_first=jnp.asarray(is_first),
            is_terminal=jnp.asarray(is_terminal),
        )

    return make
