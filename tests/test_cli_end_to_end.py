"""End to end through the real command line: train, resume, evaluate and plot a tiny run."""

import json

import pytest

from r2i_agent._cli import main

SMALL = [
    "--preset", "tiny", "--no-progress",
    "--train.prefill", "40", "--train.batch_size", "2", "--train.batch_length", "8",
    "--train.train_ratio", "16", "--train.log_every", "20", "--train.checkpoint_every", "1000",
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ["popgym/RepeatPreviousEasy", "bsuite/memory_len/2"])
def test_train_resume_eval_plot(tmp_path, env_id, capsys):
    logdir = tmp_path / "run"
    assert main(["train", "--env", env_id, "--steps", "60", "--logdir", str(logdir), *SMALL]) == 0
    assert (logdir / "checkpoints" / "60").is_dir() and list(logdir.glob("events.out.tfevents.*"))
    assert json.loads((logdir / "config.json").read_text())["env_id"] == env_id

    assert main(["train", "--resume", "--logdir", str(logdir), "--steps", "100", "--no-progress"]) == 0
    steps = [json.loads(line)["step"] for line in (logdir / "metrics.jsonl").read_text().splitlines()]
    assert [s for s in steps if s % 20 == 0] == [20, 40, 60, 80, 100]
    assert (logdir / "checkpoints" / "100").is_dir()

    assert main(["eval", "--logdir", str(logdir), "--episodes", "2"]) == 0
    assert "2 episodes" in capsys.readouterr().out

    png = tmp_path / "curves.png"
    assert main(["plot", str(logdir), "-o", str(png), "--metric", "model/loss"]) == 0
    assert png.stat().st_size > 1000


def test_new_run_in_a_finished_logdir_is_refused(tmp_path, capsys):
    logdir = tmp_path / "run"
    (logdir / "checkpoints" / "60").mkdir(parents=True)
    (logdir / "config.json").write_text("{}")
    code = main(
        ["train", "--env", "popgym/RepeatPreviousEasy", "--steps", "60", "--logdir", str(logdir), *SMALL]
    )
    assert code == 2
    assert capsys.readouterr().err.count("\n") == 1
