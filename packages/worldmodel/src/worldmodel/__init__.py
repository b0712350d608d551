"""worldmodel: the R2I world model (S3M, an S5 sequence model) and the DreamerV3 RSSM baseline.

Public API:
    WorldModel, batch_loss, train_step, make_optimizer, initial_carries   the model and its training
    SequenceModel, S3M, RSSM                   the recurrent core behind one interface
    WorldModelConfig, SSMConfig, LossScales, OptimConfig, preset, PRESETS   typed configuration
    LatentState, Carry, Observed, Batch, Imagined                           state containers
    save_world_model, load_world_model, save_module, restore_module         orbax checkpoints
    symlog, symexp, twohot_*, unimix_logits, categorical_kl, dyn_rep_losses, ...   the math
    MLP, Dense, LatentHead, encoders, decoders, RewardHead, ContinueHead    building blocks
"""

from ._checkpoint import load_world_model, restore_module, save_module, save_world_model
from ._config import PRESETS, LossScales, OptimConfig, SSMConfig, WorldModelConfig, config_from_dict, preset
from ._losses import (
    bernoulli_nll,
    categorical_entropy,
    categorical_kl,
    dyn_rep_losses,
    sample_straight_through,
    symexp,
    symlog,
    twohot_bins,
    twohot_decode,
    twohot_encode,
    twohot_symlog_loss,
    twohot_symlog_mean,
    unimix_logits,
)
from ._nets import (
    MLP,
    CNNDecoder,
    CNNEncoder,
    ContinueHead,
    Dense,
    LatentHead,
    MultiDecoder,
    MultiEncoder,
    RewardHead,
    VectorDecoder,
    VectorEncoder,
    image_to_unit,
)
from ._rssm import RSSM, layernorm_gru
from ._s3m import S3M
from ._sequence import SequenceModel
from ._types import Batch, Carry, Imagined, LatentState, Observed
from ._world_model import WorldModel, batch_loss, initial_carries, make_optimizer, train_step

__all__ = [
    "MLP",
    "PRESETS",
    "RSSM",
    "S3M",
    "Batch",
    "CNNDecoder",
    "CNNEncoder",
    "Carry",
    "ContinueHead",
    "Dense",
    "Imagined",
    "LatentHead",
    "LatentState",
    "LossScales",
    "MultiDecoder",
    "MultiEncoder",
    "Observed",
    "OptimConfig",
    "RewardHead",
    "SSMConfig",
    "SequenceModel",
    "VectorDecoder",
    "VectorEncoder",
    "WorldModel",
    "WorldModelConfig",
    "batch_loss",
    "bernoulli_nll",
    "categorical_entropy",
    "categorical_kl",
    "config_from_dict",
    "dyn_rep_losses",
    "image_to_unit",
    "initial_carries",
    "layernorm_gru",
    "load_world_model",
    "make_optimizer",
    "preset",
    "restore_module",
    "sample_straight_through",
    "save_module",
    "save_world_model",
    "symexp",
    "symlog",
    "train_step",
    "twohot_bins",
    "twohot_decode",
    "twohot_encode",
    "twohot_symlog_loss",
    "twohot_symlog_mean",
    "unimix_logits",
]
__version__ = "0.1.0"
