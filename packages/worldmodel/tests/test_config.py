"""Presets: sizes of design §3, selection by name, clear errors, dict round trip."""

import dataclasses

import jax
import pytest

from worldmodel import PRESETS, SSMConfig, WorldModel, WorldModelConfig, config_from_dict, preset

# preset → (H, P, layers, deter, policy input), as the table of design §3
TABLE = {
    "bsuite": (512, 128, 3, 512, "hidden"),
    "popgym": (512, 128, 3, 1024, "hidden"),
    "memorymaze": (1024, 512, 5, 2048, "full"),
    "atari100k": (512, 128, 4, 512, "full"),
    "dmc": (512, 128, 4, 512, "full"),
}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_preset_sizes(name):
    config = preset(name)
    ssm = config.ssm
    assert (ssm.width, ssm.state, ssm.layers, config.deter, config.policy_input) == TABLE[name]
    # shared: 32×32 categoricals, 1% unimix, 8 HiPPO blocks, no conjugate symmetry, dt ∈ [0.001, 0.1],
    # the published code's C init (LeCun over P·H), one hidden layer in prior and posterior
    assert (config.stoch, config.classes, config.unimix, config.latent_layers) == (32, 32, 0.01, 1)
    assert (ssm.blocks, ssm.conj_sym, ssm.dt_min, ssm.dt_max, ssm.C_init) == (8, False, 1e-3, 1e-1, "lecun")
    assert (config.imag_horizon, config.reward_bins, config.reward_range) == (15, 255, 20.0)
    assert config.optim.eps == 1e-8 and config.optim.clip == (200.0 if name == "memorymaze" else 1000.0)
    assert config.initial == ("zeros" if name == "bsuite" else "learned")
    assert SSMConfig().C_init == "s5"  # the library default stays S5's (design §3)


def test_preset_notes():
    assert preset("bsuite").ssm.discretization == "zoh"
    assert not preset("bsuite").ssm.learn_reset_state and preset("bsuite").dtype == "float32"
    assert preset("popgym").units == 512 and preset("popgym").layers == 2
    assert preset("popgym").enc_units == 512 and preset("popgym").enc_layers == 1
    mm = preset("memorymaze")
    assert (mm.optim.lr, mm.loss.dyn, mm.loss.rep) == (3e-4, 0.8, 0.2)
    assert (preset("dmc").optim.lr, preset("dmc").loss.dyn, preset("dmc").loss.rep) == (1e-4, 0.5, 0.1)
    assert set(PRESETS) == set(TABLE) | {"tiny"}


def test_unknown_preset_lists_names():
    with pytest.raises(
        ValueError, match="unknown preset 'popgim'; available presets: atari100k, bsuite, dmc"
    ):
        preset("popgim")


def test_overrides_and_invalid_choices():
    assert preset("tiny", deter=8).deter == 8
    with pytest.raises(TypeError):
        preset("tiny", no_such_field=1)
    # a ValueError from __post_init__, or a TypeError first where runtime type checks are on
    with pytest.raises((ValueError, TypeError), match="gru"):
        preset("tiny", sequence_model="gru")
    with pytest.raises(ValueError, match="the RSSM has none, use 'output'"):
        preset("popgym", sequence_model="rssm")
    with pytest.raises(dataclasses.FrozenInstanceError):
        preset("tiny").deter = 3


def test_config_dict_round_trip():
    config = preset("memorymaze")
    assert config_from_dict(dataclasses.asdict(config)) == config
    with pytest.raises(TypeError):
        config_from_dict({**dataclasses.asdict(config), "typo": 1})


def test_tiny_preset_builds_small():
    model = WorldModel(preset("tiny"), {"vector": (3,)}, 2, key=jax.random.key(0))
    size = sum(x.size for x in jax.tree.leaves(model) if hasattr(x, "size"))
    assert size < 60_000
    assert isinstance(model.config, WorldModelConfig)
