"""Video DCGAN: a generator of clips through 3-D transposed convolutions and a discriminator of
strided 3-D convolutions with LeakyReLU (after Vondrick et al. 2016 and Radford et al. 2016).

Clips are `[N, T, H, W, C]` in [-1, 1]. T = 1 makes an image GAN (time kernels become 1).
The family `video_dcgan` (`cfg.g.name` / `cfg.d.name`): the clip shape comes from the data.

Architecture for `depth` = d and `base_width` = w:
  G: z `[N, Z]` -> Dense -> `[N, T0, H0, W0, w * 2^(d-1)]`, then d transposed convolutions
     halving the channels (w * 2^(d-2), ..., w, then C) and doubling H and W; T doubles in the
     first log2(T / T0) blocks. Kernel 4, stride 2, padding 1 where a dim doubles; kernel 3,
     stride 1, padding 1 in time where it does not (kernel 1 when T = 1). Norm + ReLU between
     blocks, tanh at the end (of `output_gain` times the last convolution, default 1:
     `layers.tanh_output`).
  D: the mirror: d strided convolutions w, 2w, ..., w * 2^(d-1) (no norm on the first),
     LeakyReLU(0.2), then Dense -> logits `[N]`. Optional spectral norm on every layer, and
     optionally (`minibatch_std` = a group size) ProGAN's minibatch-std channel on the last map,
     which lets D see a batch whose clips vary less than real ones.
Class-conditional (`conditional = True`, labels `[N]` as the condition, Miyato & Koyama 2018):
  G concatenates a learned class embedding (z's size) to z and scales and shifts every
  normalised layer per class (conditional normalisation, `layers.class_modulation`); D adds the
  inner product of an embedding of the label with its last feature map summed over positions
  (`layers.class_projection`) to its logit. With `classifier = True` D also has its own
  classifier of the clip (ADC-GAN, `layers.class_head`) and returns `{"": logits,
  "class_logits": [N, 2K]}`; the objective's class terms then train it (see
  `gan_jax.objectives.class_conditional`).
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from ml_collections import config_dict

from gan_jax.config import Checker, ConfigError
from gan_jax.data.spec import DataSpec
from gan_jax.models.layers import (
    DTYPES,
    NORMS,
    Conv,
    ConvTranspose,
    check_labels,
    check_minibatch_std,
    check_norm,
    check_output_gain,
    check_unconditional,
    logits_head,
    normalize,
    tanh_output,
    with_minibatch_std,
)


def block_plan(
    clip_shape: tuple[int, int, int, int], depth: int
) -> tuple[tuple[int, int, int], list[tuple[int, int, int]]]:
    """Base size and per-block strides shared by G (upsampling) and D (downsampling).

    Args:
        clip_shape: `(T, H, W, C)`.
        depth: number of (transposed) convolution blocks.

    Returns:
        `(T0, H0, W0)`, the smallest feature size, and `depth` strides `(st, sh, sw)` in G order
        (from small to large).
    """
    t, h, w, c = clip_shape
    if depth < 1:
        raise ValueError(f"depth={depth} must be >= 1.")
    if min(t, h, w, c) < 1:
        raise ValueError(f"clip shape (T, H, W, C)={clip_shape} must be positive.")
    scale = 2**depth
    if h % scale or w % scale:
        raise ValueError(
            f"H={h} and W={w} must be divisible by 2**depth={scale} (depth={depth}); "
            f"choose H, W multiples of {scale} or a smaller depth."
        )
    time_ups = 0
    while (t >> time_ups) > 1 and (t >> time_ups) % 2 == 0 and time_ups < depth:
        time_ups += 1
    # Time doubles in the first blocks as long as T has factors of two left; any T works.
    t0 = t >> time_ups
    strides = [(2 if i < time_ups else 1, 2, 2) for i in range(depth)]
    return (t0, h // scale, w // scale), strides


def _geometry(stride_t: int, stride_s: int, t: int):
    """Kernel and padding for one (transposed) conv block."""
    if stride_t == 2:
        kt, pt = 4, (1, 1)
    elif t == 1:
        kt, pt = 1, (0, 0)
    else:
        kt, pt = 3, (1, 1)
    assert stride_s == 2
    return (kt, 4, 4), (pt, (1, 1), (1, 1))


class VideoGenerator(nn.Module):
    """latents `{"z": [N, z_dim]}` -> clips `[N, T, H, W, C]` in [-1, 1]."""

    clip_shape: tuple[int, int, int, int] = (16, 32, 32, 3)  # (T, H, W, C)
    z_dim: int = 128
    base_width: int = 64
    depth: int = 4
    norm: str = "batch"
    bn_axis_name: str | None = None
    dtype: Any = jnp.float32
    num_classes: int = 0  # > 0: conditioned on labels [N] (a class embedding beside z)
    output_gain: float = 1.0  # clips = tanh(output_gain * last conv)

    @property
    def latent_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"z": (self.z_dim,)}

    @nn.compact
    def __call__(self, latents: dict[str, jax.Array], cond=None, train: bool = True) -> jax.Array:
        check_norm(self.norm, "VideoGenerator")
        z = latents["z"]
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"VideoGenerator: z must be [N, {self.z_dim}], got {z.shape}.")
        labels = None
        if self.num_classes:
            labels = check_labels(cond, z.shape[0], self.num_classes, "VideoGenerator")
            embedding = nn.Embed(self.num_classes, self.z_dim, name="class_embedding")(labels)
            z = jnp.concatenate([z, embedding.astype(z.dtype)], axis=-1)
        else:
            check_unconditional(cond, "VideoGenerator")
        (t0, h0, w0), strides = block_plan(self.clip_shape, self.depth)
        t = self.clip_shape[0]
        c0 = self.base_width * 2 ** (self.depth - 1)
        x = nn.Dense(t0 * h0 * w0 * c0, dtype=self.dtype, name="project")(z)
        x = x.reshape(z.shape[0], t0, h0, w0, c0)

        def norm_relu(h: jax.Array, name: str) -> jax.Array:
            # The norm (class-conditional when num_classes > 0), then ReLU.
            return nn.relu(
                normalize(h, self.norm, train, self.bn_axis_name, name, labels, self.num_classes)
            )

        x = norm_relu(x, "project_norm")
        for i, (st, ss, _) in enumerate(strides):
            last = i == self.depth - 1
            features = self.clip_shape[3] if last else self.base_width * 2 ** (self.depth - 2 - i)
            kernel, padding = _geometry(st, ss, t)
            x = ConvTranspose(
                features,
                kernel,
                (st, ss, ss),
                padding,
                use_bias=last or self.norm == "none",
                dtype=self.dtype,
                name=f"up{i}",
            )(x)
            if not last:
                x = norm_relu(x, f"up{i}_norm")
        return tanh_output(x, self.output_gain)


class VideoDiscriminator(nn.Module):
    """clips `[N, T, H, W, C]` -> logits `[N]`."""

    clip_shape: tuple[int, int, int, int] = (16, 32, 32, 3)
    base_width: int = 64
    depth: int = 4
    norm: str = "batch"
    spectral_norm: bool = False
    bn_axis_name: str | None = None
    dtype: Any = jnp.float32
    num_classes: int = 0  # > 0: conditioned on labels [N] (a projection head)
    classifier: bool = False  # with num_classes: also its own classifier (layers.class_head)
    minibatch_std: int = 0  # > 0: a minibatch-std channel over groups of this many clips

    @nn.compact
    def __call__(self, x: jax.Array, cond=None, train: bool = True) -> jax.Array:
        check_norm(self.norm, "VideoDiscriminator")
        labels = None
        if self.num_classes:
            labels = check_labels(cond, x.shape[0], self.num_classes, "VideoDiscriminator")
        else:
            check_unconditional(cond, "VideoDiscriminator")
        if x.ndim != 5 or tuple(x.shape[1:]) != tuple(self.clip_shape):
            raise ValueError(
                f"VideoDiscriminator: input must be [N, {', '.join(map(str, self.clip_shape))}]"
                f" (N, T, H, W, C), got {tuple(x.shape)}."
            )
        _, strides = block_plan(self.clip_shape, self.depth)
        t = self.clip_shape[0]

        def layer(module: nn.Module, h: jax.Array) -> jax.Array:
            if self.spectral_norm:
                return nn.SpectralNorm(module)(h, update_stats=train)
            return module(h)

        for i, (st, ss, _) in enumerate(reversed(strides)):
            kernel, padding = _geometry(st, ss, t)
            conv = Conv(
                self.base_width * 2**i,
                kernel,
                (st, ss, ss),
                padding,
                use_bias=i == 0 or self.norm == "none",
                dtype=self.dtype,
                name=f"down{i}",
            )
            x = layer(conv, x)
            if i > 0:
                x = normalize(x, self.norm, train, self.bn_axis_name, f"down{i}_norm")
            x = nn.leaky_relu(x, 0.2)
        x = with_minibatch_std(x, self.minibatch_std)
        return logits_head(x, layer, self.dtype, labels, self.num_classes, self.classifier)


# ---------------------------------------------------------------------------------------------
# The model family (gan_jax.models): config, validation, construction


def g_config() -> config_dict.ConfigDict:
    """G's keys: noise size, width of the last hidden block, blocks, norm, compute dtype, class
    conditioning, the gain before the output tanh."""
    return config_dict.ConfigDict(
        {
            "z_dim": 128,
            "base_width": 64,
            "depth": 4,
            "norm": "batch",
            "dtype": "float32",
            "conditional": False,
            "output_gain": 1.0,
        }
    )


def d_config() -> config_dict.ConfigDict:
    """D's keys: width of the first block, blocks, norm, spectral norm, compute dtype."""
    return config_dict.ConfigDict(
        {
            "base_width": 64,
            "depth": 4,
            "norm": "batch",
            "spectral_norm": False,
            "dtype": "float32",
            "conditional": False,
            "classifier": False,
            "minibatch_std": 0,
        }
    )


