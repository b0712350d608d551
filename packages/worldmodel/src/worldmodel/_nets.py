"""Networks of the world model: MLPs, encoders/decoders for vectors and 64×64 images, heads.

Every module takes ONE unbatched example; callers ``jax.vmap`` over time and batch.
"""

from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Num, PRNGKeyArray

from ._losses import symlog, twohot_bins, twohot_symlog_loss, twohot_symlog_mean, unimix_logits
from ._types import Logits, Observation

IMAGE_SIZE = 64
_CNN_STAGES = 4  # 64 → 32 → 16 → 8 → 4


def _zeroed(linear: eqx.nn.Linear) -> eqx.nn.Linear:
    """The same layer with zero weights and bias: the head starts out predicting exactly zero."""
    linear = eqx.tree_at(lambda m: m.weight, linear, jnp.zeros_like(linear.weight))
    return eqx.tree_at(lambda m: m.bias, linear, jnp.zeros_like(linear.bias))


def linear(layer: eqx.nn.Linear, x: Float[Array, " I"]) -> Float[Array, " O"]:
    """``layer(x)`` written as x @ Wᵀ (+ b): the same numbers, but under ``vmap`` XLA's dot then yields
    [N, O] directly, where W @ x yields [O, N] and a transpose. Twice as fast for an MLP's forward and
    backward pass over a batch on CPU (docs/benchmarks.md)."""
    y = x @ layer.weight.T
    return y if layer.bias is None else y + layer.bias


class Dense(eqx.Module):
    """Linear (no bias) → LayerNorm → SiLU, the hidden layer of every DreamerV3 MLP."""

    linear: eqx.nn.Linear
    norm: eqx.nn.LayerNorm

    def __init__(self, in_size: int, out_size: int, *, key: PRNGKeyArray, dtype=jnp.float32):
        self.linear = eqx.nn.Linear(in_size, out_size, use_bias=False, key=key, dtype=dtype)
        self.norm = eqx.nn.LayerNorm(out_size, dtype=dtype)

    def __call__(self, x: Float[Array, " I"]) -> Float[Array, " O"]:
        return jax.nn.silu(self.norm(linear(self.linear, x)))


class MLP(eqx.Module):
    """``layers`` Dense layers of width ``units``, then a linear output layer.

    ``zero_out=True`` zero-initializes the output layer (DreamerV3's reward and critic heads).

    Example:
        >>> mlp = MLP(8, 3, units=32, layers=2, key=jax.random.key(0))
        >>> mlp(jnp.ones(8)).shape
        (3,)
    """

    hidden: tuple[Dense, ...]
    out: eqx.nn.Linear

    def __init__(
        self,
        in_size: int,
        out_size: int,
        units: int,
        layers: int,
        *,
        key: PRNGKeyArray,
        zero_out: bool = False,
        dtype=jnp.float32,
    ):
        keys = jax.random.split(key, layers + 1)
        sizes = [in_size] + [units] * layers
        self.hidden = tuple(Dense(sizes[i], sizes[i + 1], key=keys[i], dtype=dtype) for i in range(layers))
        out = eqx.nn.Linear(sizes[-1], out_size, key=keys[-1], dtype=dtype)
        self.out = _zeroed(out) if zero_out else out

    def __call__(self, x: Float[Array, " I"]) -> Float[Array, " O"]:
        for layer in self.hidden:
            x = layer(x)
        return linear(self.out, x)


class LatentHead(eqx.Module):
    """MLP → logits of ``stoch`` categoricals with ``classes`` classes, mixed with 1% uniform (unimix).

    Used for the prior p(z | h) and the posterior q(z | o) (or q(z | h, o) for the RSSM).
    """

    mlp: MLP
    stoch: int = eqx.field(static=True)
    classes: int = eqx.field(static=True)
    unimix: float = eqx.field(static=True)

    def __init__(
        self,
        in_size: int,
        units: int,
        layers: int,
        stoch: int,
        classes: int,
        unimix: float,
        *,
        key: PRNGKeyArray,
        dtype=jnp.float32,
    ):
        self.mlp = MLP(in_size, stoch * classes, units, layers, key=key, dtype=dtype)
        self.stoch, self.classes, self.unimix = stoch, classes, unimix

    def __call__(self, x: Float[Array, " I"]) -> Logits:
        logits = self.mlp(x).reshape(self.stoch, self.classes)
        return unimix_logits(logits, self.unimix)


