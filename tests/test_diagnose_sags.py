"""tools/diagnose_sags.py on a short run: one row per kept checkpoint, each measure in its range."""

import dataclasses
import importlib.util
import json
import pathlib

from r2i_agent._config import agent_preset
from r2i_agent._rundir import RunSpec, save_run
from r2i_agent._train import train

TOOL = pathlib.Path(__file__).resolve().parents[1] / "tools" / "diagnose_sags.py"


def test_one_row_per_checkpoint_with_measures_in_range(tmp_path):
    config = agent_preset("tiny")
    train_cfg = dataclasses.replace(config.train, prefill=40, checkpoint_every=60, keep_checkpoints=5)
    config = dataclasses.replace(config, train=train_cfg)
    env_id, run = "popgym/RepeatPreviousEasy", tmp_path / "run"
    train(config, env_id, 120, run, progress=False)
    save_run(run, RunSpec(env_id, config, 120))  # what the command line writes
    spec = importlib.util.spec_from_file_location("diagnose_sags", TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / "rows.jsonl"
    tool.main([str(tmp_path / "run"), "--episodes", "1", "--out", str(out)])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["step"] for row in rows] == [60, 120]
    for row in rows:
        assert -1.0 <= row["real_return"] <= 1.0 and 0.0 <= row["right_fraction"] <= 1.0
        assert 0.0 <= row["sign_right_on_wrong"] <= 1.0 and row["wrong_steps"] > 0  # half the actions random
        assert abs(row["pred_on_right"]) < 1.0 and abs(row["imagined_reward_per_step"]) < 1.0
