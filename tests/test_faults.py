"""Runs that survive: SIGKILL at random moments (also mid-checkpoint), SIGTERM/SIGINT, corrupted and
truncated checkpoints, a full disk and an unwritable logdir. Nothing is lost and a resumed run ends with
exactly the parameters of an uninterrupted one (CPU, same seed)."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import equinox as eqx
import jax
import numpy as np
import pytest

from r2i_agent._checkpoint import MANIFEST, CheckpointError, verify_manifest
from r2i_agent._cli import main
from r2i_agent._rundir import load_run
from r2i_agent._train import restore_train_state

ENV = "bsuite/memory_len/2"
STEPS = 400
RESUME = "r2i-agent train --resume --logdir"
# A tiny run that checkpoints every 40 env steps; the large replay makes each checkpoint write take a
# while (about 10 MB), so a kill can land inside one.
RUN_ARGS = [
    "--env", ENV, "--preset", "tiny", "--seed", "0", "--no-progress",
    "--train.checkpoint_every", "40", "--train.prefill", "40", "--train.batch_size", "2",
    "--train.batch_length", "8", "--train.train_ratio", "16", "--train.log_every", "20",
    "--train.eval_every", "100000", "--train.replay_capacity", "400000",
]  # fmt: skip


def cli(*args: str, log: pathlib.Path) -> subprocess.Popen:
    """``r2i-agent`` in its own process (as a user runs it), stdout and stderr into ``log``."""
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "r2i_agent", *args], stdout=out, stderr=subprocess.STDOUT, text=True
        )


# Every training run goes through its own `r2i-agent` process, as a user runs it: one crash (or XLA abort)
# cannot take the test session down with it, and faults are injected by patching the process before `main`.
PATCHES = {
    "full disk on the third save": """
import errno, r2i_agent._checkpoint as checkpoint
_real, _calls = checkpoint.write_manifest, []
def _full(directory):
    _calls.append(directory)
    if len(_calls) == 3:
        raise OSError(errno.ENOSPC, "No space left on device")
    _real(directory)
checkpoint.write_manifest = _full
""",
    "1000 bytes free": """
import shutil
_usage = shutil.disk_usage
shutil.disk_usage = lambda path: _usage(path)._replace(free=1000)
""",
    "NaN rewards from the 30th update on": """
import numpy as np, r2i_agent._train as train
_real, _calls = train._to_batch, [0]
def _poisoned(sample):
    _calls[0] += 1
    if _calls[0] >= 30:
        sample = {**sample, "reward": np.full_like(sample["reward"], np.nan)}
    return _real(sample)
