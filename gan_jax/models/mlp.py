"""MLP generator and discriminator for 2-D point clouds (the debugging toy).

The article this project grew from sketched a `Linear(2, 2)` GAN; a linear map cannot move a
Gaussian onto a ring of modes, so both nets here have hidden layers.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp


class MLPGenerator(nn.Module):
    """z `[N, z_dim]` -> points `[N, out_dim]`."""

    z_dim: int = 2
    out_dim: int = 2
    hidden: int = 128
    depth: int = 3

    @nn.compact
    def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
        del train  # no normalisation: same in train and eval
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"MLPGenerator: z must be [N, {self.z_dim}], got {z.shape}.")
        x = z
        for i in range(self.depth):
            x = nn.relu(nn.Dense(self.hidden, name=f"hidden{i}")(x))
        return nn.Dense(self.out_dim, name="out")(x)


class MLPDiscriminator(nn.Module):
    """points `[N, in_dim]` -> logits `[N]`.

    `pack` > 1 is PacGAN packing (Lin et al. 2018): D judges `pack` samples jointly; the input
    `[N, in_dim]` becomes `[N / pack, pack * in_dim]` and each logit is repeated `pack` times so
    that the output stays `[N]` and the losses are unchanged.
    """

    in_dim: int = 2
    hidden: int = 128
    depth: int = 3
    pack: int = 1

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        del train
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"MLPDiscriminator: input must be [N, {self.in_dim}], got {x.shape}.")
        n = x.shape[0]
        if n % self.pack:
            raise ValueError(f"MLPDiscriminator: batch {n} is not divisible by pack={self.pack}.")
        h = x.reshape(n // self.pack, self.pack * self.in_dim)
        for i in range(self.depth):
            h = nn.leaky_relu(nn.Dense(self.hidden, name=f"hidden{i}")(h), 0.2)
        logits = nn.Dense(1, name="out")(h)[:, 0]
        return jnp.repeat(logits, self.pack)
