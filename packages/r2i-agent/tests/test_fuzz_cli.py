"""Fuzzing the input checks: every generated ``r2i-agent train`` command line is invalid and must be answered
with exit status 2 and one line ``r2i-agent: error: ...`` on stderr before anything is written or computed;
``r2i_envs.make`` must refuse bad ids, counts and seeds with UnknownEnvError / ValueError / TypeError naming
the problem.

Every case is built to be invalid by rules stated here (independently of the checks under test), and the
training loop is replaced by a stub that fails the test, so a case that slipped through never trains.
"""

import argparse
import contextlib
import io
import math
import os
import pathlib
import sys
import tempfile
import types

import hypothesis.strategies as st
import pytest
from hypothesis import example, given, settings

import r2i_envs
from r2i_agent._cli import build_parser, main
from r2i_agent._config import AGENT_PRESETS, AgentConfig
from r2i_agent._overrides import leaf_fields
from r2i_envs._registry import SUITES

ENVS = ["popgym/RepeatPreviousEasy", "bsuite/memory_len/3"]  # valid ids with a default preset
FIELDS = {leaf.path: leaf.type for leaf in leaf_fields(AgentConfig())}
GROUPS = {path.rsplit(".", i)[0] for path in FIELDS for i in range(1, path.count(".") + 1)}
LISTED_ENVS = r2i_envs.list_envs()
PARAMETRIC_ENVS = [f"{suite.prefix}/{name}" for suite in SUITES for name in suite.parametric]
KNOWN_ENVS = set(LISTED_ENVS) | set(PARAMETRIC_ENVS)
BOOL_WORDS = ("true", "false", "1", "0", "yes", "no", "on", "off")  # what parse_value documents
# CI replays the same examples every run (no flaky red builds); local runs explore new ones.
IN_CI = bool(os.environ.get("CI"))
FAST = settings(max_examples=60, deadline=None, derandomize=IN_CI)


def _train_options() -> set[str]:
    """Every option name ``train`` takes (config fields, --env, --help, ...), without the dashes."""
    parser = build_parser(["train"])
    [commands] = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return {
        name.lstrip("-") for action in commands.choices["train"]._actions for name in action.option_strings
    }


TRAIN_OPTIONS = _train_options()


@pytest.fixture(scope="module", autouse=True)
def _no_training():
    """Replace the training loop by a stub that fails: a generated case that was valid must not train."""
    fake = types.ModuleType("r2i_agent._train")

    def refuse(*args, **kwargs):
        raise AssertionError("a generated command line was accepted and started training")

    fake.train = fake.evaluate = refuse
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "r2i_agent._train", fake)
        yield


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz_cli")


def assert_rejected(workdir, args, expected=(), *, env="popgym/RepeatPreviousEasy", preset=None, data=None):
    """``r2i-agent train --env ENV --steps N --logdir DIR [--preset P] *args`` exits 2 with one error line
    containing one of ``expected`` (any line if empty), prints nothing else and writes nothing."""
    parent = pathlib.Path(tempfile.mkdtemp(dir=workdir))
    logdir = parent / "run"
    existing = data.draw(st.booleans(), label="logdir exists") if data is not None else False
    if existing:
        logdir.mkdir()
    argv = ["train", f"--env={env}", "--steps", "1000", "--logdir", str(logdir)]
    argv += [] if preset is None else [f"--preset={preset}"]
    argv += list(args)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    text = err.getvalue()
    assert status == 2, (argv, text)
    assert out.getvalue() == "", argv
    assert "Traceback" not in text
    lines = text.splitlines()
    assert len(lines) == 1 and text == lines[0] + "\n" and lines[0].strip(), (argv, text)
    assert lines[0].startswith("r2i-agent: error: ") and lines[0][len("r2i-agent: error: ") :].strip()
    if expected:
        assert any(part in text for part in expected), (argv, text, expected)
    assert sorted(parent.rglob("*")) == ([logdir] if existing else []), argv
    return text


def option(path: str, value: str, data) -> list[str]:
    """``--path=value`` or ``--path value`` (the latter only where argparse takes the value as one)."""
    if value.startswith("-") or not data.draw(st.booleans(), label="separate value"):
        return [f"--{path}={value}"]
    return [f"--{path}", value]


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ----- wrong override keys -----

_VALUES = st.text("abcxyz0123456789._", min_size=1, max_size=6)
_NAME_CHARS = st.characters(exclude_categories=("Cs",), exclude_characters="=")