class VectorEncoder(eqx.Module):
    """symlog(o) → ``layers`` Dense layers: embedding of a vector observation."""

    layers: tuple[Dense, ...]

    def __init__(self, size: int, units: int, layers: int, *, key: PRNGKeyArray, dtype=jnp.float32):
        keys = jax.random.split(key, layers)
        sizes = [size] + [units] * layers
        self.layers = tuple(Dense(sizes[i], sizes[i + 1], key=keys[i], dtype=dtype) for i in range(layers))

    def __call__(self, obs: Float[Array, " O"]) -> Float[Array, " E"]:
        x = symlog(obs)
        for layer in self.layers:
            x = layer(x)
        return x


class VectorDecoder(eqx.Module):
    """MLP from features to the symlog of a vector observation; loss: symlog MSE."""

    mlp: MLP

    def __init__(self, in_size: int, size: int, units: int, layers: int, *, key, dtype=jnp.float32):
        self.mlp = MLP(in_size, size, units, layers, key=key, dtype=dtype)

    def __call__(self, features: Float[Array, " F"]) -> Float[Array, " O"]:
        """Prediction in symlog space; ``symexp`` gives the observation."""
        return self.mlp(features)

    def loss(self, features: Float[Array, " F"], obs: Float[Array, " O"]) -> Float[Array, ""]:
        """Σ_i (f(features)_i − symlog(o_i))²."""
        return jnp.sum((self(features) - symlog(obs)) ** 2)


def _channel_norm(norm: eqx.nn.LayerNorm, x: Float[Array, "C H W"]) -> Float[Array, "C H W"]:
    """LayerNorm over the channels of every pixel."""
    return jnp.moveaxis(jax.vmap(jax.vmap(norm))(jnp.moveaxis(x, 0, -1)), -1, 0)


def upsample_conv(conv: eqx.nn.ConvTranspose2d, x: Float[Array, "I H W"]) -> Float[Array, "O 2*H 2*W"]:
    """``conv(x)`` for the decoder's transposed convolutions (kernel 4, stride 2, padding 1), computed as
    four stride-1 convolutions with 2×2 kernels, one per output phase, interleaved.

    Same numbers as ``conv(x)``; why: XLA's CPU backend takes the weight gradient of ``conv(x)`` in a form
    whose cost grows faster than the batch (decoder forward + backward over 256 / 1,024 images: 4.4 /
    36.4 s), where stride-1 weight gradients run on its fast kernels (docs/benchmarks.md).
    """
    if (
        (conv.kernel_size, conv.stride, conv.padding, conv.output_padding, conv.dilation)
        != ((4, 4), (2, 2), ((1, 1), (1, 1)), (0, 0), (1, 1))
        or conv.groups != 1
        or conv.padding_mode != "ZEROS"
    ):
        raise ValueError("upsample_conv takes a ConvTranspose2d with kernel 4, stride 2, padding 1")
    # Output row 2u + a reads input rows u - 1, u (kernel rows 0, 2) for a = 0 and u, u + 1 (rows 1, 3)
    # for a = 1; the same for columns.
    pads = ((1, 0), (0, 1))

    def phase(a: int, b: int) -> Float[Array, "O H W"]:
        kernel = conv.weight[:, :, a::2, b::2]
        return jax.lax.conv_general_dilated(x[None], kernel, (1, 1), (pads[a], pads[b]))[0]

    rows = [jnp.stack([phase(a, 0), phase(a, 1)], axis=-1) for a in (0, 1)]  # [O, H, W, 2 (b)] each
    y = jnp.stack(rows, axis=-3)  # [O, H, 2 (a), W, 2 (b)]
    out, height, _, width, _ = y.shape
    y = y.reshape(out, 2 * height, 2 * width)
    return y if conv.bias is None else y + conv.bias


def image_to_unit(image: Num[Array, "H W C"]) -> Float[Array, "H W C"]:
    """uint8 image → floats in [−0.5, 0.5], the space the CNN reads and the decoder predicts."""
    return image.astype(jnp.float32) / 255.0 - 0.5


