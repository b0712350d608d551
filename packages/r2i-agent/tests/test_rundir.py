"""config.json round trip, config diffs and the rules for new and resumed runs in a logdir."""

import dataclasses
import json

import pytest

from r2i_agent._config import AgentConfig, agent_preset
from r2i_agent._overrides import apply_overrides, leaf_fields
from r2i_agent._rundir import (
    ADDED_FIELDS,
    RunDirError,
    RunSpec,
    check_new_run,
    check_resume,
    config_diff,
    load_run,
    move_aside,
    save_run,
)


def _run(preset="popgym", env_id="popgym/RepeatPreviousEasy", steps=1000, **overrides) -> RunSpec:
    return RunSpec(env_id, apply_overrides(agent_preset(preset), overrides), steps)


def _checkpoint(logdir):
    (logdir / "checkpoints" / "200").mkdir(parents=True)


def test_config_round_trips_through_config_json(tmp_path):
    run = _run(**{"model.ssm.layers": "2", "actor_critic.entropy": "1e-3", "seed": "7"})
    save_run(tmp_path, run)
    loaded = load_run(tmp_path)
    assert loaded == run
    assert config_diff(loaded.config, run.config) == []
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["env_id"] == "popgym/RepeatPreviousEasy" and data["steps"] == 1000
    assert data["config"]["model"]["ssm"]["layers"] == 2 and data["config"]["seed"] == 7
    assert data["r2i_agent_version"] == run.version
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]  # no temp file left behind


def test_env_kwargs_round_trip_and_older_runs_load_without_them(tmp_path):
    run = RunSpec("bsuite/memory_len", agent_preset("bsuite"), 10, env_kwargs={"memory_length": 7, "x": 0.5})
    save_run(tmp_path, run)
    assert load_run(tmp_path) == run
    data = json.loads((tmp_path / "config.json").read_text())
    del data["env_kwargs"]  # a run written before --env-kwargs existed
    (tmp_path / "config.json").write_text(json.dumps(data))
    assert load_run(tmp_path).env_kwargs == {}
    data["env_kwargs"] = {"memory_length": [7]}
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(RunDirError, match=r"env_kwargs\.memory_length should be a bool, number or string"):
        load_run(tmp_path)


def test_every_preset_round_trips(tmp_path):
    for name in ("bsuite", "popgym", "memorymaze", "atari100k", "dmc", "tiny"):
        run = RunSpec("bsuite/memory_len/3", agent_preset(name), 10)
        save_run(tmp_path / name, run)
        assert load_run(tmp_path / name).config == agent_preset(name)


def test_diff_lines_name_each_changed_field():
    old = agent_preset("popgym")
    new = apply_overrides(old, {"model.ssm.layers": "2", "train.batch_size": "8"})
    assert config_diff(old, new) == ["model.ssm.layers: 3 -> 2", "train.batch_size: 4 -> 8"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["config"]["model"].update(extra=1), "unknown key config.model.extra"),
        (lambda d: d["config"]["train"].pop("batch_size"), "missing key config.train.batch_size"),
        (lambda d: d["config"]["model"]["ssm"].update(layers="3"), "config.model.ssm.layers should be int"),
        (lambda d: d.update(steps=1.5), "steps should be int"),
    ],
)
def test_bad_config_json_is_a_clear_error(tmp_path, edit, message):
    save_run(tmp_path, _run())
    data = json.loads((tmp_path / "config.json").read_text())
    edit(data)
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(RunDirError, match=message):
        load_run(tmp_path)


def test_a_run_written_before_later_fields_existed_loads_with_the_values_it_ran_with(tmp_path):
    """A config.json without the fields added since format 1 (e.g. from before --actor_critic.lr_decay_steps)
    still resumes and evaluates; each absent field reads as the value the run had, which is the default."""
    run = _run()
    save_run(tmp_path, run)
    data = json.loads((tmp_path / "config.json").read_text())
    del data["config"]["actor_critic"]["lr_decay_steps"], data["config"]["actor_critic"]["lr_end"]
    del data["config"]["train"]["replay_context"], data["config"]["model"]["ssm"]["resets"]
    (tmp_path / "config.json").write_text(json.dumps(data))
    assert load_run(tmp_path) == run

    defaults = {leaf.path: leaf.value for leaf in leaf_fields(AgentConfig())}
    changed = {"model.initial", "model.latent_layers", "actor_critic.critic_clip"}  # R2I's, not the old
    for path, value in ADDED_FIELDS.items():
        if path.removeprefix("config.") not in changed:
            assert defaults[path.removeprefix("config.")] == value, path


