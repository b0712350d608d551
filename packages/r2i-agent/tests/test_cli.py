"""The r2i-agent command line: every bad input exits 2 with one line before any compute; the compute path
calls the training loop (replaced here by a fake module) with the typed config."""

import json
import sys
import types

import pytest

import r2i_envs
from r2i_agent._cli import main, parse_env_kwargs
from r2i_agent._config import agent_preset
from r2i_agent._overrides import apply_overrides
from r2i_agent._rundir import RunSpec, load_run, save_run

ENV = "popgym/RepeatPreviousEasy"


@pytest.fixture
def calls(monkeypatch):
    """Replace ``r2i_agent._train`` by a fake recording its calls (no JAX model, no env)."""
    recorded: list[dict] = []
    fake = types.ModuleType("r2i_agent._train")

    def train(config, env_id, steps, logdir, *, resume, max_seconds, progress, env_kwargs):
        recorded.append(dict(fn="train", config=config, env_id=env_id, steps=steps, logdir=logdir,
                             resume=resume, max_seconds=max_seconds, progress=progress,
                             env_kwargs=env_kwargs))  # fmt: skip
        if getattr(fake, "interrupt", False):
            raise KeyboardInterrupt
        summary = {"env_steps": steps, "updates": 3, "episodes": 2, "seconds": 1.0, "recent_return": 0.5}
        return {**summary, **getattr(fake, "summary_extra", {})}

    def evaluate(logdir, episodes, *, video):
        recorded.append(dict(fn="evaluate", logdir=logdir, episodes=episodes, video=video))
        return {"returns": [1.0, 0.0], "video": None, "returns_file": str(logdir / "eval_9.json")}

    fake.train, fake.evaluate = train, evaluate
    monkeypatch.setitem(sys.modules, "r2i_agent._train", fake)
    return recorded


def _snapshot(root):
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else None for p in root.rglob("*")}


def _saved_run(logdir, *, checkpoint=False, **overrides):
    run = RunSpec(ENV, apply_overrides(agent_preset("popgym"), overrides), 1000)
    save_run(logdir, run)
    if checkpoint:
        (logdir / "checkpoints" / "500").mkdir(parents=True)
    return run