def validate_conditional(net_cfg: config_dict.ConfigDict, net: str, spec: DataSpec) -> None:
    """The `conditional` key of a family that offers class conditioning: labels must exist."""
    if Checker(net_cfg, net).boolean("conditional") and not spec.num_classes:
        raise ConfigError(
            f"{net}.conditional=True conditions {net.upper()} on labels, but data.name="
            f"{spec.name!r} yields none; use labelled data (video_folder with class "
            "sub-folders, bouncing_shapes) or conditional=False"
        )


def _validate_net(net_cfg: config_dict.ConfigDict, net: str, spec: DataSpec) -> None:
    check = Checker(net_cfg, net)
    if not spec.is_video:
        raise ConfigError(
            f"{net}.name='video_dcgan' makes clips [N, T, H, W, C], but data.name="
            f"{spec.name!r} has samples of shape {spec.sample_shape}; choose a model family "
            "for that data (e.g. 'mlp' for 2-D points)"
        )
    depth = check.integer("depth", 1)
    check.integer("base_width", 1)
    check.one_of("norm", NORMS)
    check.one_of("dtype", tuple(DTYPES))
    validate_conditional(net_cfg, net, spec)
    try:
        block_plan(spec.sample_shape, depth)
    except ValueError:
        _, height, width, _ = spec.sample_shape
        scale = 2**depth
        raise ConfigError(
            f"data.height={height} and data.width={width} must be divisible by "
            f"2**{net}.depth={scale}; choose sizes that are multiples of {scale} or a smaller "
            f"{net}.depth"
        ) from None