class CNNEncoder(eqx.Module):
    """DreamerV3 image encoder: 4 stride-2 convs (kernel 4) with depths 32·k (k = 1, 2, 4, 8 for
    ``depth=32``), each with channel LayerNorm and SiLU; 64×64×C → 4×4×8·depth, flattened."""

    convs: tuple[eqx.nn.Conv2d, ...]
    norms: tuple[eqx.nn.LayerNorm, ...]

    def __init__(self, channels: int, depth: int, *, key: PRNGKeyArray, dtype=jnp.float32):
        keys = jax.random.split(key, _CNN_STAGES)
        sizes = [channels] + [depth * 2**i for i in range(_CNN_STAGES)]
        self.convs = tuple(
            eqx.nn.Conv2d(
                sizes[i], sizes[i + 1], 4, stride=2, padding=1, use_bias=False, key=keys[i], dtype=dtype
            )
            for i in range(_CNN_STAGES)
        )
        self.norms = tuple(eqx.nn.LayerNorm(sizes[i + 1], dtype=dtype) for i in range(_CNN_STAGES))

    @staticmethod
    def out_size(depth: int) -> int:
        size = IMAGE_SIZE // 2**_CNN_STAGES
        return depth * 2 ** (_CNN_STAGES - 1) * size * size

    def __call__(self, image: Num[Array, "64 64 C"]) -> Float[Array, " E"]:
        x = jnp.moveaxis(image_to_unit(image), -1, 0).astype(self.convs[0].weight.dtype)
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = jax.nn.silu(_channel_norm(norm, conv(x)))
        return x.reshape(-1)


class CNNDecoder(eqx.Module):
    """Mirror of :class:`CNNEncoder`: Linear → 4×4×8·depth → transposed convs → 64×64×C in [−0.5, 0.5]
    space (the mean of a unit Gaussian; loss: MSE summed over pixels)."""

    linear: eqx.nn.Linear
    convs: tuple[eqx.nn.ConvTranspose2d, ...]
    norms: tuple[eqx.nn.LayerNorm, ...]
    depth: int = eqx.field(static=True)

    def __init__(self, in_size: int, channels: int, depth: int, *, key: PRNGKeyArray, dtype=jnp.float32):
        keys = jax.random.split(key, _CNN_STAGES + 1)
        self.depth = depth
        self.linear = eqx.nn.Linear(in_size, CNNEncoder.out_size(depth), key=keys[0], dtype=dtype)
        sizes = [depth * 2**i for i in reversed(range(_CNN_STAGES))] + [channels]
        self.convs = tuple(
            eqx.nn.ConvTranspose2d(
                sizes[i],
                sizes[i + 1],
                4,
                stride=2,
                padding=1,
                use_bias=i == _CNN_STAGES - 1,
                key=keys[i + 1],
                dtype=dtype,
            )
            for i in range(_CNN_STAGES)
        )
        self.norms = tuple(eqx.nn.LayerNorm(sizes[i + 1], dtype=dtype) for i in range(_CNN_STAGES - 1))

    def __call__(self, features: Float[Array, " F"]) -> Float[Array, "64 64 C"]:
        size = IMAGE_SIZE // 2**_CNN_STAGES
        x = linear(self.linear, features).reshape(self.depth * 2 ** (_CNN_STAGES - 1), size, size)
        for conv, norm in zip(self.convs[:-1], self.norms, strict=True):
            x = jax.nn.silu(_channel_norm(norm, upsample_conv(conv, x)))
        return jnp.moveaxis(upsample_conv(self.convs[-1], x), 0, -1)

    def loss(self, features: Float[Array, " F"], image: Num[Array, "64 64 C"]) -> Float[Array, ""]:
        """Σ_pixels (mean − image_to_unit(image))²."""
        return jnp.sum((self(features) - image_to_unit(image)) ** 2)


class MultiEncoder(eqx.Module):
    """Embeds an observation dict: ``"vector"`` through the MLP encoder, ``"image"`` through the CNN;
    the embeddings are concatenated."""

    vector: VectorEncoder | None
    image: CNNEncoder | None
    out_size: int = eqx.field(static=True)

    def __init__(
        self,
        obs_shapes: Mapping[str, tuple[int, ...]],
        units: int,
        layers: int,
        depth: int,
        *,
        key: PRNGKeyArray,
        dtype=jnp.float32,
    ):
        check_obs_shapes(obs_shapes)
        vector_key, image_key = jax.random.split(key)
        self.vector, self.image, self.out_size = None, None, 0
        if "vector" in obs_shapes:
            (size,) = obs_shapes["vector"]
            self.vector = VectorEncoder(size, units, layers, key=vector_key, dtype=dtype)
            self.out_size += units
        if "image" in obs_shapes:
            self.image = CNNEncoder(obs_shapes["image"][-1], depth, key=image_key, dtype=dtype)
            self.out_size += CNNEncoder.out_size(depth)

    def __call__(self, obs: Observation) -> Float[Array, " E"]:
        parts = []
        if self.vector is not None:
            parts.append(self.vector(obs["vector"]))
        if self.image is not None:
            parts.append(self.image(obs["image"]))
        return jnp.concatenate(parts)