@st.composite
def misspelt(draw, path: str) -> str:
    """``path`` with one or two edits: a character deleted, inserted, replaced, swapped or case-changed."""
    for _ in range(draw(st.integers(1, 2))):
        i = draw(st.integers(0, len(path) - 1))
        edit = draw(st.sampled_from(["delete", "insert", "replace", "swap", "case"]))
        char = draw(st.sampled_from("abcdefghijklmnopqrstuvwxyz._0123456789"))
        if edit == "delete" and len(path) > 1:
            path = path[:i] + path[i + 1 :]
        elif edit == "insert":
            path = path[:i] + char + path[i:]
        elif edit == "replace":
            path = path[:i] + char + path[i + 1 :]
        elif edit == "swap" and i + 1 < len(path):
            path = path[:i] + path[i + 1] + path[i] + path[i + 2 :]
        else:
            path = path[:i] + path[i].swapcase() + path[i + 1 :]
    return path


_IDENT = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)
WRONG_KEYS = st.one_of(
    st.text(_NAME_CHARS, min_size=1, max_size=20),  # anything
    st.sampled_from(sorted(FIELDS)).flatmap(misspelt),  # near misses of real fields
    st.builds(
        lambda group, name: f"{group}.{name}", st.sampled_from(sorted(GROUPS)), _IDENT
    ),  # model.ssm.nope
    st.builds(lambda leaf, name: f"{leaf}.{name}", st.sampled_from(sorted(FIELDS)), _IDENT),  # model.deter.x
    st.builds(lambda a, b: f"{a}.{b}", _IDENT, _IDENT),  # a group that does not exist
    st.sampled_from(sorted(GROUPS)),  # a group, not a field
).filter(lambda key: key not in TRAIN_OPTIONS)


@FAST
@given(key=WRONG_KEYS, value=st.none() | _VALUES, data=st.data())
def test_unknown_override_keys(workdir, key, value, data):
    args = [f"--{key}"] if value is None else [f"--{key}", value]
    assert_rejected(workdir, args, ["unknown option --", "is a group of fields"], data=data)


def test_a_nested_path_that_does_not_exist_suggests_fields(workdir):
    text = assert_rejected(workdir, ["--model.ssm.nope", "3"], ["unknown option --model.ssm.nope"])
    assert "did you mean" in text


# ----- wrong types -----

_NOT_A_NUMBER = st.text(max_size=12).filter(lambda text: not is_number(text))
_NOT_FINITE = st.sampled_from(["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e400", "-1e999"])
_FRACTIONAL = st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not x.is_integer()).map(repr)


def wrong_type(tp) -> st.SearchStrategy[str]:
    """Text that is no value of the annotated type ``tp`` (by the rules parse_value documents)."""
    if tp is int:
        return _NOT_A_NUMBER | _NOT_FINITE | _FRACTIONAL
    if tp is float:
        return _NOT_A_NUMBER | _NOT_FINITE
    if tp is bool:
        return st.text(max_size=8).filter(lambda text: text.strip().lower() not in BOOL_WORDS)
    choices = [str(choice) for choice in tp.__args__]  # a Literal
    return st.text(max_size=10).filter(lambda text: text.strip() not in choices) | st.sampled_from(
        [choice.upper() for choice in choices] + [choice + "x" for choice in choices]
    )


@FAST
@given(path=st.sampled_from(sorted(FIELDS)), data=st.data())
def test_values_of_the_wrong_type(workdir, path, data):
    value = data.draw(wrong_type(FIELDS[path]), label="value")
    assert_rejected(workdir, [f"--{path}={value}"], [f"--{path} expects"], data=data)


# ----- values out of range -----


def _ints(**bounds) -> st.SearchStrategy[str]:
    return st.integers(**bounds).map(str)


def _floats(**bounds) -> st.SearchStrategy[str]:
    return st.floats(allow_nan=False, allow_infinity=False, **bounds).map(repr)


_NOT_POSITIVE_INT = _ints(max_value=0)
_NEGATIVE_INT = _ints(max_value=-1)
_NOT_POSITIVE_FLOAT = _floats(max_value=0.0)  # -0.0 too
_NEGATIVE_FLOAT = _floats(max_value=-5e-324)
_OUTSIDE_0_1 = _NEGATIVE_FLOAT | _floats(min_value=1.0, exclude_min=True)

