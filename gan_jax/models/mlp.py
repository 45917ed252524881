"""MLP generator and discriminator for 2-D point clouds (the debugging toy).

The article this project grew from sketched a `Linear(2, 2)` GAN; a linear map cannot move a
Gaussian onto a ring of modes, so both nets here have hidden layers.
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
    check_minibatch_std,
    check_unconditional,
    minibatch_std,
)


class MLPGenerator(nn.Module):
    """latents `{"z": [N, z_dim]}` -> points `[N, out_dim]` (float32 whatever `dtype`, the
    compute dtype of its matrix products)."""

    z_dim: int = 2
    out_dim: int = 2
    hidden: int = 128
    depth: int = 3
    dtype: Any = jnp.float32

    @property
    def latent_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"z": (self.z_dim,)}

    @nn.compact
    def __call__(self, latents: dict[str, jax.Array], cond=None, train: bool = True) -> jax.Array:
        del train  # no normalisation: same in train and eval
        check_unconditional(cond, "MLPGenerator")
        z = latents["z"]
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"MLPGenerator: z must be [N, {self.z_dim}], got {z.shape}.")
        x = z
        for i in range(self.depth):
            x = nn.relu(nn.Dense(self.hidden, dtype=self.dtype, name=f"hidden{i}")(x))
        return nn.Dense(self.out_dim, dtype=self.dtype, name="out")(x).astype(jnp.float32)


class MLPDiscriminator(nn.Module):
    """points `[N, in_dim]` -> logits `[N]`.

    `pack` > 1 is PacGAN packing (Lin et al. 2018): D judges `pack` samples jointly; the input
    `[N, in_dim]` becomes `[N / pack, pack * in_dim]` and each logit is repeated `pack` times so
    that the output stays `[N]` and the losses are unchanged.

    `minibatch_std_group` > 0 appends the `minibatch_std` feature of groups of that many (packed)
    rows to the input of the last hidden layer (the input itself when depth is 1); 0 = off. It
    couples the rows of a batch, so D's output for a sample depends on its group.

    `dtype` is the compute dtype of the matrix products; the logits are float32.
    """

    in_dim: int = 2
    hidden: int = 128
    depth: int = 3
    pack: int = 1
    minibatch_std_group: int = 0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, cond=None, train: bool = True) -> jax.Array:
        del train
        check_unconditional(cond, "MLPDiscriminator")
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"MLPDiscriminator: input must be [N, {self.in_dim}], got {x.shape}.")
        if self.depth < 1:
            raise ValueError(f"MLPDiscriminator: depth={self.depth} must be >= 1.")
        n = x.shape[0]
        if n % self.pack:
            raise ValueError(f"MLPDiscriminator: batch {n} is not divisible by pack={self.pack}.")
        h = x.reshape(n // self.pack, self.pack * self.in_dim)
        for i in range(self.depth):
            if self.minibatch_std_group and i == self.depth - 1:
                h = jnp.concatenate([h, minibatch_std(h, self.minibatch_std_group)], axis=1)
            h = nn.leaky_relu(nn.Dense(self.hidden, dtype=self.dtype, name=f"hidden{i}")(h), 0.2)
        logits = nn.Dense(1, dtype=self.dtype, name="out")(h)[:, 0].astype(jnp.float32)
        return jnp.repeat(logits, self.pack)


# ---------------------------------------------------------------------------------------------
# The model family (gan_jax.models): config, validation, construction


def g_config() -> config_dict.ConfigDict:
    """G's keys: noise size, width and number of hidden layers, compute dtype."""
    return config_dict.ConfigDict({"z_dim": 2, "hidden": 128, "depth": 3, "dtype": "float32"})


def d_config() -> config_dict.ConfigDict:
    """D's keys: width, hidden layers, PacGAN packing (1 = off), minibatch-std group (0 = off),
    compute dtype."""
    return config_dict.ConfigDict(
        {"hidden": 128, "depth": 3, "pack": 1, "minibatch_std": 0, "dtype": "float32"}
    )


def _check_points(net: str, spec: DataSpec) -> int:
    if len(spec.sample_shape) != 1:
        raise ConfigError(
            f"{net}.name='mlp' works on vectors [N, D], but data.name={spec.name!r} has samples "
            f"of shape {spec.sample_shape}; choose a model family for clips (e.g. 'video_dcgan')"
        )
    return spec.sample_shape[0]


def validate_g(g_cfg: config_dict.ConfigDict, spec: DataSpec) -> None:
    _check_points("g", spec)
    check = Checker(g_cfg, "g")
    check.integer("z_dim", 1)
    check.integer("hidden", 1)
    check.integer("depth", 0)
    check.one_of("dtype", tuple(DTYPES))


def validate_d(d_cfg: config_dict.ConfigDict, spec: DataSpec) -> None:
    _check_points("d", spec)
    check = Checker(d_cfg, "d")
    check.integer("hidden", 1)
    check.integer("depth", 1)
    check.one_of("dtype", tuple(DTYPES))
    pack = check.integer("pack", 1)
    if spec.batch_size % pack:
        raise ConfigError(f"batch_size={spec.batch_size} must be divisible by d.pack={pack}")
    group = check.integer("minibatch_std", 0)
    check_minibatch_std(group, spec.batch_size // pack, "d", "packed batch batch_size / d.pack")


def make_generator(g_cfg: config_dict.ConfigDict, spec: DataSpec) -> MLPGenerator:
    return MLPGenerator(
        z_dim=g_cfg.z_dim,
        out_dim=spec.sample_shape[0],
        hidden=g_cfg.hidden,
        depth=g_cfg.depth,
        dtype=DTYPES[g_cfg.dtype],
    )


def make_discriminator(d_cfg: config_dict.ConfigDict, spec: DataSpec) -> MLPDiscriminator:
    return MLPDiscriminator(
        in_dim=spec.sample_shape[0],
        hidden=d_cfg.hidden,
        depth=d_cfg.depth,
        pack=d_cfg.pack,
        minibatch_std_group=d_cfg.minibatch_std,
        dtype=DTYPES[d_cfg.dtype],
    )
