"""The main job's data with the 2016-style video DCGAN (the main job until the MoCoGAN
recipe replaced it): bouncing shapes, 8 frames of 32x32, on a 2-core CPU.

Run:
    .venv/bin/gan-jax train --config experiments/configs/bouncing_shapes_dcgan.py \
        --workdir runs/bouncing_shapes_dcgan

Time: 1500 steps of batch 16 at about 8 steps/s on 2 idle cores, plus the shapes feature
network (trained once, about 30 s), 7 evaluations of 512 clips and compilation: measured
4 min 40 s wall on a 2-core AMD EPYC (3 min 32 s on a faster CPU) before the physics check
joined the evaluations, peak host memory 1.6 GB.

Expected (seed 0, bitwise reproducible on CPU): samples/step_001500.png shows soft coloured
blobs (red, orange, yellow, green, cyan, blue) on a black background, one or two per clip, most
of them drifting across the 8 frames; edges are soft, not yet crisp squares and discs. The
Fréchet Shapes Distance (eval/shapes_fd/fsd in metrics.jsonl; 512 clips) falls from 125 at
step 0 (the untrained generator) to 21 at step 1500 (16.4 on the AMD EPYC: CPUs round
differently, so runs part ways), not monotonically (156 at step 500, 39 at 1250); two draws of
real clips score 1.7. The physics check (eval/shapes_physics): no clip passes (off-palette
pixels 76 %, area CV 0.44 against the real clips' 0.03). Final eval/video_stats: mean_gap 0.06,
motion_ratio 1.32; D wins at the end (d/loss 0.08, g/loss 3.9).

Choices: D with batch norm learned fastest here (no-norm D with R1, or spectral norm with the
hinge loss, were still grey or single-coloured at the same step); Adam 5e-4 for both nets; EMA
decay 0.99, since a 0.999 average over a run this short is mostly early, grey generators.
"""

from gan_jax.train import default_config


def get_config():
    cfg = default_config(model="video_dcgan", data="bouncing_shapes")
    cfg.steps = 1500
    cfg.batch_size = 16

    cfg.g.z_dim = 64
    for net in (cfg.g, cfg.d):
        net.base_width = 16
        net.depth = 3
        net.lr = 5e-4
    cfg.ema.decay = 0.99

    cfg.data.num_frames = 8
    cfg.data.height = 32
    cfg.data.width = 32
    cfg.data.num_objects = (1, 2)
    cfg.data.size_range = (8.0, 12.0)
    cfg.data.speed_range = (1.0, 2.5)
    cfg.data.num_threads = 1

    cfg.ckpt.every = 250
    cfg.log.every = 25
    cfg.log.sample_every = 250
    cfg.log.num_samples = 8
    # Every 250 steps (and at step 0): video_stats and shapes_fd of the EMA generator, into
    # metrics.jsonl. The shapes feature network trains once (about 45 s) into
    # WORKDIR/shapes_features; 512 real and generated clips make the FSD stable.
    cfg.eval.every = 250
    cfg.eval.num_samples = 512
    return cfg
