"""Run logs: one JSON dict per line in ``metrics.jsonl`` plus TensorBoard scalars, and a progress bar."""

from __future__ import annotations

import json
import math
import pathlib
import sys


class RunLogger:
    """Appends ``{"step": env_steps, **metrics}`` to ``<logdir>/metrics.jsonl`` and TensorBoard events.

    Appending (never truncating) keeps the records of a resumed run's earlier part.
    """

    def __init__(self, logdir: pathlib.Path):
        from tensorboardX import SummaryWriter  # heavy import, only when a run starts

        logdir.mkdir(parents=True, exist_ok=True)
        self._jsonl = open(logdir / "metrics.jsonl", "a")
        self._tensorboard = SummaryWriter(str(logdir))

    def write(self, step: int, metrics: dict[str, float]) -> None:
        record = {"step": int(step), **{k: float(v) for k, v in metrics.items()}}
        self._jsonl.write(json.dumps({k: _json_number(v) for k, v in record.items()}) + "\n")
        self._jsonl.flush()
        for name, value in metrics.items():
            self._tensorboard.add_scalar(name, float(value), int(step))
        self._tensorboard.flush()

    def close(self) -> None:
        self._jsonl.close()
        self._tensorboard.close()


def _json_number(value: float | int) -> float | int | str:
    """JSON has no NaN/inf: write them as strings so every line stays valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class Progress:
    """A tqdm bar over env steps showing fps and the recent episode return; silent when disabled."""

    def __init__(self, total: int, initial: int, enabled: bool):
        self._bar = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, unit="step", file=sys.stderr, dynamic_ncols=True)

    def update(self, step: int, **fields: float) -> None:
        if self._bar is None:
            return
        self._bar.update(step - self._bar.n)
        self._bar.set_postfix({k: f"{v:.3g}" for k, v in fields.items()}, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