train._to_batch = _poisoned
""",
}


def run_cli(*args: str, patch: str | None = None) -> tuple[int, str, str]:
    """``r2i-agent ARGS`` in a fresh process, after the fault ``patch`` (a key of PATCHES) if given:
    (exit status, stdout, stderr)."""
    code = (
        PATCHES[patch] if patch else ""
    ) + "\nimport sys\nfrom r2i_agent._cli import main\nsys.exit(main(sys.argv[1:]))\n"
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600)
    return done.returncode, done.stdout, done.stderr


def intact_steps(logdir: pathlib.Path) -> list[int]:
    root = logdir / "checkpoints"
    if not root.is_dir():
        return []
    steps = (int(p.name) for p in root.iterdir() if p.name.isdigit())
    return sorted(s for s in steps if verify_manifest(root / str(s)) is None)


def wait_for(condition, timeout_s: float, poll_s: float = 0.002) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(poll_s)
    return False


def final_parameters(logdir: pathlib.Path):
    spec = load_run(logdir)
    state, counters = restore_train_state(spec.config, spec.env_id, logdir)
    return jax.tree_util.tree_leaves(eqx.filter(state, eqx.is_array)), counters


def assert_same_parameters(want_dir: pathlib.Path, got_dir: pathlib.Path) -> None:
    (want, want_counters), (got, got_counters) = final_parameters(want_dir), final_parameters(got_dir)
    assert want_counters == got_counters
    for a, b in zip(want, got, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def losses_by_step(logdir: pathlib.Path) -> dict[int, float]:
    records = [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if "fps" in r]
    assert steps == sorted(set(steps)), f"log has repeated or unordered steps: {steps}"
    return {r["step"]: r["model/loss"] for r in records if "model/loss" in r}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> pathlib.Path:
    """The same run, never interrupted."""
    logdir = tmp_path_factory.mktemp("reference")
    proc = cli(
        "train", *RUN_ARGS, "--steps", str(STEPS), "--logdir", str(logdir), log=logdir.parent / "ref.log"
    )
    assert proc.wait(timeout=600) == 0, (logdir.parent / "ref.log").read_text()
    return logdir


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_ends_exactly_like_an_uninterrupted_run(reference, tmp_path):
    logdir, rng = tmp_path / "run", np.random.default_rng(7)
    proc = cli("train", *RUN_ARGS, "--steps", str(STEPS), "--logdir", str(logdir), log=tmp_path / "0.log")
    kills_mid_write = 0
    for trial in range(1, 6):
        assert wait_for(lambda p=proc: intact_steps(logdir) or p.poll() is not None, 300, poll_s=0.05)
        if trial % 2:  # a random moment
            time.sleep(rng.uniform(0.0, 2.0))
        else:  # as soon as a checkpoint is being written (orbax writes to a temporary directory first)
            root = logdir / "checkpoints"
            wait_for(
                lambda p=proc, r=root: p.poll() is not None or any("tmp" in d.name for d in r.iterdir()), 60
            )
        if proc.poll() is not None:
            break  # the run finished before this trial's kill
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        partial = [p for p in (logdir / "checkpoints").iterdir() if not p.name.isdigit()]
        unfinished = [int(p.name) for p in (logdir / "checkpoints").iterdir() if p.name.isdigit()]
        kills_mid_write += bool(partial) or set(unfinished) != set(intact_steps(logdir))
        newest = intact_steps(logdir)[-1]
        log = tmp_path / f"{trial}.log"
        proc = cli("train", "--resume", "--logdir", str(logdir), "--no-progress", log=log)
        assert wait_for(
            lambda log=log, p=proc: "resuming from" in log.read_text() or p.poll() is not None, 300
        )
        assert f"resuming from the checkpoint of env step {newest}" in log.read_text(), log.read_text()
    assert proc.wait(timeout=600) == 0, log.read_text()
    assert kills_mid_write >= 1, "no kill landed inside a checkpoint write; the test did not test that"
    assert_same_parameters(reference, logdir)
    assert losses_by_step(logdir) == losses_by_step(reference)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_finish_the_step_checkpoint_and_exit_0(signum, reference, tmp_path):
    logdir = tmp_path / "run"
    proc = cli("train", *RUN_ARGS, "--steps", str(STEPS), "--logdir", str(logdir), log=tmp_path / "a.log")
    assert wait_for(lambda: len(intact_steps(logdir)) >= 2 or proc.poll() is not None, 300, poll_s=0.05)
    proc.send_signal(signum)
    assert proc.wait(timeout=120) == 0
    out = (tmp_path / "a.log").read_text()
    stopped_at = intact_steps(logdir)[-1]
    assert f"stopped by {signal.Signals(signum).name}; checkpoint at env step {stopped_at}" in out, out
    assert f"r2i-agent train --resume --logdir {logdir}" in out
    assert 0 < stopped_at < STEPS
    proc = cli("train", "--resume", "--logdir", str(logdir), "--no-progress", log=tmp_path / "b.log")
    assert proc.wait(timeout=600) == 0
    assert_same_parameters(reference, logdir)


def _corrupt(directory: pathlib.Path, how: str) -> None:
    files = sorted(
        (p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST), key=os.path.getsize
    )
    if how == "truncate":
        with open(files[-1], "r+b") as f:
            f.truncate(os.path.getsize(files[-1]) // 2)
    elif how == "flip":
        data = bytearray(files[-1].read_bytes())
        data[len(data) // 2] ^= 0xFF
        files[-1].write_bytes(bytes(data))
    else:  # the save never finished: no manifest
        (directory / MANIFEST).unlink()


@pytest.mark.slow
@pytest.mark.parametrize("how", ["truncate", "flip", "unfinished"])
def test_a_broken_newest_checkpoint_is_moved_aside_and_the_previous_one_used(how, reference, tmp_path):
    logdir = tmp_path / "run"
    assert run_cli("train", *RUN_ARGS, "--steps", "200", "--logdir", str(logdir))[0] == 0
    assert intact_steps(logdir) == [120, 160, 200]
    _corrupt(logdir / "checkpoints" / "200", how)
    # One case runs on to the end and must match the uninterrupted run; the others only redo the lost steps.
    steps = STEPS if how == "truncate" else 200
    rc, _, err = run_cli("train", "--resume", "--steps", str(steps), "--logdir", str(logdir), "--no-progress")
    assert rc == 0, err
    assert f"checkpoint {logdir.absolute() / 'checkpoints' / '200'} is unusable" in err, err
    assert "resuming from the checkpoint of env step 160" in err
    assert (logdir / "checkpoints-bad" / "200").is_dir()  # kept for inspection, never deleted
    assert intact_steps(logdir)[-1] == steps
    if steps == STEPS:
        assert_same_parameters(reference, logdir)


@pytest.mark.slow
def test_a_full_disk_during_a_checkpoint_stops_the_run_and_keeps_the_previous_checkpoint(reference, tmp_path):
    logdir = tmp_path / "run"
    args = ("train", *RUN_ARGS, "--steps", str(STEPS), "--logdir", str(logdir))
    rc, _, err = run_cli(*args, patch="full disk on the third save")
    assert rc == 1, err
    err = err.strip().splitlines()
    assert err[0].startswith("r2i-agent: error: could not write the checkpoint of step 120")
    assert "No space left on device" in err[0] and "the newest intact checkpoint is step 80" in err[0]
    assert err[1] == f"r2i-agent: continue from the newest intact checkpoint with: {RESUME} {logdir}"
    rc, _, err = run_cli("train", "--resume", "--logdir", str(logdir), "--no-progress")
    assert rc == 0 and "resuming from the checkpoint of env step 80" in err, err
    assert_same_parameters(reference, logdir)


def test_too_little_free_disk_is_refused_before_training(tmp_path):
    rc, _, err = run_cli(
        "train", *RUN_ARGS, "--steps", "40", "--logdir", str(tmp_path / "run"), patch="1000 bytes free"
    )
    assert rc == 1, err
    assert "GiB free but a checkpoint of this run needs about" in err
    assert not (tmp_path / "run" / "checkpoints").exists() or not any(
        (tmp_path / "run" / "checkpoints").iterdir()
    )
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_an_unwritable_logdir_is_refused_before_any_compute(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    assert main(["train", *RUN_ARGS, "--steps", "40", "--logdir", str(blocker / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"r2i-agent: error: cannot create --logdir {blocker / 'run'}: {blocker} is not a directory"
    assert blocker.read_text() == "not a directory"


def test_checkpoint_error_is_raised_with_no_intact_checkpoint(tmp_path):
    from r2i_agent._checkpoint import Checkpointer

    checkpointer = Checkpointer(tmp_path / "checkpoints", keep=2)
    checkpointer.save(1, {"x": np.arange(3)}, {"note": "one"})
    _corrupt(tmp_path / "checkpoints" / "1", "flip")
    with pytest.raises(CheckpointError, match="no intact checkpoint"):
        checkpointer.restore({"x": np.zeros(3, np.int64)})
    checkpointer.close()


@pytest.mark.parametrize(
    ("old_format", "reason"), [(1, "flat vector"), (2, "critic reads the actor's input")]
)
def test_a_checkpoint_of_an_older_format_is_refused_and_left_in_place(tmp_path, old_format, reason):
    """A checkpoint written before optimizer states became flat vectors (format 1: no "checkpoint_format"
    in its metadata) or before the critic read the policy input (format 2) is intact but unreadable here:
    one clear error naming what changed, and nothing is moved or changed."""
    from r2i_agent._checkpoint import FORMAT, Checkpointer, CheckpointFormatError, write_manifest

    directory = tmp_path / "checkpoints"
    checkpointer = Checkpointer(directory, keep=3)
    for step in (1, 2):
        checkpointer.save(step, {"x": np.arange(3)}, {"note": step})
    assert checkpointer.restore({"x": np.zeros(3, np.int64)})[1] == {"note": 2, "checkpoint_format": FORMAT}
    for step in (1, 2):  # as an earlier r2i-agent wrote them
        meta = directory / str(step) / "meta" / "metadata"
        meta.write_text(json.dumps({"note": step} | ({"checkpoint_format": 2} if old_format == 2 else {})))
        write_manifest(directory / str(step))
    before = {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}
    with pytest.raises(
        CheckpointFormatError,
        match=f"has checkpoint format {old_format} and this r2i-agent reads format {FORMAT}",
    ) as refused:
        checkpointer.restore({"x": np.zeros(3, np.int64)})
    assert reason in str(refused.value)
    checkpointer.close()
    assert {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()} == before
    assert not (tmp_path / "checkpoints-bad").exists()


@pytest.mark.parametrize("env_id", ["debug/crash", "debug/hang"])
def test_training_goes_on_when_env_workers_crash_or_hang(env_id, tmp_path):
    """debug/crash and debug/hang kill or freeze every worker at vector steps 40, 81, ... (r2i_envs)."""
    logdir = tmp_path / "run"
    args = [*RUN_ARGS[RUN_ARGS.index("--preset") :], "--train.replay_capacity", "2000"]
    rc, _, err = run_cli("train", "--env", env_id, "--steps", "180", "--logdir", str(logdir), *args)
    assert rc == 0, err
    records = [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]
    restarts = [r["env/worker_restarts"] for r in records if "env/worker_restarts" in r]
    assert restarts[-1] == 2 * 2  # both envs' workers, at vector steps 40 and 81
    assert records[-1]["step"] == 180 and np.isfinite(records[-1]["model/loss"])


@pytest.mark.slow
def test_eval_video_writes_a_gif_and_the_returns_of_an_image_env(tmp_path):
    from PIL import Image

    logdir, env_id = tmp_path / "run", "dmc-vision/cartpole_balance"
    args = [*RUN_ARGS[RUN_ARGS.index("--preset") :], "--train.replay_capacity", "2000"]
    assert run_cli("train", "--env", env_id, "--steps", "60", "--logdir", str(logdir), *args)[0] == 0
    rc, out, err = run_cli("eval", "--logdir", str(logdir), "--episodes", "1", "--video")
    assert rc == 0, err
    gif, returns = logdir / "eval_60.gif", logdir / "eval_60.json"
    assert f"video: {gif}" in out and f"returns: {returns}" in out
    with Image.open(gif) as image:
        # one 500-step episode; the GIF writer merges identical consecutive frames
        assert image.size == (64, 64) and 100 < image.n_frames <= 500
    assert len(json.loads(returns.read_text())["returns"]) == 1


def test_eval_video_of_an_env_without_images_is_refused_before_any_compute(tmp_path, capsys):
    logdir = tmp_path / "run"
    assert run_cli("train", *RUN_ARGS, "--steps", "40", "--logdir", str(logdir))[0] == 0
    assert main(["eval", "--logdir", str(logdir), "--video"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"r2i-agent: error: --video needs image observations; {ENV} has none"
    )


def test_consecutive_non_finite_updates_stop_the_run_with_the_last_good_checkpoint(tmp_path):
    logdir = tmp_path / "run"
    args = (
        "train",
        *RUN_ARGS,
        "--steps",
        "400",
        "--logdir",
        str(logdir),
        "--train.max_consecutive_skips",
        "5",
    )
    rc, _, err = run_cli(*args, patch="NaN rewards from the 30th update on")
    assert rc == 1, err
    err = err.strip().splitlines()
    assert err[0].startswith("r2i-agent: error: 5 updates in a row had non-finite losses or gradients")
    newest = intact_steps(logdir)[-1]
    assert f"The newest checkpoint ({newest}) holds the last good state" in err[0]
    records = [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]
    assert all("update/skipped" in r for r in records if "model/loss" in r)  # the skip rate is logged
    spec = load_run(logdir)
    state, counters = restore_train_state(spec.config, spec.env_id, logdir)
    assert counters.env_steps == newest and counters.updates < 30  # saved before the first bad batch
    assert all(
        np.isfinite(np.asarray(x)).all() for x in jax.tree_util.tree_leaves(eqx.filter(state, eqx.is_array))
    )