def validate_g(g_cfg: config_dict.ConfigDict, spec: DataSpec) -> None:
    _validate_net(g_cfg, "g", spec)
    check = Checker(g_cfg, "g")
    check.integer("z_dim", 1)
    check_output_gain(g_cfg, check)


def validate_classifier(d_cfg: config_dict.ConfigDict) -> None:
    """D's `classifier` key: its own classifier head needs the labels of `conditional`."""
    check = Checker(d_cfg, "d")
    if "classifier" in d_cfg and check.boolean("classifier") and not d_cfg.conditional:
        raise ConfigError(
            "d.classifier=True gives D a classifier of the labels, but d.conditional=False; set "
            "d.conditional=True (with objective.name='class_conditional') or d.classifier=False"
        )


def validate_d(d_cfg: config_dict.ConfigDict, spec: DataSpec) -> None:
    _validate_net(d_cfg, "d", spec)
    check = Checker(d_cfg, "d")
    check.boolean("spectral_norm")
    validate_classifier(d_cfg)
    if "minibatch_std" in d_cfg:
        check_minibatch_std(check.integer("minibatch_std", 0), spec.batch_size, "d", "batch_size")


def make_generator(g_cfg: config_dict.ConfigDict, spec: DataSpec) -> VideoGenerator:
    return VideoGenerator(
        clip_shape=spec.sample_shape,
        z_dim=g_cfg.z_dim,
        base_width=g_cfg.base_width,
        depth=g_cfg.depth,
        norm=g_cfg.norm,
        dtype=DTYPES[g_cfg.dtype],
        num_classes=int(spec.num_classes or 0) if g_cfg.conditional else 0,
        output_gain=float(g_cfg.get("output_gain", 1.0)),  # .get: configs saved before the key
    )


def make_discriminator(d_cfg: config_dict.ConfigDict, spec: DataSpec) -> VideoDiscriminator:
    return VideoDiscriminator(
        clip_shape=spec.sample_shape,
        base_width=d_cfg.base_width,
        depth=d_cfg.depth,
        norm=d_cfg.norm,
        spectral_norm=d_cfg.spectral_norm,
        dtype=DTYPES[d_cfg.dtype],
        num_classes=int(spec.num_classes or 0) if d_cfg.conditional else 0,
        classifier=bool(d_cfg.get("classifier", False)),
        # .get: runs saved before the key existed have no minibatch-std channel
        minibatch_std=int(d_cfg.get("minibatch_std", 0)),
    )
