"""tools/learning_table.py: which `r2i-agent train` commands it would run (--dry-run runs nothing)."""

import pathlib
import subprocess
import sys

TOOL = pathlib.Path(__file__).resolve().parents[1] / "tools" / "learning_table.py"


def dry_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), "--dry-run", *args], capture_output=True, text=True)


def test_default_seeds_are_0_and_1_for_every_row():
    commands = dry_run("--only", "memory_len/4 r2i ").stdout.splitlines()
    assert len(commands) == 2
    assert ["--seed 0" in commands[0], "--seed 1" in commands[1]] == [True, True]


def test_seeds_option_adds_a_seed_to_table_rows_but_not_to_ablations():
    commands = dry_run("--seeds", "2", "--only", " s2$").stdout.splitlines()
    # 6 envs × 2 methods, plus memory length 30's episode-start-window variant of both methods.
    assert len(commands) == 14
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
