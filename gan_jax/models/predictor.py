"""Predictor: an encoder–decoder G that continues a clip from its first frames (after MCnet,
Villegas et al. 2017, and the U-Nets of SAVP, Lee et al. 2018), for the `video_prediction`
objective.

The family `predictor` offers G only; D comes from a video family (`cfg.d.name = "video_dcgan"`
or `"mocogan"`), which judges context ++ future as one clip.

G, for `depth` = d and `base_width` = w, on context frames `[N, k, H, W, C]` (the objective's
condition) and latents `{"z": [N, z_dim]}`, predicting F = T - k frames `[N, F, H, W, C]`:
  encoder: a stem conv (3 x 3 x 3, stride 1) to w channels, then d strided convs (3 x 4 x 4,
     stride 1 x 2 x 2) to w * 2^min(i + 1, 2) channels, each with norm + ReLU; time keeps its
     k frames (kernel 1 in time when k = 1);
  bottleneck: the k frames' features stacked along the channels, the noise (Dense -> one map
     of `noise_width` channels at that size) beside them, and a 3 x 3 conv to F frames' features
     (channels reshaped into time): each future frame gets its own mix of the context frames;
  decoder: at each scale, the encoder's features of that scale mapped the same way (a 1 x 1
     conv from k frames to F frames: skip connections that carry the objects' appearance to the
     future), concatenated, a 3 x 3 x 3 conv (stride 1), then a transposed conv (1 x 4 x 4,
     stride 1 x 2 x 2) doubling H and W; norm + ReLU between; a last 3 x 3 x 3 conv to C
     channels and tanh.
The noise lets futures differ where the context leaves them open; every conv takes the CPU
route of `gan_jax.ops.conv`. Parameters depend on k and F (the time-to-channel maps), so the
rollout of `gan-jax predict` feeds the last k frames back in to go beyond F.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from ml_collections import config_dict

from gan_jax.config import Checker, ConfigError
from gan_jax.data.spec import DataSpec
from gan_jax.models.layers import DTYPES, NORMS, Conv, ConvTranspose, check_norm, normalize


def _frames_to_channels(x: jax.Array) -> jax.Array:
    """`[N, k, h, w, c]` -> `[N, 1, h, w, k * c]`."""
    n, k, h, w, c = x.shape
    return x.transpose(0, 2, 3, 1, 4).reshape(n, 1, h, w, k * c)


def _channels_to_frames(x: jax.Array, frames: int) -> jax.Array:
    """`[N, 1, h, w, F * c]` -> `[N, F, h, w, c]`."""
    n, _, h, w, fc = x.shape
    return x.reshape(n, h, w, frames, fc // frames).transpose(0, 3, 1, 2, 4)


def _time_kernel(frames: int) -> tuple[int, tuple[int, int]]:
    """Kernel size and padding in time: 3 (same length), or 1 for a single frame."""
    return (3, (1, 1)) if frames > 1 else (1, (0, 0))


class PredictionGenerator(nn.Module):
    """context `[N, k, H, W, C]` and latents `{"z": [N, z_dim]}` -> future `[N, T - k, H, W, C]`
    in [-1, 1] (see the module docstring)."""

    clip_shape: tuple[int, int, int, int] = (8, 32, 32, 3)  # (T, H, W, C) of whole clips
    z_dim: int = 16
    noise_width: int = 16
    base_width: int = 32
    depth: int = 3
    norm: str = "batch"
    bn_axis_name: str | None = None
    dtype: Any = jnp.float32

    @property
    def latent_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"z": (self.z_dim,)}

    def _check(self, context) -> tuple[int, int]:
        if context is None:
            raise ValueError(
                "PredictionGenerator continues clips from context frames and got none; train it "
                "with objective.name='video_prediction'"
            )
        num_frames, height, width, channels = self.clip_shape
        if context.ndim != 5 or tuple(context.shape[2:]) != (height, width, channels):
            raise ValueError(
                f"PredictionGenerator: context must be [N, k, {height}, {width}, {channels}], "
                f"got {tuple(context.shape)}"
            )
        k = context.shape[1]
        if not 1 <= k < num_frames:
            raise ValueError(
                f"PredictionGenerator: {k} context frames, but clips have {num_frames}: the "
                "context must leave at least one frame to predict"
            )
        return k, num_frames - k

    @nn.compact
    def __call__(self, latents: dict[str, jax.Array], context, train: bool = True) -> jax.Array:
        check_norm(self.norm, "PredictionGenerator")
        k, future = self._check(context)
        z = latents["z"]
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"PredictionGenerator: z must be [N, {self.z_dim}], got {z.shape}.")

        def norm_relu(x: jax.Array, name: str) -> jax.Array:
            return nn.relu(normalize(x, self.norm, train, self.bn_axis_name, name))

        bias = self.norm == "none"
        same = ((0, 0), (1, 1), (1, 1))  # padding of per-frame 3 x 3 and 4 x 4 (stride 2) convs

        def conv(features, kernel, padding, name, strides=(1, 1, 1), use_bias=bias):
            return Conv(features, kernel, strides, padding, use_bias, self.dtype, name=name)

        # Encoder: the stem sees the context's motion (3 frames in time); then per-frame blocks.
        kt, pt = _time_kernel(k)
        h = conv(self.base_width, (kt, 4, 4), (pt, (1, 1), (1, 1)), "stem", (1, 2, 2))(context)
        skips = [norm_relu(h, "stem_norm")]  # [N, k, H / 2^(i+1), W / 2^(i+1), widths[i]]
        widths = [self.base_width]
        for i in range(self.depth - 1):
            width = self.base_width * 2 ** min(i + 1, 2)
            h = conv(width, (1, 4, 4), same, f"down{i}", (1, 2, 2))(skips[-1])
            skips.append(norm_relu(h, f"down{i}_norm"))
            widths.append(width)

        # Bottleneck: k frames' features and the noise -> F frames' features.
        bottom = skips[-1]
        n, _, hh, ww, width = bottom.shape
        noise = nn.Dense(hh * ww * self.noise_width, dtype=self.dtype, name="noise")(z)
        noise = noise.reshape(n, 1, hh, ww, self.noise_width).astype(bottom.dtype)
        x = jnp.concatenate([_frames_to_channels(bottom), noise], axis=-1)
        x = conv(future * width, (1, 3, 3), same, "to_future")(x)
        x = norm_relu(_channels_to_frames(x, future), "to_future_norm")

        # Decoder: at each scale the skip (k frames -> F frames), a conv, then upsampling; the
        # smallest scale mixes the future frames in time, the larger ones work per frame.
        ft, fp = _time_kernel(future)
        for i in reversed(range(self.depth)):
            skip = conv(future * (widths[i] // 2), (1, 1, 1), ((0, 0),) * 3, f"skip{i}")(
                _frames_to_channels(skips[i])
            )
            x = jnp.concatenate([x, _channels_to_frames(skip, future).astype(x.dtype)], axis=-1)
            bottom_scale = i == self.depth - 1
            kernel = (ft, 3, 3) if bottom_scale else (1, 3, 3)
            padding = (fp, (1, 1), (1, 1)) if bottom_scale else same
            x = norm_relu(conv(widths[i], kernel, padding, f"mix{i}")(x), f"mix{i}_norm")
            last = i == 0
            features = self.clip_shape[3] if last else widths[i - 1]
            x = ConvTranspose(
                features,
                (1, 4, 4),
                (1, 2, 2),
                same,
                last or bias,
                self.dtype,
                name="to_rgb" if last else f"up{i}",
            )(x)
            if not last:
                x = norm_relu(x, f"up{i}_norm")
        return jnp.tanh(x.astype(jnp.float32))


# ---------------------------------------------------------------------------------------------
# The model family (gan_jax.models): config, validation, construction


def g_config() -> config_dict.ConfigDict:
    """G's keys: noise size and its map's channels, width of the first scale, strided
    blocks, norm, compute dtype."""
    return config_dict.ConfigDict(
        {
            "z_dim": 16,
            "noise_width": 16,
            "base_width": 32,
            "depth": 3,
            "norm": "batch",
            "dtype": "float32",
        }
    )


def validate_g(g_cfg: config_dict.ConfigDict, spec: DataSpec) -> None:
    check = Checker(g_cfg, "g")
    if not spec.is_video:
        raise ConfigError(
            f"g.name='predictor' continues clips [N, T, H, W, C], but data.name={spec.name!r} "
            f"has samples of shape {spec.sample_shape}; use a video dataset"
        )
    for key in ("z_dim", "noise_width", "base_width"):
        check.integer(key, 1)
    depth = check.integer("depth", 1)
    check.one_of("norm", NORMS)
    check.one_of("dtype", tuple(DTYPES))
    _, height, width, _ = spec.sample_shape
    scale = 2**depth
    if height % scale or width % scale:
        raise ConfigError(
            f"data.height={height} and data.width={width} must be divisible by 2**g.depth="
            f"{scale}; choose sizes that are multiples of {scale} or a smaller g.depth"
        )


def make_generator(g_cfg: config_dict.ConfigDict, spec: DataSpec) -> PredictionGenerator:
    return PredictionGenerator(
        clip_shape=spec.sample_shape,
        z_dim=g_cfg.z_dim,
        noise_width=g_cfg.noise_width,
        base_width=g_cfg.base_width,
        depth=g_cfg.depth,
        norm=g_cfg.norm,
        dtype=DTYPES[g_cfg.dtype],
    )
