"""THE MAIN JOB: a MoCoGAN on bouncing shapes, 8 frames of 32x32, on a 2-core CPU.

Run (then 32-frame clips from the 8-frame model):
    .venv/bin/gan-jax train --config experiments/configs/bouncing_shapes.py \
        --workdir runs/bouncing_shapes
    .venv/bin/gan-jax sample --workdir runs/bouncing_shapes --num-frames 32 --num 8 \
        --out /tmp/bouncing_shapes_32

Model (the `mocogan` family's defaults, gan_jax/models/mocogan.py): G = a GRU over per-frame
noise (16 -> 16) next to a 64-d content code per clip, then a 2-D DCGAN frame generator of
depth 3 and base width 16 (batch norm) run on all N * T frames; D = an image head (2-D, frames
0 and 4 of each clip) and a video head (video_dcgan's 3-D D), both of depth 3 and base width
16 with batch norm, their non-saturating losses weighted 1 and 1. 1500 steps of batch 16, Adam
5e-4 (b1 0.5) for both nets, EMA decay 0.99.

Time: TIME_FIGURES

Expected (seed 0, bitwise reproducible on CPU): RESULT_FIGURES

Choices, from experiments/shapes_ablation.py (README "Which GAN for bouncing shapes"): at equal
wall-clock (180 s on the 2-core AMD EPYC) MoCoGAN's split of content and motion reached the
lowest FSD of the three families (12.6 with NS + R1, against 29.7 for the 3-D DCGAN and 131 for
the residual R3GAN-style nets, which collapsed to empty frames); R1 and the hinge loss did not
beat plain non-saturating with batch-norm D here; augmentation only slows a run whose data never
repeats. Batch norm in D learned fastest (see bouncing_shapes_dcgan.py); EMA 0.99, since a
0.999 average over a run this short is mostly early, grey generators.
"""

from gan_jax.train import default_config


def get_config():
    cfg = default_config(model="mocogan", data="bouncing_shapes")
    cfg.steps = 1500
    cfg.batch_size = 16

    for net in (cfg.g, cfg.d):
        net.lr = 5e-4
    cfg.loss.head_weights.image = 1.0
    cfg.loss.head_weights.video = 1.0
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
    # Every 500 steps (and at step 0): video_stats, shapes_fd and shapes_physics of the EMA
    # generator on 512 clips, into metrics.jsonl (every 250 took the run to 5 min 27 s). The
    # shapes feature network trains once (about 30 s) into WORKDIR/shapes_features.
    cfg.eval.every = 500
    cfg.eval.num_samples = 512
    return cfg
