"""Replay buffer: each env's step stream in a preallocated NumPy ring, sampled as fixed-length windows.

Windows are ``length`` consecutive steps of one env. They may cross episode boundaries: the sequence
model resets its state where ``is_first`` is set, so no step is wasted on padding. Windows never cross
the ring's write position, where the stream is discontinuous.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Collection, Mapping

import numpy as np

REQUIRED_KEYS = ("is_first", "is_last", "is_terminal")


@dataclasses.dataclass(frozen=True)
class Field:
    """Shape (of one step of one env) and dtype of a stored key."""

    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def bytes_per_step(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


def available_memory_bytes() -> int | None:
    """Memory the OS can still hand out (MemAvailable), or None where it cannot be read."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None


class Replay:
    """Ring buffers of ``capacity`` steps in total, split evenly over ``num_envs`` step streams.

    ``add`` takes one step of every env (arrays with leading dim ``num_envs``, as a vector env returns
    them, plus whatever the agent stores, e.g. the action taken). ``sample`` returns a dict of arrays
    [batch, length, ...]. Images stay uint8. Memory is allocated up front; a capacity that does not fit
    in available memory is refused before anything is allocated.

    Example:
        >>> replay = Replay(1000, {"vector": Field((4,), np.float32)}, num_envs=2)
        >>> replay.add({"vector": np.zeros((2, 4), np.float32), "is_first": np.ones(2, bool),
        ...             "is_last": np.zeros(2, bool), "is_terminal": np.zeros(2, bool)})
    """

    def __init__(
        self,
        capacity: int,
        fields: Mapping[str, Field],
        num_envs: int,
        *,
        seed: int = 0,
        memory_limit_bytes: int | None = None,
    ):
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        if capacity < num_envs:
            raise ValueError(f"capacity ({capacity} steps) must hold at least one step per env ({num_envs})")
        self.fields = {key: Field(tuple(f.shape), np.dtype(f.dtype)) for key, f in fields.items()}
        for key in REQUIRED_KEYS:
            self.fields.setdefault(key, Field((), np.dtype(bool)))
        self.num_envs = num_envs
        self.steps_per_env = capacity // num_envs
        limit = available_memory_bytes() if memory_limit_bytes is None else memory_limit_bytes
        if limit is not None and self.nbytes > limit:
            raise MemoryError(
                f"replay of {capacity} steps needs {self.nbytes / 2**30:.2f} GiB but only "
                f"{limit / 2**30:.2f} GiB of memory is available; lower the replay capacity"
            )
        self._data = {
            key: np.zeros((num_envs, self.steps_per_env, *f.shape), f.dtype) for key, f in self.fields.items()
        }
        self._cursor = 0  # next write position in every env's ring
        self._count = 0  # steps stored per env (≤ steps_per_env)
        self._rng = np.random.default_rng(seed)

    @property
    def nbytes(self) -> int:
        """Bytes the buffer holds once allocated."""
        per_step = sum(f.bytes_per_step for f in self.fields.values())
        return per_step * self.steps_per_env * self.num_envs

    def __len__(self) -> int:
        """Steps stored, summed over envs."""
        return self._count * self.num_envs

    def add(self, step: Mapping[str, np.ndarray]) -> None:
        """Store one step of every env. Keys must be exactly the buffer's fields."""
        if set(step) != set(self.fields):
            missing, extra = set(self.fields) - set(step), set(step) - set(self.fields)
            raise KeyError(f"replay step keys differ: missing {sorted(missing)}, unexpected {sorted(extra)}")
        for key, field in self.fields.items():
            value = np.asarray(step[key])
            if value.shape != (self.num_envs, *field.shape):
                raise ValueError(
                    f"replay key {key!r}: expected shape {(self.num_envs, *field.shape)}, got {value.shape}"
                )
            self._data[key][:, self._cursor] = value
        self._cursor = (self._cursor + 1) % self.steps_per_env
        self._count = min(self._count + 1, self.steps_per_env)

    def _oldest(self) -> int:
        return self._cursor if self._count == self.steps_per_env else 0

    def can_sample(self, length: int, *, episode_starts: bool = False) -> bool:
        """Whether :meth:`sample` has a window of ``length`` steps to give (one starting an episode)."""
        if self._count < length:
            return False
        return not episode_starts or bool(self._episode_start_offsets(length, check=False)[0].size)

    def sample(
        self, batch: int, length: int, *, episode_starts: bool = False, first_step_only: Collection[str] = ()
    ) -> dict[str, np.ndarray]:
        """``batch`` windows of ``length`` consecutive steps, uniform over all valid windows.

        With ``episode_starts=True`` every window begins at a step with ``is_first`` set (uniform over
        such steps that leave room for a whole window). The fields in ``first_step_only`` come for each
        window's first step alone ([batch, ...], not [batch, length, ...]), e.g. a state to start it from.
        """
        if not self.can_sample(length):
            raise ValueError(f"replay holds {self._count} steps per env, fewer than a window of {length}")
        if episode_starts:
            envs, starts = self._episode_start_offsets(length)
            choice = self._rng.integers(0, len(envs), size=batch)
            envs, starts = envs[choice], starts[choice]
        else:  # every env holds as many windows, so drawing env and start independently is uniform
            envs = self._rng.integers(0, self.num_envs, size=batch)
            starts = self._rng.integers(0, self._count - length + 1, size=batch)
        times = (self._oldest() + starts[:, None] + np.arange(length)) % self.steps_per_env
        return {
            key: values[envs, times[:, 0]] if key in first_step_only else values[envs[:, None], times]
            for key, values in self._data.items()
        }

    def _episode_start_offsets(self, length: int, check: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(env, offset from the oldest step) of every ``is_first`` step with room for a window."""
        ordered = np.roll(self._data["is_first"], -self._oldest(), axis=1)[:, : self._count - length + 1]
        envs, starts = np.nonzero(ordered)
        if check and not len(envs):
            raise ValueError(f"no episode start has room for a window of {length} steps yet")
        return envs, starts

    def state_dict(self, copy: bool = True) -> dict:
        """Everything needed to resume sampling exactly: data, positions and the sampler's RNG state.

        ``copy=False`` hands out the live arrays (no second buffer in memory) for a caller that writes
        them out before the next ``add``.
        """
        return {
            "data": {key: values.copy() if copy else values for key, values in self._data.items()},
            "cursor": self._cursor,
            "count": self._count,
            "rng": self._rng.bit_generator.state,
        }

    def load_state_dict(self, state: Mapping) -> None:
        """Restore a :meth:`state_dict` taken from a buffer with the same fields and sizes."""
        for key, values in self._data.items():
            saved = np.asarray(state["data"][key])
            if saved.shape != values.shape or saved.dtype != values.dtype:
                raise ValueError(
                    f"replay checkpoint key {key!r} has {saved.dtype}{list(saved.shape)}, "
                    f"buffer has {values.dtype}{list(values.shape)}"
                )
            values[...] = saved
        self._cursor, self._count = int(state["cursor"]), int(state["count"])
        self._rng.bit_generator.state = state["rng"]
