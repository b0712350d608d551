import jax
import pytest


@pytest.fixture(autouse=True, scope="module")
def float64():
    """Reference tests compare against float64 loops; float32 tests opt out with jax.enable_x64(False)."""
    with jax.enable_x64(True):
        yield