BAD_INPUT = {
    "unknown env": (
        ["train", "--env", "popgym/RepeatPrevousEasy", "--steps", "100"],
        "popgym/RepeatPreviousEasy",
    ),
    "unknown preset": (
        ["train", "--env", ENV, "--steps", "100", "--preset", "huge"],
        "unknown preset 'huge'",
    ),
    "no default preset": (["train", "--env", "memorymaze/9x9", "--steps", "100"], "pass --preset"),
    "unknown override": (
        ["train", "--env", ENV, "--steps", "9", "--model.ssm.layerz", "2"],
        "--model.ssm.layers",
    ),
    "override type": (["train", "--env", ENV, "--steps", "9", "--train.batch_size", "1.5"], "expects int"),
    "override choice": (["train", "--env", ENV, "--steps", "9", "--model.dtype", "f16"], "float32,float64"),
    "policy input": (
        ["train", "--env", ENV, "--steps", "9", "--model.sequence_model", "rssm"],
        "policy_input",
    ),
    "invalid value": (["train", "--env", ENV, "--steps", "9", "--train.batch_size", "0"], "must be positive"),
    "fractional steps": (["train", "--env", ENV, "--steps", "1.5"], "--steps"),
    "new run without env": (["train", "--steps", "100"], "needs --env"),
    "different run": (["train", "--env", ENV, "--steps", "9", "--model.ssm.layers", "2"], "3 -> 2"),
    "checkpoints and force": (
        ["train", "--env", ENV, "--steps", "9", "--force"],
        "already holds checkpoints",
    ),
    "resume changes config": (["train", "--resume", "--train.batch_size", "8"], "train.batch_size: 4 -> 8"),
    "resume other env": (["train", "--resume", "--env", "popgym/AutoencodeEasy"], "env_id"),
    "resume and force": (["train", "--resume", "--force"], "pass only one"),
    "resume other env kwargs": (
        ["train", "--resume", "--env-kwargs", "max_steps=5"],
        "env_kwargs: {} -> max_steps=5",
    ),
    "unknown env kwarg": (
        ["train", "--env", ENV, "--steps", "9", "--env-kwargs", "memory_lenght=3"],
        "unexpected keyword argument 'memory_lenght'",
    ),
    "unknown bsuite kwarg": (
        [
            "train",
            "--env",
            "bsuite/memory_len",
            "--steps",
            "9",
            "--env-kwargs",
            "memory_length=3",
            "colour=red",
        ],
        "with --env-kwargs colour=red memory_length=3: bsuite/memory_len takes kwargs",
    ),
    "env kwarg without value": (["train", "--env", ENV, "--steps", "9", "--env-kwargs", "oops"], "KEY=VALUE"),
    "env kwarg twice": (
        ["train", "--env", ENV, "--steps", "9", "--env-kwargs", "a=1", "--env-kwargs", "a=2"],
        "gives a twice",
    ),
    "env kwarg set by the loop": (
        ["train", "--env", ENV, "--steps", "9", "--env-kwargs", "seed=3"],
        "--seed",
    ),
    "unknown suite": (["envs", "nosuch"], "Unknown suite 'nosuch'"),
    "resume nothing": (["train", "--resume"], "cannot resume"),
    "eval nothing": (["eval"], "cannot evaluate"),
    "eval episodes": (["eval", "--episodes", "0"], "--episodes"),
    "plot missing": (["plot", "nowhere", "-o", "x.png"], "not a run directory"),
    "stray argument": (["train", "--env", ENV, "--steps", "9", "oops"], "unrecognized arguments: oops"),
}
# Which cases run in a logdir holding a run (with a checkpoint when "checkpoint").
_LOGDIR_STATE = {
    "different run": "run",
    "checkpoints and force": "checkpoint",
    "resume changes config": "checkpoint",
    "resume other env": "checkpoint",
    "resume other env kwargs": "checkpoint",
    "resume and force": "checkpoint",
    "resume nothing": "run",
    "eval nothing": "run",
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_exits_2_with_one_line_and_writes_nothing(case, tmp_path, calls, capsys, monkeypatch):
    argv, expected = BAD_INPUT[case]
    logdir = tmp_path / "run"
    state = _LOGDIR_STATE.get(case)
    if state:
        _saved_run(logdir, checkpoint=state == "checkpoint")
        (logdir / "metrics.jsonl").write_text('{"step": 500, "episode/return": 0.1}\n')
    monkeypatch.chdir(tmp_path)
    before = _snapshot(tmp_path)
    argv = argv if argv[0] in ("plot", "envs") else [*argv, "--logdir", str(logdir)]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("r2i-agent: error: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert expected in err
    assert calls == []
    assert _snapshot(tmp_path) == before


def test_no_command_is_an_error(capsys):
    assert main([]) == 2
    assert capsys.readouterr().err.startswith("r2i-agent: error: ")


def test_help_lists_dotted_fields_with_the_presets_defaults(capsys):
    assert main(["train", "--env", ENV, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--model.ssm.layers INT (default: 3)" in text
    assert "--model.deter INT (default: 1024)" in text  # popgym's value, not the dataclass default 512
    assert "--model.sequence_model {s3m,rssm} (default: s3m)" in text
    assert "--seed INT (default: 0)" in text and "--max-seconds" in text and "--resume" in text
    assert main(["train", "--preset", "tiny", "--help"]) == 0
    assert "--model.deter INT (default: 16)" in " ".join(capsys.readouterr().out.split())


def test_help_on_resume_shows_the_saved_values(tmp_path, capsys):
    _saved_run(tmp_path, **{"model.ssm.layers": "2"})
    assert main(["train", "--resume", "--logdir", str(tmp_path), "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--model.ssm.layers INT (default: 2)" in text and f"the run saved in {tmp_path}" in text


def test_train_calls_the_loop_with_the_typed_config(tmp_path, calls, capsys):
    logdir = tmp_path / "run"
    argv = ["train", "--env", ENV, "--steps", "1e5", "--logdir", str(logdir), "--model.ssm.layers", "2"]
    assert main([*argv, "--seed", "3", "--actor_critic.entropy", "1e-3", "--no-progress"]) == 0
    expected = apply_overrides(
        agent_preset("popgym"), {"model.ssm.layers": "2", "seed": "3", "actor_critic.entropy": "1e-3"}
    )
    [call] = calls
    assert call["config"] == expected and call["env_id"] == ENV and call["steps"] == 100_000
    assert call["logdir"] == logdir and call["resume"] is False and call["progress"] is False
    assert call["max_seconds"] is None
    assert load_run(logdir) == RunSpec(ENV, expected, 100_000)
    assert "100000 of 100000 env steps" in capsys.readouterr().out


def test_preset_and_default_preset(tmp_path, calls):
    assert (
        main(["train", "--env", "bsuite/memory_len/3", "--steps", "10", "--logdir", str(tmp_path / "a")]) == 0
    )
    assert calls[-1]["config"] == agent_preset("bsuite")
    argv = ["train", "--env", "memorymaze/9x9", "--steps", "10", "--logdir", str(tmp_path / "b")]
    assert main([*argv, "--preset", "tiny"]) == 0
    assert calls[-1]["config"] == agent_preset("tiny")


def test_rssm_with_output_policy_input_is_accepted(tmp_path, calls):
    argv = ["train", "--env", ENV, "--steps", "10", "--logdir", str(tmp_path), "--model.sequence_model=rssm"]
    assert main([*argv, "--model.policy_input", "output"]) == 0
    assert calls[-1]["config"].model.sequence_model == "rssm"


def test_resume_extends_the_budget_and_keeps_the_config(tmp_path, calls):
    saved = _saved_run(tmp_path, checkpoint=True, **{"model.ssm.layers": "2"})
    argv = ["train", "--resume", "--logdir", str(tmp_path), "--steps", "2e5", "--max-seconds", "30"]
    assert main([*argv, "--model.ssm.layers", "2"]) == 0  # restating a saved value is no change
    [call] = calls
    assert call["config"] == saved.config and call["resume"] is True
    assert call["steps"] == 200_000 and call["max_seconds"] == 30.0
    assert load_run(tmp_path).steps == 200_000
    assert (tmp_path / "checkpoints" / "500").is_dir()


def test_force_moves_the_earlier_run_aside(tmp_path, calls):
    _saved_run(tmp_path)
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n')
    argv = ["train", "--env", ENV, "--steps", "9", "--logdir", str(tmp_path), "--model.ssm.layers", "2"]
    assert main([*argv, "--force"]) == 0
    [previous] = (tmp_path / "previous").iterdir()
    assert json.loads((previous / "config.json").read_text())["config"]["model"]["ssm"]["layers"] == 3
    assert (previous / "metrics.jsonl").read_text() == '{"step": 1}\n'
    assert load_run(tmp_path).config.model.ssm.layers == 2


def test_interrupt_says_how_to_resume(tmp_path, calls, capsys):
    sys.modules["r2i_agent._train"].interrupt = True
    assert main(["train", "--env", ENV, "--steps", "9", "--logdir", str(tmp_path)]) == 130
    assert f"r2i-agent train --resume --logdir {tmp_path}" in capsys.readouterr().err


def test_a_run_stopped_by_the_loop_says_how_to_resume(tmp_path, calls, capsys):
    fake = sys.modules["r2i_agent._train"]
    fake.summary_extra = {"stopped_by": "max_seconds", "checkpoint_step": 4}
    argv = ["train", "--env", ENV, "--steps", "9", "--logdir", str(tmp_path), "--max-seconds", "1"]
    assert main(argv) == 0
    resume = f"continue with: r2i-agent train --resume --logdir {tmp_path}"
    assert f"--max-seconds reached; checkpoint at env step 4; {resume}" in capsys.readouterr().out
    fake.summary_extra = {"stopped_by": "SIGTERM", "checkpoint_step": 6}
    (tmp_path / "checkpoints" / "9").mkdir(parents=True)
    assert main(["train", "--resume", "--logdir", str(tmp_path)]) == 0  # a clean stop is a success
    assert f"stopped by SIGTERM; checkpoint at env step 6; {resume}" in capsys.readouterr().out


def test_eval_calls_evaluate(tmp_path, calls, capsys):
    _saved_run(tmp_path, checkpoint=True)
    assert main(["eval", "--logdir", str(tmp_path), "--episodes", "2"]) == 0
    assert calls == [dict(fn="evaluate", logdir=tmp_path, episodes=2, video=False)]
    assert "2 episodes: return 0.500" in capsys.readouterr().out


def test_plot_command_writes_a_png(tmp_path, capsys):
    for name, kind in [("a", "s3m"), ("b", "rssm")]:
        _saved_run(tmp_path / name, **({"model.sequence_model": kind, "model.policy_input": "output"}))
        lines = [json.dumps({"step": 100 * i, "episode/return": i / 10}) for i in range(1, 4)]
        (tmp_path / name / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "curves.png"
    assert main(["plot", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(out), "--spread", "std"]) == 0
    assert out.stat().st_size > 0 and out.read_bytes()[:4] == b"\x89PNG"
    assert "rssm: 1, s3m: 1" in capsys.readouterr().out


def test_env_kwargs_are_typed():
    kwargs = parse_env_kwargs(
        ["a=30", "b=false", "c=1e-3", "d=TRUE", "e=abc", "f=-2", "g=2.0", "h=inf", "i="]
    )
    assert kwargs == {
        "a": 30,
        "b": False,
        "c": 0.001,
        "d": True,
        "e": "abc",
        "f": -2,
        "g": 2.0,
        "h": "inf",
        "i": "",
    }
    assert [type(v) for v in kwargs.values()] == [int, bool, float, bool, str, int, float, str, str]


def test_env_kwargs_reach_the_loop_and_are_saved_for_resume(tmp_path, calls, capsys):
    argv = ["train", "--env", "bsuite/memory_len", "--steps", "10", "--logdir", str(tmp_path)]
    assert main([*argv, "--env-kwargs", "memory_length=30", "num_bits=2"]) == 0
    assert calls[-1]["env_kwargs"] == {"memory_length": 30, "num_bits": 2}
    assert load_run(tmp_path).env_kwargs == {"memory_length": 30, "num_bits": 2}
    assert json.loads((tmp_path / "config.json").read_text())["env_kwargs"] == {
        "memory_length": 30,
        "num_bits": 2,
    }
    (tmp_path / "checkpoints" / "10").mkdir(parents=True)
    assert main(["train", "--resume", "--logdir", str(tmp_path), "--steps", "20"]) == 0
    assert calls[-1]["env_kwargs"] == {"memory_length": 30, "num_bits": 2} and calls[-1]["resume"] is True
    restated = [
        "train",
        "--resume",
        "--logdir",
        str(tmp_path),
        "--env-kwargs",
        "num_bits=2",
        "memory_length=30",
    ]
    assert main(restated) == 0  # the same options in another order are no change
    assert main(["train", "--resume", "--logdir", str(tmp_path), "--env-kwargs", "memory_length=31"]) == 2
    assert "env_kwargs: memory_length=30 num_bits=2 -> memory_length=31" in capsys.readouterr().err


def test_runs_without_env_kwargs_train_with_none(tmp_path, calls):
    assert main(["train", "--env", ENV, "--steps", "10", "--logdir", str(tmp_path)]) == 0
    assert calls[-1]["env_kwargs"] == {} and load_run(tmp_path).env_kwargs == {}


def test_help_documents_env_kwargs(capsys):
    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--env-kwargs KEY=VALUE [KEY=VALUE ...]" in text and "memory_length=30" in text


def test_envs_lists_the_ids_of_a_suite(capsys):
    assert main(["envs", "bsuite"]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = [f"bsuite/memory_len/{n}" for n in range(23)] + [
        f"bsuite/discounting_chain/{n}" for n in range(20)
    ]
    assert lines == expected
    assert main(["envs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == r2i_envs.list_envs() and {"popgym/RepeatPreviousEasy", "atari/pong", *expected} <= set(
        lines
    )
    assert main(["envs", "gym"]) == 0
    assert "gym/CartPole-v1" in capsys.readouterr().out.splitlines()
