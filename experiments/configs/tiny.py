"""Tiny video GAN for tests and smoke runs: 2 frames of 8x8, 4 steps.

Run (a few seconds on a CPU, mostly compilation):
    .venv/bin/gan-jax train --config experiments/configs/tiny.py --workdir /tmp/gan_tiny

Expected: 4 steps, checkpoints at steps 2 and 4, samples/step_000002.* and step_000004.*,
finite losses. The samples are noise: 4 steps teach nothing.
"""

from gan_jax.train import default_config


def get_config():
    cfg = default_config(model="video_dcgan", data="bouncing_shapes")
    cfg.steps = 4
    cfg.batch_size = 8  # a multiple of the 8 fake CPU devices of the tests

    cfg.g.z_dim = 8
    for net in (cfg.g, cfg.d):
        net.base_width = 4
        net.depth = 2

    cfg.data.num_frames = 2
    cfg.data.height = 8
    cfg.data.width = 8
    cfg.data.num_objects = (1, 2)
    cfg.data.size_range = (2.0, 4.0)
    cfg.data.speed_range = (0.5, 1.0)
    cfg.data.num_threads = 1

    cfg.ckpt.every = 2
    cfg.log.every = 1
    cfg.log.sample_every = 2
    cfg.log.num_samples = 4
    cfg.log.progress = False
    cfg.log.report = False  # matplotlib's plots take seconds; tests/test_report.py turns it on
    cfg.eval.num_samples = 8
    return cfg
