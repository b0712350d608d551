"""The long-recall example learns: a reduced run of examples/long_recall.py, well above chance."""

import importlib.util
import pathlib

import jax
import pytest

EXAMPLE = pathlib.Path(__file__).parents[1] / "examples" / "long_recall.py"


def load_example():
    spec = importlib.util.spec_from_file_location("long_recall", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_s5_recalls_a_token_200_steps_back():
    with jax.enable_x64(False):
        example = load_example()
        config = example.RecallConfig(length=201, steps=250, eval_batch=512)
        model = example.S5Classifier(config, key=jax.random.key(0))
        result = example.train(model, config, key=jax.random.key(1), log_every=0)
    chance = 1 / config.symbols
    assert result["accuracy"] >= 0.6, f"accuracy {result['accuracy']:.2f} (chance {chance:.2f})"
