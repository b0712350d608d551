"""Typed, frozen configuration of the world model and its presets (design §3)."""

import dataclasses
from dataclasses import dataclass
from typing import Literal

SequenceModelKind = Literal["s3m", "rssm"]
PolicyInput = Literal["output", "hidden", "full"]
Discretization = Literal["bilinear", "zoh"]
CInit = Literal["s5", "lecun"]
DType = Literal["float32", "float64"]
Initial = Literal["zeros", "learned"]


@dataclass(frozen=True)
class SSMConfig:
    """S5 stack of the S3M sequence model.

    width: H, model width of every S5 block. state: P, complex states per block. layers: number of blocks.
    blocks: J, HiPPO-N blocks on the diagonal. dt_min, dt_max: range of the initial timescales Δ.
    learn_reset_state: learn the state an episode start resets to (else zeros).
    resets: reset the state where is_first (R2I); False carries it across episode boundaries, the
    paper's "no resets" ablation.
    """

    width: int = 512
    state: int = 128
    layers: int = 3
    blocks: int = 8
    discretization: Discretization = "bilinear"
    conj_sym: bool = False
    C_init: CInit = "s5"
    learn_reset_state: bool = False
    resets: bool = True
    dt_min: float = 1e-3
    dt_max: float = 1e-1


@dataclass(frozen=True)
class LossScales:
    """β_pred, β_dyn, β_rep of L = β_pred·L_pred + β_dyn·max(free, KL_dyn) + β_rep·max(free, KL_rep).

    free_nats: free bits in nats, applied to the KL summed over all categoricals of one step.
    """

    pred: float = 1.0
    dyn: float = 0.5
    rep: float = 0.1
    free_nats: float = 1.0


@dataclass(frozen=True)
class OptimConfig:
    """Adam with global-norm clipping for the world model (R2I/DreamerV3 v1 defaults).

    clip applies to each of the two parameter groups (S5 parameters, the rest) on its own, as R2I's
    ``model_opt_groups`` do. weight_decay: decoupled decay of the weight matrices outside the S5
    parameters (R2I uses 1e-2 for Memory Maze, else 0).
    """

    lr: float = 1e-4
    eps: float = 1e-8
    clip: float = 1000.0
    weight_decay: float = 0.0


@dataclass(frozen=True)
class WorldModelConfig:
    """Sizes and choices of a world model.

    sequence_model: ``"s3m"`` (R2I, S5 stack) or ``"rssm"`` (DreamerV3 GRU baseline).
    deter: size of h_t (the sequence model's output; the GRU state for the RSSM).
    stoch, classes: z is ``stoch`` categoricals with ``classes`` classes; unimix: uniform mixture weight.
    units, layers: width and depth of the MLPs of the reward, continue and decoder heads (LayerNorm + SiLU).
    latent_layers: hidden layers (width ``units``) of the prior and posterior heads; R2I and DreamerV3
    use one.
    initial: the state episodes start from: ``"learned"`` (R2I's default: h = tanh of a learned vector,
    z the prior's mode there, S3M's SSM reset states learned) or ``"zeros"`` (R2I's bsuite setting).
    enc_units, enc_layers: MLP encoder/decoder for vector observations.
    cnn_depth: channels of the first CNN stage (32·k for stage k = 1, 2, 4, 8) for 64×64 images.
    reward_bins, reward_range: two-hot bins of the reward head, in symlog space [−range, range].
    policy_input: features the policy reads: ``output`` (z, h), ``hidden`` (z, x), ``full`` (z, h, x).
    imag_horizon: imagination steps per start. dtype: parameter and compute dtype.
    """

    sequence_model: SequenceModelKind = "s3m"
    ssm: SSMConfig = SSMConfig()
    deter: int = 512
    stoch: int = 32
    classes: int = 32
    unimix: float = 0.01
    units: int = 512
    layers: int = 2
    latent_layers: int = 1
    initial: Initial = "learned"
    enc_units: int = 512
    enc_layers: int = 2
    cnn_depth: int = 32
    reward_bins: int = 255
    reward_range: float = 20.0
    loss: LossScales = LossScales()
    optim: OptimConfig = OptimConfig()
    policy_input: PolicyInput = "full"
    imag_horizon: int = 15
    dtype: DType = "float32"

    def __post_init__(self):
        for name, value, choices in [
            ("sequence_model", self.sequence_model, ("s3m", "rssm")),
            ("policy_input", self.policy_input, ("output", "hidden", "full")),
            ("dtype", self.dtype, ("float32", "float64")),
            ("initial", self.initial, ("zeros", "learned")),
            ("ssm.discretization", self.ssm.discretization, ("bilinear", "zoh")),
            ("ssm.C_init", self.ssm.C_init, ("s5", "lecun")),
        ]:
            if value not in choices:
                raise ValueError(f"unknown {name} {value!r}; expected one of {choices}")
        if self.sequence_model == "rssm" and self.policy_input != "output":
            raise ValueError(
                f"policy_input {self.policy_input!r} needs SSM hidden states; the RSSM has none, use 'output'"
            )


