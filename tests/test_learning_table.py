"""tools/learning_table.py: which `r2i-agent train` commands it would run (--dry-run runs nothing)."""

import importlib.util
import os
import pathlib
import queue
import subprocess
import sys

import pytest

TOOL = pathlib.Path(__file__).resolve().parents[1] / "tools" / "learning_table.py"


def dry_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), "--dry-run", *args], capture_output=True, text=True)


def test_default_seeds_are_0_and_1_for_every_row():
    commands = dry_run("--only", "memory_len/4 r2i ").stdout.splitlines()
    assert len(commands) == 2
    assert ["--seed 0" in commands[0], "--seed 1" in commands[1]] == [True, True]


def test_seeds_option_adds_a_seed_to_table_rows_but_not_to_ablations():
    commands = dry_run("--seeds", "2", "--only", " s2$").stdout.splitlines()
    # 8 envs × 2 methods, plus memory length 30's episode-start-window and replay-context variants of both
    # and 128-step-window variants of both, and RepeatPreviousEasy's paper-learning-rate and
    # decaying-learning-rate variants of both.
    assert len(commands) == 26
    assert all("--seed 2 " in c and c.startswith("r2i-agent train ") for c in commands)
    ablations = dry_run("--seeds", "2", "--only", "r2i-noresets").stdout.splitlines()
    # lengths 10 and 30 on random windows, length 30 on episode-start windows
    assert len(ablations) == 3 and all("--seed 0 " in c for c in ablations)


def test_an_ablation_applies_each_of_its_changes_and_takes_its_own_seeds():
    commands = dry_run(
        "--ablation-seeds", "1", "2", "--only", "memory_len/15 r2i-full-episodewindows "
    ).stdout.splitlines()
    assert len(commands) == 2
    assert ["--seed 1 " in commands[0], "--seed 2 " in commands[1]] == [True, True]
    for command in commands:
        assert "--model.policy_input full" in command and "--train.episode_windows true" in command
        assert "--train.batch_length 64" in command  # the env's own arguments stay
    chain = dry_run("--only", "discounting_chain/0 r2i-output ").stdout.splitlines()
    assert len(chain) == 1 and chain[0].endswith("--model.policy_input output")


def test_a_filter_that_matches_nothing_fails_with_one_message():
    result = dry_run("--only", "no-such-env")
    assert result.returncode != 0
    assert "no run name matches 'no-such-env'" in result.stderr


def load_tool():
    spec = importlib.util.spec_from_file_location("learning_table", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_replay_context_rows_store_the_acting_state_on_random_windows():
    commands = dry_run("--only", "memory_len/15 (r2i|rssm)-replaycontext s0").stdout.splitlines()
    assert len(commands) == 2
    for command in commands:
        assert command.endswith("--train.replay_context true") and "episode_windows" not in command
        assert "--train.batch_length 64" in command
    assert "--model.sequence_model rssm" in commands[1]


def test_pin_cores_runs_each_job_under_taskset_on_a_core_of_its_own(tmp_path, monkeypatch):
    tool = load_tool()
    called = []
    monkeypatch.setattr(tool.subprocess, "call", lambda command, **kwargs: called.append(command) or 0)
    runs = [tool.Run("bsuite/memory_len/4", "r2i", seed, 100) for seed in (0, 1)]
    cores = queue.Queue()
    cores.put(7)
    for run in runs:  # one core: each run takes it and gives it back
        assert tool.execute(run, tmp_path, cores).endswith("exit 0 after 0 s")
    assert [c[:3] for c in called] == [["taskset", "-c", "7"]] * 2
    assert [c[3:] for c in called] == [r.command(tmp_path) for r in runs]
    assert cores.get_nowait() == 7
    tool.execute(runs[0], tmp_path)  # without a pool: the plain command
    assert called[-1] == runs[0].command(tmp_path)


def test_pin_cores_refuses_more_jobs_than_cores():
    allowed = len(os.sched_getaffinity(0))
    with pytest.raises(SystemExit, match=f"{allowed + 1} jobs but only {allowed} cores"):
        load_tool().core_pool(allowed + 1)
    assert load_tool().core_pool(allowed).qsize() == allowed


def test_repeat_previous_paper_learning_rate_rows_get_their_own_budget():
    commands = dry_run("--only", "RepeatPreviousEasy (r2i|rssm)(-paperlr)? s0").stdout.splitlines()
    assert len(commands) == 4
    plain, paper = [c for c in commands if "paperlr" not in c], [c for c in commands if "paperlr" in c]
    assert all("--steps 60000 " in c and "--actor_critic.lr" not in c for c in plain)
    assert all("--steps 80000 " in c and c.endswith("--actor_critic.lr 3e-5") for c in paper)
    assert "--model.sequence_model rssm" in paper[1] and "--model.reward_bins 255" in paper[0]


def test_repeat_previous_decay_rows_fall_from_the_presets_lr_to_the_papers_within_60k_steps():
    commands = dry_run("--only", "RepeatPreviousEasy (r2i|rssm)-lrdecay s0").stdout.splitlines()
    assert len(commands) == 2
    for command in commands:
        assert command.endswith("--actor_critic.lr_decay_steps 40000 --actor_critic.lr_end 3e-5")
        assert "--steps 60000 " in command and "--actor_critic.lr " not in command
    assert "--model.sequence_model rssm" in commands[1]


def test_long_window_rows_replace_the_envs_window_length_for_both_models():
    commands = dry_run("--only", "memory_len/15 (r2i|rssm)-longwindows s0").stdout.splitlines()
    assert len(commands) == 2
    for command in commands:
        assert command.endswith("--train.batch_length 128 --train.batch_size 4")
        assert command.count("--train.batch_length") == 1 and "episode_windows" not in command
        assert "--steps 60000 " in command  # their own budget; the env's other rows keep 40k
    assert "--model.sequence_model rssm" in commands[1]
