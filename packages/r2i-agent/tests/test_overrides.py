"""Dotted config overrides: parsing by annotated type, suggestions, validation of the rebuilt config."""

import dataclasses
from typing import Literal

import pytest

from r2i_agent._config import agent_preset
from r2i_agent._overrides import (
    ConfigError,
    apply_overrides,
    coerce_value,
    leaf_fields,
    parse_value,
    type_name,
)


def test_nested_int_float_bool_literal_and_top_level_overrides():
    base = agent_preset("tiny")
    config = apply_overrides(
        base,
        {
            "model.ssm.layers": "1",
            "train.batch_size": "8",
            "actor_critic.entropy": "1e-3",
            "model.ssm.conj_sym": "yes",
            "train.replay_in_checkpoint": "0",
            "model.ssm.discretization": "zoh",
            "seed": "3",
        },
    )
    assert config.model.ssm.layers == 1 and type(config.model.ssm.layers) is int
    assert config.train.batch_size == 8
    assert config.actor_critic.entropy == pytest.approx(1e-3) and type(config.actor_critic.entropy) is float
    assert config.model.ssm.conj_sym is True and config.train.replay_in_checkpoint is False
    assert config.model.ssm.discretization == "zoh"
    assert config.seed == 3
    untouched = dataclasses.replace(
        config,
        model=dataclasses.replace(config.model, ssm=base.model.ssm),
        train=base.train,
        actor_critic=base.actor_critic,
        seed=base.seed,
    )
    assert untouched == base


def test_no_overrides_returns_the_same_config():
    base = agent_preset("popgym")
    assert apply_overrides(base, {}) is base


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("False", False), ("1", True), ("0", False), ("yes", True), ("no", False)],
)
def test_bool_spellings(text, expected):
    assert parse_value("x", bool, text) is expected


def test_int_accepts_float_notation_but_not_fractions():
    assert parse_value("train.prefill", int, "1e3") == 1000
    with pytest.raises(ConfigError, match=r"--train\.batch_size expects int, got '1\.5'"):
        apply_overrides(agent_preset("tiny"), {"train.batch_size": "1.5"})
    with pytest.raises(ConfigError, match="expects int, got 'eight'"):
        apply_overrides(agent_preset("tiny"), {"train.batch_size": "eight"})


def test_bad_float_and_bool_name_the_field_and_the_type():
    with pytest.raises(ConfigError, match=r"--actor_critic\.lr expects float, got 'fast'"):
        apply_overrides(agent_preset("tiny"), {"actor_critic.lr": "fast"})
    with pytest.raises(ConfigError, match=r"--model\.ssm\.conj_sym expects bool, got 'maybe'"):
        apply_overrides(agent_preset("tiny"), {"model.ssm.conj_sym": "maybe"})


def test_literal_must_be_one_of_the_choices():
    with pytest.raises(ConfigError, match=r"--model\.sequence_model expects \{s3m,rssm\}, got 'lstm'"):
        apply_overrides(agent_preset("tiny"), {"model.sequence_model": "lstm"})


def test_unknown_name_suggests_the_closest_paths():
    with pytest.raises(
        ConfigError, match=r"unknown option --model\.ssm\.layer; did you mean --model\.ssm\.layers"
    ):
        apply_overrides(agent_preset("tiny"), {"model.ssm.layer": "2"})
    with pytest.raises(ConfigError, match=r"--train\.batch_size"):
        apply_overrides(agent_preset("tiny"), {"batch_size": "2"})


def test_a_group_is_not_a_field():
    with pytest.raises(ConfigError, match=r"--model\.ssm is a group of fields"):
        apply_overrides(agent_preset("tiny"), {"model.ssm": "2"})


def test_validation_of_the_rebuilt_config_becomes_a_config_error():
    with pytest.raises(ConfigError, match="invalid config: policy_input 'hidden' needs SSM hidden states"):
        apply_overrides(agent_preset("popgym"), {"model.sequence_model": "rssm"})
    with pytest.raises(
        ConfigError,
        match=r"invalid config: train\.batch_size must be positive, got 0 \(with --train\.batch_size 0\)",
    ):
        apply_overrides(agent_preset("tiny"), {"train.batch_size": "0"})


def test_overrides_are_applied_together_before_validation():
    config = apply_overrides(
        agent_preset("popgym"), {"model.sequence_model": "rssm", "model.policy_input": "output"}
    )
    assert (config.model.sequence_model, config.model.policy_input) == ("rssm", "output")


def test_leaf_fields_cover_every_nested_field_with_its_type_and_value():
    leaves = {leaf.path: leaf for leaf in leaf_fields(agent_preset("popgym"))}
    assert leaves["model.ssm.layers"].type is int and leaves["model.ssm.layers"].value == 3
    assert leaves["model.deter"].value == 1024
    assert type_name(leaves["model.policy_input"].type) == "{output,hidden,full}"
    assert "seed" in leaves and "model.loss.free_nats" in leaves and "train.train_ratio" in leaves
    assert not any(path in leaves for path in ("model", "model.ssm", "train"))


def test_optional_and_tuple_types():
    assert parse_value("x", int | None, "none") is None
    assert parse_value("x", int | None, "4") == 4
    assert parse_value("x", tuple[int, ...], "1,2,3") == (1, 2, 3)
    assert parse_value("x", Literal[1, 2], "2") == 2


def test_coerce_checks_json_values():
    assert coerce_value("a", float, 3) == 3.0 and type(coerce_value("a", float, 3)) is float
    assert coerce_value("a", tuple[int, ...], [1, 2]) == (1, 2)
    with pytest.raises(ConfigError, match=r"model\.deter should be int, got 1\.5"):
        coerce_value("model.deter", int, 1.5)
    with pytest.raises(ConfigError, match="should be int"):
        coerce_value("model.deter", int, True)
    with pytest.raises(ConfigError, match="should be"):
        coerce_value("model.dtype", Literal["float32", "float64"], "float16")