# Invalid values of every numeric field: sizes, counts and intervals must be positive, layer counts, the
# prefill, the lr decay steps and the seed not negative (the seed also below 2**32), weights and rates not
# negative, fractions in [0, 1], the discount in (0, 1].
OUT_OF_RANGE = {
    **{path: _NOT_POSITIVE_INT for path, tp in FIELDS.items() if tp is int},
    **{path: _NEGATIVE_FLOAT for path, tp in FIELDS.items() if tp is float},
    **dict.fromkeys(
        [
            "model.layers",
            "model.enc_layers",
            "actor_critic.layers",
            "actor_critic.lr_decay_steps",
            "train.prefill",
        ],
        _NEGATIVE_INT,
    ),
    "seed": _NEGATIVE_INT | _ints(min_value=2**32),
    "model.reward_bins": _ints(max_value=1),
    **dict.fromkeys(
        [
            *["model.ssm.dt_min", "model.ssm.dt_max", "model.reward_range", "model.optim.lr"],
            *["model.optim.clip", "actor_critic.lr", "actor_critic.clip", "actor_critic.lr_end"],
            "train.train_ratio",
        ],
        _NOT_POSITIVE_FLOAT,
    ),
    **dict.fromkeys(["model.unimix", "actor_critic.slow_rate", "actor_critic.return_decay"], _OUTSIDE_0_1),
    "actor_critic.lambda_": _OUTSIDE_0_1,
    "actor_critic.discount": _NOT_POSITIVE_FLOAT | _floats(min_value=1.0, exclude_min=True),
}


@settings(max_examples=120, deadline=None, derandomize=IN_CI)
@given(
    path=st.sampled_from(sorted(OUT_OF_RANGE)),
    preset=st.none() | st.sampled_from(sorted(AGENT_PRESETS)),
    data=st.data(),
)
def test_values_out_of_range(workdir, path, preset, data):
    value = data.draw(OUT_OF_RANGE[path], label="value")
    args = option(path, value, data)
    assert_rejected(
        workdir, args, [f"invalid config: {path} must", f"and {path} in"], preset=preset, data=data
    )


@FAST
@given(preset=st.sampled_from(sorted(AGENT_PRESETS)), data=st.data())
def test_values_that_do_not_fit_together(workdir, preset, data):
    config = AGENT_PRESETS[preset]
    ssm, train = config.model.ssm, config.train
    case = data.draw(st.sampled_from(["state", "conj_sym", "dt", "replay"]), label="case")
    if case == "state":  # the S5 state splits into equal blocks
        state = data.draw(st.integers(1, 10_000).filter(lambda n: n % ssm.blocks), label="state")
        assert_rejected(workdir, [f"--model.ssm.state={state}"], ["model.ssm.state"], preset=preset)
    elif case == "conj_sym":  # conjugate symmetry halves each block: an even block size
        odd = data.draw(st.integers(0, 100), label="odd") * 2 + 1
        args = ["--model.ssm.conj_sym=true", f"--model.ssm.state={odd * ssm.blocks}"]
        assert_rejected(workdir, args, ["model.ssm.state"], preset=preset)
    elif case == "dt":
        low, high = data.draw(st.tuples(*[st.floats(1e-6, 10.0)] * 2).filter(lambda t: t[0] < t[1]))
        args = [f"--model.ssm.dt_min={high!r}", f"--model.ssm.dt_max={low!r}"]
        assert_rejected(workdir, args, ["model.ssm.dt_min"], preset=preset)
    else:  # replay holds a training window of each env
        capacity = data.draw(st.integers(1, train.num_envs * train.batch_length - 1), label="capacity")
        assert_rejected(
            workdir, [f"--train.replay_capacity={capacity}"], ["train.replay_capacity"], preset=preset
        )


def test_a_negative_value_in_exponent_notation_says_how_to_pass_it(workdir):
    text = assert_rejected(workdir, ["--actor_critic.lr", "-1e-3"], ["expected one argument"])
    assert "--OPTION=VALUE" in text
    assert_rejected(workdir, ["--actor_critic.lr=-1e-3"], ["actor_critic.lr must be positive"])


@FAST
@given(steps=_NOT_POSITIVE_INT | _FRACTIONAL | _NOT_A_NUMBER | _NOT_FINITE, data=st.data())
def test_bad_step_budgets(workdir, steps, data):
    assert_rejected(workdir, [f"--steps={steps}"], ["--steps"], data=data)


# ----- presets, env ids, policy input -----


@FAST
@given(preset=st.text(max_size=12) | st.sampled_from(sorted(AGENT_PRESETS)).flatmap(misspelt))
@example(preset="")
def test_unknown_presets(workdir, preset):
    if preset in AGENT_PRESETS:
        preset += "?"
    assert_rejected(workdir, [], ["unknown preset"], preset=preset)


def _is_unknown_env(env_id: str) -> bool:
    return env_id not in KNOWN_ENVS


BAD_ENV_IDS = st.one_of(
    st.text(max_size=24),
    st.sampled_from(LISTED_ENVS).flatmap(misspelt),
    st.builds(lambda suite, name: f"{suite}/{name}", st.sampled_from([s.prefix for s in SUITES]), _IDENT),
    st.builds(lambda n: f"bsuite/memory_len/{n}", st.integers(-5, 10**6)),
    st.just("bsuite/memory_len/99"),
).filter(_is_unknown_env)


