"""From a config to the objects a run needs: models, optimisers, the `StepConfig`, the data.

Everything here is pure construction; the trainer, `sample` and `eval` share it so that they
build exactly the same models from the same config.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax.numpy as jnp
import optax
from ml_collections import config_dict

from gan_jax.config import POINT_DATASETS
from gan_jax.data import make_dataset
from gan_jax.data.points_source import DATA_KEY as POINTS_KEY
from gan_jax.data.points_source import make_points_dataset
from gan_jax.models.mlp import MLPDiscriminator, MLPGenerator
from gan_jax.models.video_dcgan import VideoDiscriminator, VideoGenerator
from gan_jax.train_step import StepConfig

VIDEO_KEY = "video"
_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class GAN:
    """The static parts of a run (no arrays).

    Attributes:
        g, d: generator `z [N, z_dim] -> samples [N, ...]` and discriminator `-> logits [N]`.
        g_tx, d_tx: their optimisers.
        step_cfg: the train step's settings; `step_cfg.data_key` names the batch entry.
        sample_shape: shape of one sample: `(T, H, W, C)` for clips, `(2,)` for points.
    """

    g: nn.Module
    d: nn.Module
    g_tx: optax.GradientTransformation
    d_tx: optax.GradientTransformation
    step_cfg: StepConfig
    sample_shape: tuple[int, ...]

    @property
    def is_video(self) -> bool:
        return len(self.sample_shape) == 4


def is_points(cfg: config_dict.ConfigDict) -> bool:
    """Whether the run trains on 2-D points (`[N, 2]`) rather than clips."""
    return cfg.data.name in POINT_DATASETS


def data_key(cfg: config_dict.ConfigDict) -> str:
    """The batch entry that holds real samples."""
    return POINTS_KEY if is_points(cfg) else VIDEO_KEY


def sample_shape(cfg: config_dict.ConfigDict) -> tuple[int, ...]:
    """`(T, H, W, C)` from `cfg.data` for clips, `(2,)` for points."""
    if is_points(cfg):
        return (2,)
    data = cfg.data
    return (data.num_frames, data.height, data.width, data.channels)


def build_models(cfg: config_dict.ConfigDict) -> tuple[nn.Module, nn.Module]:
    """`(g, d)` from `cfg.g` and `cfg.d`; the clip shape comes from `cfg.data`."""
    g, d = cfg.g, cfg.d
    if g.arch == "mlp":
        return (
            MLPGenerator(z_dim=g.z_dim, out_dim=2, hidden=g.hidden, depth=g.depth),
            MLPDiscriminator(in_dim=2, hidden=d.hidden, depth=d.depth, pack=d.pack),
        )
    clip = sample_shape(cfg)
    generator = VideoGenerator(
        clip_shape=clip,
        z_dim=g.z_dim,
        base_width=g.base_width,
        depth=g.depth,
        norm=g.norm,
        conv_impl=g.conv_impl,
        dtype=_DTYPES[g.dtype],
    )
    discriminator = VideoDiscriminator(
        clip_shape=clip,
        base_width=d.base_width,
        depth=d.depth,
        norm=d.norm,
        spectral_norm=d.spectral_norm,
        conv_impl=d.conv_impl,
        dtype=_DTYPES[d.dtype],
    )
    return generator, discriminator


def build_optimizer(group: config_dict.ConfigDict) -> optax.GradientTransformation:
    """Adam (`lr`, `b1`, `b2`) or SGD (`lr`, `momentum`) from a `g` or `d` group."""
    if group.optimizer == "adam":
        return optax.adam(group.lr, b1=group.b1, b2=group.b2)
    if group.optimizer == "sgd":
        return optax.sgd(group.lr, momentum=group.momentum or None)
    raise ValueError(f"optimizer {group.optimizer!r} is not one of ('adam', 'sgd')")


def build_step_config(cfg: config_dict.ConfigDict) -> StepConfig:
    """`StepConfig` from `cfg.step`, reading real samples from `data_key(cfg)`."""
    return StepConfig(**cfg.step.to_dict(), data_key=data_key(cfg))


def build(cfg: config_dict.ConfigDict) -> GAN:
    """All static parts of a run. Call `gan_jax.config.validate(cfg)` first for clear errors."""
    g, d = build_models(cfg)
    return GAN(
        g=g,
        d=d,
        g_tx=build_optimizer(cfg.g),
        d_tx=build_optimizer(cfg.d),
        step_cfg=build_step_config(cfg),
        sample_shape=sample_shape(cfg),
    )


def make_data(
    cfg: config_dict.ConfigDict,
    *,
    batch_size: int,
    seed: int,
    process_index: int,
    process_count: int,
):
    """This process's iterator of batches (`{"video": ...}` or `{"points": ...}`).

    Args:
        cfg: the run config (`cfg.data` is used).
        batch_size: rows per batch in this process.
        seed: seed of the data order.
        process_index, process_count: this process's shard.

    Returns:
        A grain iterator with `get_state()` / `set_state()`.
    """
    make = make_points_dataset if is_points(cfg) else make_dataset
    return make(
        cfg.data,
        batch_size=batch_size,
        seed=seed,
        process_index=process_index,
        process_count=process_count,
    )
