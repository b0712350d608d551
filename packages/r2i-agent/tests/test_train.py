"""End to end: the training loop writes logs and checkpoints, and resuming is exact."""

import dataclasses
import json

import equinox as eqx
import jax
import numpy as np
import pytest

from r2i_agent._config import agent_preset
from r2i_agent._train import _Run, _to_batch, restore_train_state, train
from worldmodel import WorldModel

ENV = "bsuite/memory_len/2"


def small_config(**train):
    config = agent_preset("tiny")
    settings = {
        "prefill": 40,
        "batch_size": 2,
        "batch_length": 8,
        "train_ratio": 16,
        "log_every": 20,
        "eval_every": 10_000,
        "checkpoint_every": 1_000,
        **train,
    }
    return dataclasses.replace(config, train=dataclasses.replace(config.train, **settings))


def records(logdir):
    return [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]


def parameters(config, logdir):
    state, counters = restore_train_state(config, ENV, logdir)
    return jax.tree_util.tree_leaves(eqx.filter(state, eqx.is_array)), counters


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["plain", "replay_context", "lr_decay"])
def test_resume_is_exact_and_runs_are_reproducible(tmp_path, variant):
    """The lr-decay run resumes mid-decay: its schedule must go on from the saved update count."""
    config = small_config(replay_context=variant == "replay_context")
    if variant == "lr_decay":  # to a tenth over 100 updates (one per env step); resumed after 60
        assert config.train.env_steps_per_update == 1
        ac = config.actor_critic
        ac = dataclasses.replace(ac, lr_decay_steps=100, lr_end=ac.lr / 10)
        config = dataclasses.replace(config, actor_critic=ac)
    whole, first, resumed = tmp_path / "whole", tmp_path / "parts", tmp_path / "parts"
    summary = train(config, ENV, 120, whole, progress=False)
    assert summary["updates"] > 0 and summary["env_steps"] == 120
    train(config, ENV, 60, first, progress=False)
    train(config, ENV, 120, resumed, resume=True, progress=False)

    want, want_counters = parameters(config, whole)
    got, got_counters = parameters(config, resumed)
    assert want_counters == got_counters
    for a, b in zip(want, got, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    # Same seed, same losses: the interrupted run's log matches the uninterrupted one step for step.
    whole_log = {r["step"]: r for r in records(whole) if "model/loss" in r}
    parts_log = {r["step"]: r for r in records(resumed) if "model/loss" in r}
    assert whole_log.keys() == parts_log.keys() and len(whole_log) >= 3
    for step, record in whole_log.items():
        assert parts_log[step]["model/loss"] == record["model/loss"]
        assert parts_log[step]["actor/loss"] == record["actor/loss"]


@pytest.mark.parametrize("env_id", ["bsuite/memory_len/2", "popgym/RepeatPreviousEasy"])
def test_run_writes_logs_tensorboard_and_checkpoints(tmp_path, env_id):
    config = small_config(eval_every=60, eval_episodes=1)
    summary = train(config, env_id, 80, tmp_path, progress=False)
    assert summary["env_steps"] == 80 and summary["updates"] >= 10
    log = records(tmp_path)
    assert [r["step"] for r in log if "fps" in r] == [20, 40, 60, 80]
    assert any("episode/return" in r for r in log) or env_id.startswith("popgym")
    assert any("eval/return" in r for r in log)
    assert all(np.isfinite(r["model/loss"]) for r in log if "model/loss" in r)
    assert list(tmp_path.glob("events.out.tfevents.*"))
    assert (tmp_path / "checkpoints" / "80").is_dir()
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    if env_id.startswith("bsuite"):  # ±1 returns, a few dozen episodes
        assert_recent_return_counts_each_episode_once(summary, log)


def assert_recent_return_counts_each_episode_once(summary, log):
    """The summary's recent_return is the mean return of the last 100 episodes; with fewer, of all of them,
    which the log gives as per-interval means weighted by the episodes finished in each interval."""
    total, seen, means = 0.0, 0, []
    for record in (r for r in log if "fps" in r):
        count = record["episodes"] - seen
        if count:
            total += count * record["episode/return"]
            means.append(record["episode/return"])
        seen = record["episodes"]
    assert 10 <= seen == summary["episodes"] <= 100
    assert min(means) != max(means)  # otherwise any weighting would give the same mean
    assert summary["recent_return"] == pytest.approx(total / seen, rel=1e-9, abs=1e-12)


def test_resume_without_checkpoint_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(small_config(), ENV, 10, tmp_path, resume=True, progress=False)


def test_max_seconds_ends_the_run_with_a_checkpoint(tmp_path):
    summary = train(small_config(), ENV, 10_000, tmp_path, max_seconds=0.0, progress=False)
    assert summary["stopped_by"] == "max_seconds" and summary["env_steps"] < 10_000
    assert (tmp_path / "checkpoints" / str(summary["env_steps"])).is_dir()


def test_replay_context_keeps_the_carry_each_step_was_acted_from(tmp_path):
    """With ``replay_context`` every replayed step holds the acting carry its state came from, and a
    sampled window keeps its own is_first at t = 0 (it continues from that carry instead of resetting)."""
    config = small_config(replay_context=True, prefill=8)
    run = _Run(config, ENV, tmp_path)
    try:
        acted_from = []
        for _ in range(10):  # 4 vector steps of prefill (random actions) on 2 envs, then 6 acting
            acted_from.append(np.asarray(WorldModel.carry_to_vector(run.carry)))
            run.step_envs()
        stored = run.replay.state_dict()["data"]["context"]
        assert stored.shape[-1] == run.state.agent.world_model.carry_size
        np.testing.assert_array_equal(stored[:, :10], np.stack(acted_from, axis=1))
        assert np.abs(acted_from[-1]).max() > 0  # the acting carry is in use, not the zero one

        sample = run.replay.sample(4, 8, first_step_only=("context",))
        batch, context = _to_batch(sample)
        np.testing.assert_array_equal(np.asarray(batch.is_first), sample["is_first"])
        np.testing.assert_array_equal(np.asarray(context), sample["context"])
        del sample["context"]
        batch, context = _to_batch(sample)
        assert np.asarray(batch.is_first)[:, 0].all() and context is None  # without context: a fresh start
    finally:
        run.env.close()
        run.checkpointer.close()


@pytest.mark.parametrize("preset", ["bsuite", "popgym", "memorymaze", "atari100k", "dmc", "cpu", "tiny"])
def test_updates_keep_to_the_train_ratio_from_the_first_batch(tmp_path, preset):
    """The loop's updates with each preset's schedule (envs, prefill, B×T, train ratio; a tiny model on a
    cheap env): none before replay can give a batch, ONE at the first env step where it can, then within
    one of ``train_ratio / (B·T)`` per env step. Counted from the prefill instead, popgym and memorymaze
    would owe ~112 updates at their first batch and dmc ~387."""
    schedule = agent_preset(preset).train
    fields = ("num_envs", "prefill", "batch_size", "batch_length", "train_ratio")
    config = small_config(
        **{name: getattr(schedule, name) for name in fields}, replay_capacity=schedule.num_envs * 4096
    )
    train_cfg = config.train
    run = _Run(config, ENV, tmp_path)
    calls = []
    run.update = lambda state, batch, key, context: (calls.append(batch.reward.shape) or state, {})
    per_step = train_cfg.train_ratio / (train_cfg.batch_size * train_cfg.batch_length)  # updates/env step
    try:
        first = None
        while first is None or run.counters.env_steps < first + 3 * max(1 / per_step, train_cfg.num_envs):
            run.step_envs()
            before = len(calls)
            run.learn()
            if first is None and calls:
                first = run.counters.env_steps
                assert run.replay.can_sample(train_cfg.batch_length)
                assert first >= max(train_cfg.prefill, train_cfg.num_envs * train_cfg.batch_length)
                assert len(calls) == 1, f"{len(calls)} updates at the first batch"
            elif first is not None:
                owed = (run.counters.env_steps - first) * per_step
                assert owed <= len(calls) <= owed + 1
                assert len(calls) - before <= train_cfg.num_envs * per_step + 1
        assert calls[0] == (train_cfg.batch_size, train_cfg.batch_length)
    finally:
        run.env.close()
        run.checkpointer.close()


def test_restore_train_state_of_a_given_checkpoint(tmp_path):
    from r2i_agent._checkpoint import CheckpointError

    config = small_config(checkpoint_every=40)
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, keep_checkpoints=5))
    train(config, ENV, 120, tmp_path, progress=False)
    newest, newest_counters = parameters(config, tmp_path)
    state, counters = restore_train_state(config, ENV, tmp_path, step=40)
    assert counters.env_steps == 40 and newest_counters.env_steps == 120
    older = jax.tree_util.tree_leaves(eqx.filter(state, eqx.is_array))
    assert any(not np.array_equal(a, b) for a, b in zip(older, newest, strict=True))
    with pytest.raises(CheckpointError, match=r"no checkpoint of step 50 .*steps: \[40, 80, 120\]"):
        restore_train_state(config, ENV, tmp_path, step=50)


