"""Test set-up: 8 fake CPU devices, strict rank promotion.

XLA_FLAGS must be set before jax is imported anywhere, which is why it lives here at module level.
"""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")


import optax  # noqa: E402
import pytest  # noqa: E402

TINY_CLIP = (2, 8, 8, 3)  # (T, H, W, C)


def tiny_video_models(norm: str = "batch", spectral_norm: bool = False, clip=TINY_CLIP):
    """A 2-block video DCGAN small enough to compile in a few seconds."""
    from gan_jax.models.video_dcgan import VideoDiscriminator, VideoGenerator

    g = VideoGenerator(clip_shape=clip, z_dim=8, base_width=4, depth=2, norm=norm)
    d = VideoDiscriminator(
        clip_shape=clip, base_width=4, depth=2, norm=norm, spectral_norm=spectral_norm
    )
    return g, d


@pytest.fixture
def tiny_gan():
    """(g, d, g_tx, d_tx) of a tiny video GAN with Adam."""
    g, d = tiny_video_models()
    return g, d, optax.adam(2e-4, b1=0.5, b2=0.999), optax.adam(2e-4, b1=0.5, b2=0.999)
