"""Save and restore a WorldModel (or any equinox module of it) with orbax, independently of any agent."""

import dataclasses
import json
from pathlib import Path
from typing import TypeVar

import equinox as eqx
import jax
import orbax.checkpoint as ocp

from ._config import config_from_dict
from ._world_model import WorldModel

M = TypeVar("M", bound=eqx.Module)

_SPEC = "world_model.json"
_PARAMS = "params"


def save_module(directory: str | Path, module: eqx.Module) -> None:
    """Write the arrays of ``module`` to ``directory`` (created; must not exist yet)."""
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(Path(directory).absolute(), eqx.filter(module, eqx.is_array))
        checkpointer.wait_until_finished()


def restore_module(directory: str | Path, like: M) -> M:
    """Arrays saved by :func:`save_module` put into the structure of ``like``.

    ``like`` is a module of the same structure: real arrays or ``jax.ShapeDtypeStruct`` leaves (e.g. from
    ``eqx.filter_eval_shape``); only its non-array parts (static fields, activations) are kept.
    """
    is_leaf = lambda x: eqx.is_array(x) or isinstance(x, jax.ShapeDtypeStruct)
    params, static = eqx.partition(like, is_leaf, is_leaf=is_leaf)
    target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    with ocp.StandardCheckpointer() as checkpointer:
        restored = checkpointer.restore(Path(directory).absolute(), target)
    return eqx.combine(restored, static, is_leaf=is_leaf)


def save_world_model(directory: str | Path, model: WorldModel) -> None:
    """Save ``model`` with what rebuilds it (config, observation shapes, action size) in ``directory``.

    The directory can be loaded by :func:`load_world_model` without the agent that trained the model.
    """
    directory = Path(directory).absolute()
    directory.mkdir(parents=True, exist_ok=False)
    spec = {
        "config": dataclasses.asdict(model.config),
        "obs_shapes": {name: list(shape) for name, shape in model.obs_shapes},
        "action_size": model.action_size,
    }
    (directory / _SPEC).write_text(json.dumps(spec, indent=2))
    save_module(directory / _PARAMS, model)


def load_world_model(directory: str | Path) -> WorldModel:
    """The WorldModel saved by :func:`save_world_model` in ``directory``."""
    directory = Path(directory).absolute()
    spec = json.loads((directory / _SPEC).read_text())
    config = config_from_dict(spec["config"])
    obs_shapes = {name: tuple(shape) for name, shape in spec["obs_shapes"].items()}
    like = eqx.filter_eval_shape(WorldModel, config, obs_shapes, spec["action_size"], key=jax.random.key(0))
    return restore_module(directory / _PARAMS, like)
