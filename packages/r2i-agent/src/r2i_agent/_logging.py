"""Run logs: one JSON dict per line in ``metrics.jsonl`` plus TensorBoard scalars, and a progress bar."""

from __future__ import annotations

import json
import math
import os
import pathlib
import sys


class RunLogger:
    """Appends ``{"step": env_steps, **metrics}`` to ``<logdir>/metrics.jsonl`` and TensorBoard events.

    Appending keeps the records of a resumed run's earlier part. ``drop_after``: the env step a resumed
    run restarts from; records after it (written after that checkpoint by the run that stopped, or cut
    short by a crash) are dropped from the JSONL file and purged from TensorBoard, so no step appears twice.
    """

    def __init__(self, logdir: pathlib.Path, drop_after: int | None = None):
        from tensorboardX import SummaryWriter  # heavy import, only when a run starts

        logdir.mkdir(parents=True, exist_ok=True)
        path = logdir / "metrics.jsonl"
        if drop_after is not None and path.exists():
            _keep_records_up_to(path, drop_after)
        self._jsonl = open(path, "a")
        purge = None if drop_after is None else drop_after + 1
        self._tensorboard = SummaryWriter(str(logdir), purge_step=purge)

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


def _keep_records_up_to(path: pathlib.Path, step: int) -> None:
    """Rewrite ``path`` (atomically) with only its complete records of env steps <= ``step``."""
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash
        if isinstance(record, dict) and record.get("step", step + 1) <= step:
            kept.append(line + "\n")
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(kept))
    os.replace(tmp, path)


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
