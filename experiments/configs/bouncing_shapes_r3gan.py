"""R3GAN on the main job's data: the residual 3-D G and D of `gan_jax.models.r3gan` trained
with the relativistic pairing loss, R1 and R2, on bouncing shapes (8 frames of 32x32, batch 16).

Run:
    .venv/bin/gan-jax train --config experiments/configs/bouncing_shapes_r3gan.py \
        --workdir runs/bouncing_shapes_r3gan

Time: the train step runs at 1.2x to 1.8x the DCGAN's on 2 busy cores of an AMD EPYC (185 ms
against 152 ms median in benchmarks/train_step.py; 2.16 useful GFLOP per step against 2.24).
Not yet timed end to end at 1500 steps.

Expected (seed 0, not tuned; measured with --config.steps=500 on 2 cores shared with other
jobs, 9 min 54 s wall): the Fréchet Shapes Distance (eval/shapes_fd/fsd) goes 126 at step 0,
304 at step 250, 114 at step 500 (the 3-D DCGAN, bouncing_shapes_dcgan.py: 156 at step 500,
21 at 1500). D wins (d/loss 0.03 to 0.13, g/loss 3 to 6). samples/step_000500.png: black
frames, most of them empty, with dotted coloured pixels along the top and left borders. gamma 1
instead of 0.1 was worse (FSD 1086 at step 500: a dotted pixel grid over every frame).

At equal wall-clock with the other families (experiments/shapes_ablation.py, 180 s per run on one
core of an Intel Xeon, seeds 0, 1 and 2) it collapsed with every loss and seed (FSD 97 to 1042):
black frames, a faint dotted grid, or frames filled with a purple and green texture.

Choices: R3GAN's objective (loss rpgan, penalty.r1 = penalty.r2 = gamma) and optimiser
(Adam 2e-4 with b1 = 0, b2 = 0.99; no normalisation anywhere); the family's default widths,
sized for 2 CPU cores (gan_jax/models/r3gan.py). Data, steps, batch, EMA, checkpoints, logs
and evaluations are the main job's (experiments/configs/bouncing_shapes.py).
"""

from pathlib import Path

from gan_jax.config import load_config_file
from gan_jax.train import default_config


def get_config():
    main_job = load_config_file(Path(__file__).with_name("bouncing_shapes.py"))
    cfg = default_config(model="r3gan", data="bouncing_shapes")
    for group in ("data", "ema", "ckpt", "log", "eval"):
        cfg[group] = main_job[group]
    cfg.steps = main_job.steps
    cfg.batch_size = main_job.batch_size

    for net in (cfg.g, cfg.d):
        net.lr = 2e-4
        net.b1 = 0.0
        net.b2 = 0.99
    cfg.loss.name = "rpgan"
    cfg.penalty.r1 = 0.1
    cfg.penalty.r2 = 0.1
    return cfg