@FAST
@given(env_id=BAD_ENV_IDS, preset=st.none() | st.sampled_from(sorted(AGENT_PRESETS)), data=st.data())
def test_unknown_env_ids(workdir, env_id, preset, data):
    assert_rejected(workdir, [], ["env id"], env=env_id, preset=preset, data=data)


@pytest.mark.parametrize("env_id", ["bsuite/memory_len/99", "popgym/RepeatPrevousEasy", "bsuite/memory_len"])
def test_named_bad_env_ids(workdir, env_id):
    assert_rejected(workdir, [], [f"env id {env_id!r}"], env=env_id)


@FAST
@given(
    preset=st.none() | st.sampled_from(sorted(AGENT_PRESETS)),
    policy=st.none() | st.sampled_from(["hidden", "full"]),
    env=st.sampled_from(ENVS),
    data=st.data(),
)
def test_policy_input_the_rssm_lacks(workdir, preset, policy, env, data):
    args = option("model.sequence_model", "rssm", data)
    if policy is not None:
        extra = option("model.policy_input", policy, data)
        args = extra + args if data.draw(st.booleans(), label="policy first") else args + extra
    else:  # every preset reads more than the RSSM's output
        assert AGENT_PRESETS[preset or env.partition("/")[0]].model.policy_input != "output"
    assert_rejected(workdir, args, ["policy_input"], env=env, preset=preset, data=data)


# Inputs the fuzzing found accepted (training started, then crashed or ran on nonsense) or badly reported.
FOUND = {
    "empty preset": (["--preset="], "unknown preset ''"),
    "zero size": (["--model.deter", "0"], "model.deter must be at least 1"),
    "negative seed": (["--seed", "-1"], "seed must be at least 0"),
    "huge seed": (["--seed", "1e30"], "seed must be at most"),
    "infinite ratio": (["--train.train_ratio", "inf"], "not a finite number"),
    "nan learning rate": (["--model.optim.lr=nan"], "not a finite number"),
    "one reward bin": (["--model.reward_bins", "1"], "model.reward_bins must be at least 2"),
    "no eval episodes": (["--train.eval_episodes", "0"], "train.eval_episodes must be at least 1"),
    "negative layers": (["--actor_critic.layers=-1"], "actor_critic.layers must be at least 0"),
    "unimix above one": (["--model.unimix", "1.5"], "model.unimix must be in [0, 1]"),
    "state not in blocks": (["--model.ssm.state", "9"], "multiple of model.ssm.blocks"),
    "dt range": (["--model.ssm.dt_min", "1", "--model.ssm.dt_max", "0.5"], "must not exceed"),
    "dash value": (["--actor_critic.lr", "-1e-3"], "--OPTION=VALUE"),
}


@pytest.mark.parametrize("case", list(FOUND))
def test_inputs_fuzzing_found(workdir, case):
    args, expected = FOUND[case]
    assert_rejected(workdir, args, [expected])


# ----- r2i_envs.make -----

ENV = "popgym/RepeatPreviousEasy"


def _make(*args, **kwargs):
    env = r2i_envs.make(*args, **kwargs)
    env.close()
    raise AssertionError(f"r2i_envs.make{args, kwargs} accepted bad input")


@FAST
@given(env_id=BAD_ENV_IDS)
def test_make_refuses_unknown_env_ids(env_id):
    with pytest.raises(r2i_envs.UnknownEnvError, match="Unknown env id") as info:
        _make(env_id, num_envs=1, seed=0)
    assert isinstance(info.value, ValueError)


@FAST
@given(num_envs=st.integers(max_value=0))
def test_make_refuses_too_few_envs(num_envs):
    with pytest.raises(ValueError, match="num_envs"):
        _make(ENV, num_envs=num_envs, seed=0)


_NOT_AN_INT = st.one_of(
    st.floats().filter(lambda x: not math.isfinite(x) or x >= 1),
    st.text(max_size=4),
    st.none(),
    st.lists(st.integers(1, 3), max_size=2),
)


@settings(max_examples=10, deadline=None, derandomize=IN_CI)
@given(num_envs=_NOT_AN_INT)
def test_make_refuses_num_envs_that_are_no_int(num_envs):
    with pytest.raises((TypeError, ValueError), match="num_envs"):
        _make(ENV, num_envs=num_envs, seed=0)


@FAST
@given(
    seed=st.one_of(
        st.integers(max_value=-1),
        st.floats(),
        st.text(max_size=4),
        st.none(),
        st.lists(st.integers(0, 3), max_size=2),
    )
)
def test_make_refuses_bad_seeds(seed):
    with pytest.raises((TypeError, ValueError), match="seed"):
        _make(ENV, num_envs=1, seed=seed)