def test_resume_with_env_state_another_version_cannot_load_starts_fresh_episodes(
    tmp_path, monkeypatch, capsys
):
    """A checkpoint's pickled envs may name classes this r2i-envs no longer has: the parameters, replay and
    counters still resume, the envs start new episodes, and a warning says so."""
    import pickle
    import types

    from r2i_agent import _train

    config, env_id = small_config(), "popgym/RepeatPreviousEasy"
    train(config, env_id, 60, tmp_path, progress=False)

    def loads(data):
        raise AttributeError("Can't get attribute 'POPGymEnv' on <module 'r2i_envs._popgym'>")

    monkeypatch.setattr(_train, "pickle", types.SimpleNamespace(**{**vars(pickle), "loads": loads}))
    run = _train._Run(config, env_id, tmp_path)
    saved, _ = restore_train_state(config, env_id, tmp_path)  # the parameters are those saved
    assert run.restore() == 60
    assert "env state does not load here (AttributeError" in capsys.readouterr().err
    assert run.obs["is_first"].all() and not run.episode_return.any() and not run.episode_length.any()
    leaves = lambda state: jax.tree.leaves(eqx.filter(state, eqx.is_array))
    for a, b in zip(leaves(saved), leaves(run.state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    run.env.close()
    run.checkpointer.close()
    summary = train(config, env_id, 80, tmp_path, resume=True, progress=False)
    assert summary["env_steps"] == 80
