"""Orbax save/restore of a WorldModel and of a module of it, without any agent."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from worldmodel import WorldModel, load_world_model, preset, restore_module, save_module, save_world_model


def perturbed(model, seed):
    """Every parameter moved, so a restore cannot pass by rebuilding the initial model."""
    params, static = eqx.partition(model, eqx.is_inexact_array)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    moved = [x + 0.1 * jax.random.normal(k, x.shape, x.dtype) for x, k in zip(leaves, keys, strict=True)]
    return eqx.combine(jax.tree.unflatten(tree, moved), static)


def assert_same(a, b):
    leaves_a, tree_a = jax.tree.flatten(eqx.filter(a, eqx.is_array))
    leaves_b, tree_b = jax.tree.flatten(eqx.filter(b, eqx.is_array))
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b, strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("kind", ["s3m", "rssm"])
def test_world_model_round_trip(kind, tmp_path):
    config = preset("tiny", sequence_model=kind, policy_input="output", deter=12)
    model = perturbed(WorldModel(config, {"vector": (3,)}, 2, key=jax.random.key(4)), seed=1)
    save_world_model(tmp_path / "wm", model)
    restored = load_world_model(tmp_path / "wm")
    assert restored.config == config and restored.obs_shapes == model.obs_shapes
    assert restored.action_size == 2 and type(restored.sequence_model) is type(model.sequence_model)
    assert_same(restored, model)
    features = jnp.ones(model.feature_size)
    np.testing.assert_array_equal(restored.reward.mean(features), model.reward.mean(features))


def test_module_round_trip(tmp_path):
    model = perturbed(WorldModel(preset("tiny"), {"vector": (3,)}, 2, key=jax.random.key(0)), seed=2)
    save_module(tmp_path / "seq", model.sequence_model)
    fresh = WorldModel(preset("tiny"), {"vector": (3,)}, 2, key=jax.random.key(9)).sequence_model
    restored = restore_module(tmp_path / "seq", fresh)
    assert_same(restored, model.sequence_model)
    shapes_only = eqx.filter_eval_shape(lambda: fresh)
    assert_same(restore_module(tmp_path / "seq", shapes_only), model.sequence_model)


def test_existing_directory_is_not_overwritten(tmp_path):
    model = WorldModel(preset("tiny"), {"vector": (3,)}, 2, key=jax.random.key(0))
    save_world_model(tmp_path / "wm", model)
    with pytest.raises(FileExistsError):
        save_world_model(tmp_path / "wm", model)
