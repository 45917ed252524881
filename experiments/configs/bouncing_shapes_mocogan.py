"""MoCoGAN on the main job's data: bouncing shapes, 8 frames of 32x32, on a 2-core CPU.

Run (then 32-frame clips from the 8-frame model):
    .venv/bin/gan-jax train --config experiments/configs/bouncing_shapes_mocogan.py \
        --workdir runs/bouncing_shapes_mocogan
    .venv/bin/gan-jax sample --workdir runs/bouncing_shapes_mocogan --num-frames 32 \
        --num 8 --out /tmp/mocogan_32

Everything but the models comes from bouncing_shapes.py (data, 1500 steps of batch 16, Adam
5e-4, EMA 0.99, the evaluation every 250 steps), so the two runs compare model families. The
models are the `mocogan` family's defaults: G = a GRU over per-frame noise (16 -> 16) next to a
64-d content code, then a 2-D DCGAN frame generator of depth 3 and base width 16 run on all
N * T frames; D = an image head (2-D, frames 0 and 4 of each clip) and a video head
(video_dcgan's 3-D D), both of depth 3 and base width 16, their losses weighted 1 and 1.

Time: one train step costs about as much as the main job's (benchmarks/train_step.py,
alternating the two on the same loaded 2-core AMD EPYC: 287 vs 274 ms median); the whole run
took 9 min 44 s wall and 308 CPU-seconds next to other jobs (load 5-6 on the 2 cores), so
about the main job's 5 minutes on idle cores (not measured there).

Expected (seed 0, on the AMD EPYC): eval/shapes_fd/fsd in metrics.jsonl falls from 131 at
step 0 to 118 (step 250), 74 (500), 40 (750), 16.0 (1000), 10.4 (1250) and 10.6 at step 1500
(video_dcgan, the main job: 16.4 at 1500 on the same CPU); final video_stats mean_gap 0.07,
motion_ratio 1.16; D still ahead (d/real_acc 0.85 image, 0.95 video). samples/step_001500.png:
soft coloured blobs (green, cyan, red, orange, yellow, blue, white) on black, one or two per
clip, moving across the 8 frames; some change colour or split along the way (the content code
does not hold colour alone). `sample --num-frames 32` gives clips of the same look whose blobs
keep moving, growing, fading and reappearing over the 32 frames.
"""

from pathlib import Path

from gan_jax.config import load_config_file
from gan_jax.train import default_config

MAIN_JOB = Path(__file__).with_name("bouncing_shapes.py")


def get_config():
    base = load_config_file(MAIN_JOB)
    cfg = default_config(model="mocogan", data="bouncing_shapes")
    cfg.steps, cfg.batch_size = base.steps, base.batch_size
    for group in ("data", "ema", "ckpt", "log", "eval"):
        cfg[group] = base[group]
    for net in ("g", "d"):
        cfg[net].lr = base[net].lr

    cfg.loss.head_weights.image = 1.0
    cfg.loss.head_weights.video = 1.0
    return cfg