_BASE = WorldModelConfig()

# R2I's configs.yaml (bsuite: its configs_backup.yaml), as applied: S5 width H = rssm.units, P = rssm.hidden.
# Departures are listed with their reasons in r2i-agent's tests/test_presets.py.
PRESETS: dict[str, WorldModelConfig] = {
    # ZOH, zero initial state, float32; encoder/decoder MLP 5×1024.
    "bsuite": dataclasses.replace(
        _BASE,
        ssm=SSMConfig(width=512, state=128, layers=3, discretization="zoh", C_init="lecun"),
        deter=512,
        enc_units=1024,
        enc_layers=5,
        initial="zeros",
        policy_input="hidden",
    ),
    # Heads MLP 2×512, encoder/decoder 1×512.
    "popgym": dataclasses.replace(
        _BASE,
        ssm=SSMConfig(width=512, state=128, layers=3, C_init="lecun"),
        deter=1024,
        units=512,
        layers=2,
        enc_units=512,
        enc_layers=1,
        policy_input="hidden",
    ),
    # Heads 4×1024, CNN depth 48, clip 200, weight decay 1e-2 outside the S5 parameters.
    "memorymaze": dataclasses.replace(
        _BASE,
        ssm=SSMConfig(width=1024, state=512, layers=5, C_init="lecun"),
        deter=2048,
        units=1024,
        layers=4,
        enc_units=400,
        enc_layers=4,
        cnn_depth=48,
        loss=LossScales(dyn=0.8, rep=0.2),
        optim=OptimConfig(lr=3e-4, clip=200.0, weight_decay=1e-2),
        policy_input="full",
    ),
    "atari100k": dataclasses.replace(
        _BASE, ssm=SSMConfig(width=512, state=128, layers=4, C_init="lecun"), deter=512, policy_input="full"
    ),
    # dmc_proprio and dmc_vision: encoder/decoder MLP 5×1024 (used for proprio observations).
    "dmc": dataclasses.replace(
        _BASE,
        ssm=SSMConfig(width=512, state=128, layers=4, C_init="lecun"),
        deter=512,
        enc_units=1024,
        enc_layers=5,
        policy_input="full",
    ),
    # Seconds on a CPU: for tests and smoke runs.
    "tiny": dataclasses.replace(
        _BASE,
        ssm=SSMConfig(width=16, state=8, layers=2, blocks=2),
        deter=16,
        stoch=4,
        classes=4,
        units=32,
        layers=1,
        enc_units=32,
        enc_layers=1,
        cnn_depth=4,
        reward_bins=31,
        policy_input="full",
        imag_horizon=3,
    ),
}


def preset(name: str, **overrides) -> WorldModelConfig:
    """The preset called ``name``, with top-level fields replaced by ``overrides``.

    >>> preset("popgym").ssm.width
    512
    >>> preset("tiny", sequence_model="rssm", policy_input="output").sequence_model
    'rssm'
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; available presets: {', '.join(sorted(PRESETS))}")
    return dataclasses.replace(PRESETS[name], **overrides)


def config_from_dict(data: dict) -> WorldModelConfig:
    """Inverse of ``dataclasses.asdict`` for :class:`WorldModelConfig`; unknown fields raise."""
    nested = {"ssm": SSMConfig, "loss": LossScales, "optim": OptimConfig}
    return WorldModelConfig(**{k: nested[k](**v) if k in nested else v for k, v in data.items()})
