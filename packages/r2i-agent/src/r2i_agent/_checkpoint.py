"""Checkpoints of a run with orbax: one step directory per save, written atomically, newest k kept."""

from __future__ import annotations

import pathlib
from typing import Any

import orbax.checkpoint as ocp


class Checkpointer:
    """Saves (arrays pytree, JSON metadata) pairs under ``directory/<env_steps>/``.

    Orbax writes each checkpoint to a temporary directory and renames it when complete, so a crash
    mid-save leaves the previous checkpoints intact.
    """

    def __init__(self, directory: pathlib.Path, keep: int):
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=True, enable_async_checkpointing=False
        )
        self._manager = ocp.CheckpointManager(directory.absolute(), options=options)

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, arrays: Any, meta: dict) -> None:
        args = ocp.args.Composite(arrays=ocp.args.StandardSave(arrays), meta=ocp.args.JsonSave(meta))
        self._manager.save(step, args=args, force=True)
        self._manager.wait_until_finished()

    def restore(self, like_arrays: Any, step: int | None = None) -> tuple[Any, dict]:
        """The arrays (structured like ``like_arrays``) and metadata of ``step`` (default: the newest)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError("no checkpoint to restore")
        args = ocp.args.Composite(arrays=ocp.args.StandardRestore(like_arrays), meta=ocp.args.JsonRestore())
        restored = self._manager.restore(step, args=args)
        return restored.arrays, restored.meta

    def close(self) -> None:
        self._manager.close()
