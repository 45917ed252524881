"""gan_jax: video GANs in JAX/Flax."""

__version__ = "0.1.0"
