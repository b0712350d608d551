"""tools/diagnose_sags.py on a short run: one row per kept checkpoint, each measure in its range; the
swap of world model and actor between two checkpoints."""

import dataclasses
import importlib.util
import json
import pathlib

import pytest

from r2i_agent._config import agent_preset
from r2i_agent._rundir import RunSpec, save_run
from r2i_agent._train import train

TOOL = pathlib.Path(__file__).resolve().parents[1] / "tools" / "diagnose_sags.py"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny run with checkpoints at env steps 60 and 120."""
    config = agent_preset("tiny")
    train_cfg = dataclasses.replace(config.train, prefill=40, checkpoint_every=60, keep_checkpoints=5)
    config = dataclasses.replace(config, train=train_cfg)
    env_id, run = "popgym/RepeatPreviousEasy", tmp_path_factory.mktemp("diagnose") / "run"
    train(config, env_id, 120, run, progress=False)
    save_run(run, RunSpec(env_id, config, 120))  # what the command line writes
    return run


def _tool():
    spec = importlib.util.spec_from_file_location("diagnose_sags", TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def _rows(path: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_one_row_per_checkpoint_with_measures_in_range(run, tmp_path):
    out = tmp_path / "rows.jsonl"
    _tool().main([str(run), "--episodes", "1", "--out", str(out)])
    rows = _rows(out)
    assert [row["step"] for row in rows] == [60, 120]
    for row in rows:
        assert -1.0 <= row["real_return"] <= 1.0 and 0.0 <= row["right_fraction"] <= 1.0
        assert 0.0 <= row["sign_right_on_wrong"] <= 1.0 and row["wrong_steps"] > 0  # half the actions random
        assert abs(row["pred_on_right"]) < 1.0 and abs(row["imagined_reward_per_step"]) < 1.0


def test_swap_plays_every_pair_and_a_checkpoints_own_pair_as_unswapped(run, tmp_path):
    """The pair (s, s) is checkpoint s's own agent: its return is the per-checkpoint row's, on the same
    held-out episodes."""
    tool, rows_out, swap_out = _tool(), tmp_path / "rows.jsonl", tmp_path / "swap.jsonl"
    tool.main([str(run), "--episodes", "1", "--out", str(rows_out)])
    tool.main([str(run), "--episodes", "1", "--swap", "60", "120", "--out", str(swap_out)])
    own = {row["step"]: row["real_return"] for row in _rows(rows_out)}
    swap = {(row["model_step"], row["actor_step"]): row for row in _rows(swap_out)}
    assert set(swap) == {(60, 60), (60, 120), (120, 60), (120, 120)}
    for step in (60, 120):
        assert swap[step, step]["real_return"] == pytest.approx(own[step])
    assert all(row["stderr"] >= 0.0 for row in swap.values())
