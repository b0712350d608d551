"""Learning-curve plots from fake runs' metrics.jsonl and config.json."""

import json

import numpy as np
import pytest

from r2i_agent._plot import Curve, PlotError, aggregate, load_groups, plot_runs, runs_figure


def _fake_run(path, sequence_model, returns, *, seed=0, every=100):
    path.mkdir(parents=True)
    config = {"env_id": "popgym/RepeatPreviousEasy", "steps": 1000}
    config["config"] = {"model": {"sequence_model": sequence_model, "ssm": {"layers": 3}}, "seed": seed}
    (path / "config.json").write_text(json.dumps(config))
    lines = []
    for i, value in enumerate(returns):
        lines.append(json.dumps({"step": (i + 1) * every, "episode/return": value, "fps": 10.0}))
        lines.append(json.dumps({"step": (i + 1) * every, "eval/return": 0.0}))  # records without the metric
    (path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return path


def test_plot_writes_a_png(tmp_path):
    runs = [
        _fake_run(tmp_path / "a", "s3m", [0.0, 0.5, 1.0]),
        _fake_run(tmp_path / "b", "s3m", [0.1, 0.3, "nan", 0.9], seed=1),
        _fake_run(tmp_path / "c", "rssm", [0.0, 0.1, 0.2]),
    ]
    out = tmp_path / "plots" / "curves.png"
    counts = plot_runs(runs, out)
    assert counts == {"s3m": 2, "rssm": 1}
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000


def test_a_long_metric_and_group_name_stay_inside_the_figure(tmp_path):
    curves = [Curve(tmp_path / "a", np.array([100, 200]), np.array([0.0, 1.0]))]
    metric, group_by = "actor_critic/advantage_mean", "model.sequence_model"
    figure = runs_figure({"s3m": curves}, metric, group_by)
    figure.canvas.draw()
    title = figure.axes[0].title
    box, bounds = title.get_window_extent(), figure.bbox
    assert metric in title.get_text() and group_by in title.get_text()
    assert bounds.x0 <= box.x0 and box.x1 <= bounds.x1, (box, bounds)


def test_groups_by_a_short_field_name_or_env_id(tmp_path):
    runs = [_fake_run(tmp_path / "a", "s3m", [1.0]), _fake_run(tmp_path / "b", "rssm", [1.0], seed=1)]
    assert {k: len(v) for k, v in load_groups(runs, "episode/return", "seed").items()} == {"0": 1, "1": 1}
    assert list(load_groups(runs, "episode/return", "env_id")) == ["popgym/RepeatPreviousEasy"]


def test_unknown_metric_lists_the_available_ones(tmp_path):
    runs = [_fake_run(tmp_path / "a", "s3m", [1.0])]
    with pytest.raises(PlotError, match=r"metrics found: episode/return, eval/return, fps"):
        load_groups(runs, "episode/length", "model.sequence_model")


def test_missing_files_and_unknown_group_field_are_errors(tmp_path):
    with pytest.raises(PlotError, match="not a run directory"):
        load_groups([tmp_path / "nothing"], "episode/return", "model.sequence_model")
    run = _fake_run(tmp_path / "a", "s3m", [1.0])
    with pytest.raises(PlotError, match="no such config field"):
        load_groups([run], "episode/return", "model.colour")
    (run / "config.json").unlink()
    with pytest.raises(PlotError, match=r"config\.json"):
        load_groups([run], "episode/return", "model.sequence_model")


def test_aggregate_mean_and_spread_over_the_runs_that_cover_each_step():
    a = Curve(None, np.array([0.0, 10.0]), np.array([0.0, 10.0]))
    b = Curve(None, np.array([0.0, 20.0]), np.array([2.0, 2.0]))
    steps, mean, low, high = aggregate([a, b], "minmax")
    np.testing.assert_allclose(steps, [0, 10, 20])
    np.testing.assert_allclose(mean, [1, 6, 2])
    np.testing.assert_allclose(low, [0, 2, 2])
    np.testing.assert_allclose(high, [2, 10, 2])
    _, mean, low, high = aggregate([a, b], "std")
    np.testing.assert_allclose(high - mean, [1, 4, 0])
