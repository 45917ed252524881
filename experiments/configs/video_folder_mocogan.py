"""Your own videos with the main job's model family (MoCoGAN), scaled up for accelerators:
16 frames of 64x64 (or 128x128 with the overrides below).

Run (set the folder; class sub-folders are optional):
    gan-jax train --config experiments/configs/video_folder_mocogan.py --workdir /runs/ucf101 \
        --config.data.root=/data/UCF-101
At 16x128x128 (one more doubling in each net):
    gan-jax train --config experiments/configs/video_folder_mocogan.py --workdir /runs/ucf128 \
        --config.data.root=/data/UCF-101 --config.data.height=128 --config.data.width=128 \
        --config.g.depth=5 --config.d.depth=5

Model: G = a GRU over per-frame noise (128 -> 128) next to a 256-d content code, then a 2-D
DCGAN frame generator of depth 4 (5 at 128x128) and base width 64 (batch norm) on all N * T
frames; D = an image head on every other frame and a 3-D video head, depth 4 (5), base width 64,
batch norm; non-saturating loss with R1 (gamma 0.1, lazily every 4th D update), Adam 2e-4
(b1 0.5, b2 0.999), EMA half-life 10k clips. The frame generator's parameters do not depend on
T, so `gan-jax sample --num-frames 64` draws longer clips.

Expected: not measured (no GPU was lent to this work, and there is no UCF-101 here). Sizes
worked out on a CPU by `benchmarks/train_step.py --analyse-only --config.batch_size=8` (XLA's
compiled memory and cost analysis of the step with plain lax convolutions, the GPU route), per
device at 8 clips per device (the global batch of 64 on 8 GPUs):
  16x64x64 (G 6.0 M parameters, D 13.8 M): 423 GFLOP per step; 0.25 GiB of state and batch,
     0.48 GiB of temporaries;
  16x128x128 (depth 5; G 17.6 M, D 55.8 M): 2963 GFLOP per step; 0.91 GiB of state and
     batch, 2.30 GiB of temporaries.
(Remeasured with the code of December 2026; an older one gave 0.60 and 2.76 GiB. On a CPU the
step now runs a D this large's optimiser update as one unit, `train_step._update_d`, which
`--analyse-only` shows as 0.41 and 2.27 GiB; accelerators keep the plain update.)
Both fit an 80 GB GPU many times over: raise the batch per device before adding devices. Step
time, estimated (not measured) at 100 TFLOP/s sustained (a fifth of an H100's TF32 peak; small
convolutions rarely do better): about 4 ms per step at 64x64 and 30 ms at 128x128, so 100k
steps take minutes to an hour of maths; the input pipeline (decoding video) is then the
likelier limit: `benchmarks/input_pipeline.py` measures it.
Lower `--config.batch_size` where it does not fit, or try `--config.g.dtype=bfloat16
--config.d.dtype=bfloat16`. Videos shorter than a clip and files that fail to decode (even
mid-stream) are skipped with one log line each (`too_short` and `decode_errors` are "skip");
`--config.data.decode_errors=raise` stops at the first damaged file instead, naming it.
Tested: the same config with tiny widths builds and trains on CPU through
`tests/test_config.py` (every shipped config validates and builds).
"""

from gan_jax.train import default_config


def get_config():
    cfg = default_config(model="mocogan", data="video_folder")
    cfg.steps = 100_000
    cfg.batch_size = 64  # global; a multiple of the device count

    cfg.g.content_dim = 256
    cfg.g.motion_dim = 128
    cfg.g.noise_dim = 128
    for net in (cfg.g, cfg.d):
        net.base_width = 64
        net.depth = 4
        net.lr = 2e-4
    cfg.d.image_stride = 2
    cfg.loss.name = "nonsaturating"
    cfg.penalty.r1 = 0.1
    cfg.penalty.every = 4
    cfg.ema.half_life_images = 10_000.0

    cfg.data.root = ""  # required: --config.data.root=/path/to/videos
    cfg.data.num_frames = 16
    cfg.data.height = 64
    cfg.data.width = 64
    cfg.data.frame_stride = 2  # 16 frames of a 25 fps video span 1.3 s
    cfg.data.crop = "random"
    cfg.data.random_flip = True
    cfg.data.clip_cache = True  # decode each video once; later epochs read from disk
    cfg.data.too_short = "skip"
    cfg.data.decode_errors = "skip"  # the default: log a damaged file once, use the next video
    cfg.data.num_workers = 8
    cfg.data.num_threads = 4

    cfg.ckpt.every = 2_000
    cfg.log.every = 100
    cfg.log.sample_every = 2_000
    cfg.log.num_samples = 16
    cfg.eval.every = 10_000
    cfg.eval.num_samples = 256
    return cfg