def test_a_run_from_before_the_r2i_fixes_loads_with_the_structure_it_ran_with(tmp_path):
    """Runs written before the learned initial state, one-layer prior/posterior and a separate critic
    clip load as they ran: zero initial state, prior/posterior as deep as the heads, critic clip = clip."""
    run = _run(**{"model.layers": "3", "actor_critic.clip": "50"})
    save_run(tmp_path, run)
    data = json.loads((tmp_path / "config.json").read_text())
    for section, field in [("model", "initial"), ("model", "latent_layers"), ("actor_critic", "critic_clip")]:
        del data["config"][section][field]
    del data["config"]["model"]["optim"]["weight_decay"]
    (tmp_path / "config.json").write_text(json.dumps(data))
    config = load_run(tmp_path).config
    assert (config.model.initial, config.model.latent_layers, config.model.optim.weight_decay) == (
        "zeros",
        3,
        0.0,
    )
    assert config.actor_critic.critic_clip == 50.0


def test_new_run_in_an_empty_or_missing_logdir_is_fine(tmp_path):
    assert check_new_run(tmp_path / "new", _run(), force=False) == []
    assert not (tmp_path / "new").exists()


def test_new_run_with_a_different_config_is_refused_with_the_diff(tmp_path):
    save_run(tmp_path, _run())
    with pytest.raises(RunDirError, match=r"model\.ssm\.layers: 3 -> 2.*--force"):
        check_new_run(tmp_path, _run(**{"model.ssm.layers": "2"}), force=False)
    with pytest.raises(RunDirError, match=r"env_id: popgym/RepeatPreviousEasy -> popgym/AutoencodeEasy"):
        check_new_run(tmp_path, _run(env_id="popgym/AutoencodeEasy"), force=False)
    assert check_new_run(tmp_path, _run(**{"model.ssm.layers": "2"}), force=True) == [
        tmp_path / "config.json"
    ]


def test_same_run_without_checkpoint_restarts_after_moving_its_files_aside(tmp_path):
    save_run(tmp_path, _run())
    assert check_new_run(tmp_path, _run(steps=99), force=False) == [tmp_path / "config.json"]


def test_checkpoints_are_never_overwritten_even_with_force(tmp_path):
    save_run(tmp_path, _run())
    _checkpoint(tmp_path)
    for force in (False, True):
        with pytest.raises(RunDirError, match=r"already holds checkpoints.*--resume"):
            check_new_run(tmp_path, _run(**{"model.ssm.layers": "2"}), force=force)


def test_move_aside_keeps_the_earlier_files(tmp_path):
    save_run(tmp_path, _run())
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n')
    (tmp_path / "events.out.tfevents.1.host").write_text("x")
    target = move_aside(tmp_path, check_new_run(tmp_path, _run(steps=5), force=True))
    assert target is not None and target.parent == tmp_path / "previous"
    assert sorted(p.name for p in target.iterdir()) == [
        "config.json",
        "events.out.tfevents.1.host",
        "metrics.jsonl",
    ]
    assert (target / "metrics.jsonl").read_text() == '{"step": 1}\n'
    assert not (tmp_path / "config.json").exists()


def test_resume_needs_a_saved_run_with_a_checkpoint(tmp_path):
    with pytest.raises(RunDirError, match="does not exist"):
        check_resume(tmp_path / "missing")
    with pytest.raises(RunDirError, match="holds no run"):
        check_resume(tmp_path)
    save_run(tmp_path, _run())
    with pytest.raises(RunDirError, match="no checkpoint"):
        check_resume(tmp_path)
    _checkpoint(tmp_path)
    assert check_resume(tmp_path) == _run()


def test_resume_may_change_only_the_step_budget(tmp_path):
    save_run(tmp_path, _run())
    _checkpoint(tmp_path)
    assert check_resume(tmp_path, dataclasses.replace(_run(), steps=5000)).steps == 1000
    with pytest.raises(RunDirError, match=r"train\.batch_size: 4 -> 8.*only --steps and --max-seconds"):
        check_resume(tmp_path, _run(**{"train.batch_size": "8"}))
