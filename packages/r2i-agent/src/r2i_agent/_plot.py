"""Learning curves of several runs, grouped (by default by sequence model) as mean ± spread, into a PNG.

Each run directory holds ``metrics.jsonl`` (one JSON object per line; ``step`` = env steps so far, plus
metrics such as ``episode/return``) and ``config.json`` (see ``_rundir``). Runs are grouped by one field of
their saved config; each group is drawn as its mean over runs with a band of min–max or ± one std.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.json"
Spread = Literal["minmax", "std"]


class PlotError(ValueError):
    """The runs cannot be plotted as asked (missing files, unknown metric or grouping field)."""


@dataclasses.dataclass(frozen=True)
class Curve:
    """One run's metric: ``steps`` (env steps, increasing) and ``values``, both 1-D of the same length."""

    run: pathlib.Path
    steps: np.ndarray
    values: np.ndarray


def read_metrics(run: pathlib.Path) -> list[dict[str, Any]]:
    """The records of ``<run>/metrics.jsonl``; blank and truncated (half-written) lines are skipped."""
    path = run / METRICS_FILE
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise PlotError(f"cannot read {path}: {err.strerror or err}") from None
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def read_config(run: pathlib.Path) -> dict[str, Any]:
    """The raw JSON of ``<run>/config.json`` (untyped, so runs of older versions still plot)."""
    path = run / CONFIG_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise PlotError(f"cannot read {path}: {err}") from None
    if not isinstance(data, dict):
        raise PlotError(f"{path} is not a JSON object")
    return data


def curve(run: pathlib.Path, records: list[dict[str, Any]], metric: str) -> Curve | None:
    """The finite values of ``metric`` against ``step`` (sorted; the last record wins per step), or None."""
    points: dict[int, float] = {}
    for record in records:
        value, step = record.get(metric), record.get("step")
        if isinstance(step, int | float) and isinstance(value, int | float | str):
            try:
                number = float(value)  # the logger writes non-finite values as strings such as "nan"
            except ValueError:
                continue
            if math.isfinite(number):
                points[int(step)] = number
    if not points:
        return None
    steps = np.array(sorted(points), dtype=np.float64)
    return Curve(run, steps, np.array([points[int(s)] for s in steps], dtype=np.float64))


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"ssm": {"layers": 3}}}`` -> ``{"model.ssm.layers": 3}``."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def group_key(saved: dict[str, Any], field: str) -> str:
    """The value of ``field`` in a saved run: ``env_id``, ``steps``, a dotted config path or unique suffix."""
    top = {k: v for k, v in saved.items() if k != "config" and not isinstance(v, dict)}
    fields = {**top, **flatten(saved.get("config", {}))}
    if field in fields:
        return str(fields[field])
    matches = [path for path in fields if path.endswith("." + field)]
    if len(matches) == 1:
        return str(fields[matches[0]])
    if matches:
        raise PlotError(f"--group-by {field} is ambiguous: {', '.join(matches)}")
    raise PlotError(f"--group-by {field}: no such config field (e.g. model.sequence_model, env_id, seed)")


def aggregate(curves: Sequence[Curve], spread: Spread) -> tuple[np.ndarray, ...]:
    """Mean, low and high of ``curves`` on the union of their steps (each interpolated within its own range).

    Returns ``(steps, mean, low, high)``; at a step only the runs whose logs cover it count.
    """
    grid = np.unique(np.concatenate([c.steps for c in curves]))
    stacked = np.full((len(curves), grid.size), np.nan)
    for i, c in enumerate(curves):
        inside = (grid >= c.steps[0]) & (grid <= c.steps[-1])
        stacked[i, inside] = np.interp(grid[inside], c.steps, c.values)
    count = np.sum(~np.isnan(stacked), axis=0)
    mean = np.sum(np.nan_to_num(stacked), axis=0) / count
    if spread == "std":
        centred = np.nan_to_num(stacked - mean)
        std = np.sqrt(np.sum(centred**2, axis=0) / count)
        return grid, mean, mean - std, mean + std
    low = np.min(np.where(np.isnan(stacked), np.inf, stacked), axis=0)
    high = np.max(np.where(np.isnan(stacked), -np.inf, stacked), axis=0)
    return grid, mean, low, high


def load_groups(runs: Sequence[pathlib.Path], metric: str, group_by: str) -> dict[str, list[Curve]]:
    """Read every run, group its curve of ``metric`` by ``group_by``; PlotError before anything is drawn."""
    groups: dict[str, list[Curve]] = {}
    available: set[str] = set()
    for run in runs:
        if not run.is_dir():
            raise PlotError(f"{run} is not a run directory")
        records = read_metrics(run)
        key = group_key(read_config(run), group_by)
        available.update(k for r in records for k in r if k != "step")
        found = curve(run, records, metric)
        if found is not None:
            groups.setdefault(key, []).append(found)
    if not groups:
        names = ", ".join(sorted(available)) or "none"
        raise PlotError(f"no run has finite values of metric {metric!r}; metrics found: {names}")
    return groups


def runs_figure(groups: dict[str, list[Curve]], metric: str, group_by: str, spread: Spread = "minmax"):
    """A matplotlib Figure of ``groups`` (mean line and spread band per group) on an Agg canvas of its own
    (no pyplot, no global backend switch, so it is safe in any process)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for name, curves in sorted(groups.items()):
        steps, mean, low, high = aggregate(curves, spread)
        (line,) = axes.plot(steps, mean, label=f"{name} ({len(curves)} run{'s' * (len(curves) > 1)})")
        axes.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    band = "min–max" if spread == "minmax" else "± 1 std"
    # Two lines: a long metric or field name on one line ran past the figure's edges.
    axes.set(xlabel="env steps", ylabel=metric, title=f"{metric}\nmean and {band} over runs, by {group_by}")
    axes.grid(alpha=0.3)
    axes.legend()
    return figure


def plot_runs(
    runs: Sequence[pathlib.Path],
    output: pathlib.Path,
    *,
    metric: str = "episode/return",
    group_by: str = "model.sequence_model",
    spread: Spread = "minmax",
) -> dict[str, int]:
    """Draw ``metric`` of ``runs`` grouped by ``group_by`` into the PNG ``output``; returns runs per group."""
    groups = load_groups(runs, metric, group_by)
    figure = runs_figure(groups, metric, group_by, spread)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=120, format="png")
    return {name: len(curves) for name, curves in groups.items()}
