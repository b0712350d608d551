"""Checkpoints of a run with orbax: one step directory per save, written atomically, verified on restore.

Orbax writes each checkpoint to a temporary directory and renames it when complete, so a crash mid-save
never replaces an earlier checkpoint. On top of that every finished save gets a manifest (size and
BLAKE2b digest of every file) written last; a checkpoint whose manifest is missing or does not match its
files (a save cut short, a truncated or corrupted file) is moved to ``<checkpoints>-bad/`` with a warning
naming it, and the previous checkpoint is used instead. Nothing is deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import sys
from typing import Any

import orbax.checkpoint as ocp

MANIFEST = "r2i_manifest.json"
# The layout of what a checkpoint holds, stored in its metadata as "checkpoint_format" (no key: format 1,
# one optimizer state per parameter array), and what each later format changed (2: 2026-12-03; 3: 2026-12-04).
FORMAT = 3
_FORMAT_CHANGES = {
    2: "format 2 keeps each optimizer's state as one flat vector",
    3: "format 3's critic reads the actor's input, so its first layer has another shape",
}


class CheckpointError(RuntimeError):
    """No usable checkpoint, or one could not be written."""


class CheckpointFormatError(CheckpointError):
    """An intact checkpoint written in a format this version does not read (nothing is moved)."""


def _digest(path: pathlib.Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "blake2b").hexdigest()


def _files(directory: pathlib.Path) -> dict[str, pathlib.Path]:
    return {
        str(p.relative_to(directory)): p
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def write_manifest(directory: pathlib.Path) -> None:
    """Record size and digest of every file under ``directory`` (atomically, fsynced)."""
    entries = {
        name: {"size": p.stat().st_size, "blake2b": _digest(p)} for name, p in _files(directory).items()
    }
    tmp = directory / (MANIFEST + ".tmp")
    with open(tmp, "w") as file:
        json.dump(entries, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, directory / MANIFEST)


def verify_manifest(directory: pathlib.Path) -> str | None:
    """Why ``directory`` is not a complete checkpoint, or None when every file matches its manifest."""
    try:
        entries = json.loads((directory / MANIFEST).read_text())
    except FileNotFoundError:
        return "no manifest (the save did not finish)"
    except (OSError, ValueError) as err:
        return f"unreadable manifest ({err})"
    files = _files(directory)
    for name, entry in entries.items():
        path = files.get(name)
        if path is None:
            return f"missing file {name}"
        if path.stat().st_size != entry["size"]:
            return f"{name} has {path.stat().st_size} bytes, expected {entry['size']}"
        if _digest(path) != entry["blake2b"]:
            return f"{name} does not match its checksum"
    return None


class Checkpointer:
    """Saves (arrays pytree, JSON metadata) pairs under ``directory/<env_steps>/``, keeping the newest
    ``keep``."""

    def __init__(self, directory: pathlib.Path, keep: int):
        self.directory = directory.absolute()
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=True, enable_async_checkpointing=False
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def save(self, step: int, arrays: Any, meta: dict) -> None:
        """Write checkpoint ``step``; an OSError (disk full, unwritable) becomes a :class:`CheckpointError`
        that says the earlier checkpoints are intact."""
        meta = {**meta, "checkpoint_format": FORMAT}
        args = ocp.args.Composite(arrays=ocp.args.StandardSave(arrays), meta=ocp.args.JsonSave(meta))
        try:
            self._manager.save(step, args=args, force=True)
            self._manager.wait_until_finished()
            write_manifest(self.directory / str(step))
        except OSError as err:
            intact = [
                s for s in self.all_steps() if s != step and not verify_manifest(self.directory / str(s))
            ]
            kept = f"the newest intact checkpoint is step {intact[-1]}" if intact else "no earlier checkpoint"
            raise CheckpointError(
                f"could not write the checkpoint of step {step} to {self.directory}: {err}; {kept}"
            ) from err

    def restore(self, like_arrays: Any, step: int | None = None) -> tuple[Any, dict, int]:
        """(arrays structured like ``like_arrays``, metadata, step) of the newest intact checkpoint, or
        of checkpoint ``step`` alone when given.

        Each broken newer checkpoint is moved aside to ``<directory>-bad/`` with a warning on stderr. An
        intact checkpoint of another format is an error that moves nothing: earlier ones share its format.
        """
        steps = self.all_steps()
        if step is not None:
            if step not in steps:
                raise CheckpointError(f"no checkpoint of step {step} in {self.directory} (steps: {steps})")
            steps = [step]
        for step in reversed(steps):
            path = self.directory / str(step)
            problem = verify_manifest(path)
            if problem is None:
                self._check_format(step)
                args = ocp.args.Composite(
                    arrays=ocp.args.StandardRestore(like_arrays), meta=ocp.args.JsonRestore()
                )
                try:
                    restored = self._manager.restore(step, args=args)
                    return restored.arrays, restored.meta, step
                except Exception as err:  # a checkpoint orbax cannot read is as bad as a corrupt one
                    problem = f"orbax could not read it ({type(err).__name__}: {err})"
            moved = self._move_aside(path)
            print(
                f"warning: checkpoint {path} is unusable: {problem}; moved it to {moved} and trying the "
                "previous one",
                file=sys.stderr,
            )
        raise CheckpointError(f"no intact checkpoint in {self.directory}")

    def _check_format(self, step: int) -> None:
        """Raise a :class:`CheckpointFormatError` if checkpoint ``step`` was written in another format.
        Metadata orbax cannot read is left to the full restore, which reports it and moves the checkpoint."""
        try:
            meta = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
        except Exception:  # any failure here is reported by the full restore that follows
            return
        found = meta.get("checkpoint_format", 1) if isinstance(meta, dict) else FORMAT  # not ours: restore
        if found != FORMAT:
            raise CheckpointFormatError(
                f"checkpoint {self.directory / str(step)} has checkpoint format {found} and this "
                f"r2i-agent reads format {FORMAT} ("
                + "; ".join(why for fmt, why in _FORMAT_CHANGES.items() if fmt > found)
                + "); resume it with the r2i-agent version that wrote it, or start a new run in another "
                "--logdir. Nothing was moved or changed."
            )

    def _move_aside(self, path: pathlib.Path) -> pathlib.Path:
        bad = self.directory.with_name(self.directory.name + "-bad")
        bad.mkdir(exist_ok=True)
        target, n = bad / path.name, 1
        while target.exists():
            target, n = bad / f"{path.name}-{n}", n + 1
        path.rename(target)
        self._manager.reload()
        return target

    def close(self) -> None:
        self._manager.close()