class MultiDecoder(eqx.Module):
    """Reconstructs every observation key from the features; ``loss`` sums the keys' losses."""

    vector: VectorDecoder | None
    image: CNNDecoder | None

    def __init__(
        self,
        in_size: int,
        obs_shapes: Mapping[str, tuple[int, ...]],
        units: int,
        layers: int,
        depth: int,
        *,
        key: PRNGKeyArray,
        dtype=jnp.float32,
    ):
        check_obs_shapes(obs_shapes)
        vector_key, image_key = jax.random.split(key)
        self.vector, self.image = None, None
        if "vector" in obs_shapes:
            (size,) = obs_shapes["vector"]
            self.vector = VectorDecoder(in_size, size, units, layers, key=vector_key, dtype=dtype)
        if "image" in obs_shapes:
            self.image = CNNDecoder(in_size, obs_shapes["image"][-1], depth, key=image_key, dtype=dtype)

    def __call__(self, features: Float[Array, " F"]) -> dict[str, Float[Array, "..."]]:
        """Predictions: ``"vector"`` in symlog space, ``"image"`` in [−0.5, 0.5] space."""
        out = {}
        if self.vector is not None:
            out["vector"] = self.vector(features)
        if self.image is not None:
            out["image"] = self.image(features)
        return out

    def loss(self, features: Float[Array, " F"], obs: Observation) -> dict[str, Float[Array, ""]]:
        """Per key: symlog MSE (vector) or MSE (image), summed over the dims of one step."""
        out = {}
        if self.vector is not None:
            out["vector"] = self.vector.loss(features, obs["vector"])
        if self.image is not None:
            out["image"] = self.image.loss(features, obs["image"])
        return out


def check_obs_shapes(obs_shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Observation keys the world model reads: ``vector`` [O] and/or ``image`` [64, 64, C]."""
    unknown = set(obs_shapes) - {"vector", "image"}
    if unknown or not obs_shapes:
        raise ValueError(f"obs_shapes must have keys 'vector' and/or 'image', got {sorted(obs_shapes)}")
    if "vector" in obs_shapes and len(obs_shapes["vector"]) != 1:
        raise ValueError(f"'vector' observations must be 1-D, got shape {obs_shapes['vector']}")
    if "image" in obs_shapes and tuple(obs_shapes["image"][:2]) != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"'image' observations must be 64×64×C, got shape {obs_shapes['image']}")


class RewardHead(eqx.Module):
    """Two-hot symlog reward head: MLP → logits over ``num_bins`` bins in symlog space
    [−bin_range, bin_range]; zero-initialized output layer, so it starts out predicting 0."""

    mlp: MLP
    num_bins: int = eqx.field(static=True)
    bin_range: float = eqx.field(static=True)

    def __init__(
        self,
        in_size: int,
        units: int,
        layers: int,
        num_bins: int,
        bin_range: float,
        *,
        key: PRNGKeyArray,
        dtype=jnp.float32,
    ):
        self.mlp = MLP(in_size, num_bins, units, layers, key=key, zero_out=True, dtype=dtype)
        self.num_bins, self.bin_range = num_bins, bin_range

    @property
    def bins(self) -> Float[Array, " K"]:
        return twohot_bins(self.num_bins, -self.bin_range, self.bin_range)

    def __call__(self, features: Float[Array, " F"]) -> Float[Array, " K"]:
        return self.mlp(features)

    def mean(self, features: Float[Array, " F"]) -> Float[Array, ""]:
        """Predicted reward: symexp of the expected bin."""
        logits = self(features)
        return twohot_symlog_mean(logits, self.bins.astype(logits.dtype))

    def loss(self, features: Float[Array, " F"], reward: Float[Array, ""]) -> Float[Array, ""]:
        logits = self(features)
        return twohot_symlog_loss(logits, reward, self.bins.astype(logits.dtype))


class ContinueHead(eqx.Module):
    """Bernoulli continue head: MLP → logit of P(episode continues after this step)."""

    mlp: MLP

    def __init__(self, in_size: int, units: int, layers: int, *, key, dtype=jnp.float32):
        self.mlp = MLP(in_size, 1, units, layers, key=key, dtype=dtype)

    def __call__(self, features: Float[Array, " F"]) -> Float[Array, ""]:
        return self.mlp(features)[0]

    def prob(self, features: Float[Array, " F"]) -> Float[Array, ""]:
        return jax.nn.sigmoid(self(features))

    def mode(self, features: Float[Array, " F"]) -> Float[Array, ""]:
        """The most likely outcome: 1.0 where P(continue) > 0.5, else 0.0 (no gradient)."""
        logit = jax.lax.stop_gradient(self(features))
        return (logit > 0).astype(logit.dtype)
