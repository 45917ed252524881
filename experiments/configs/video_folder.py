"""Your own videos (UCF-101-like folder) at 16 frames of 64x64, sized for one GPU.

Run (set the folder; class sub-folders are optional):
    gan-jax train --config experiments/configs/video_folder.py --workdir /runs/ucf101 \
        --config.data.root=/data/UCF-101

Expected: not measured (no GPU and no UCF-101 here). What was run: the same config with tiny
widths for 2 steps on CPU over a folder of mixed test videos (avi, gif, webm, a corrupt mp4):
too-short videos and the corrupt file are skipped with one log line each (`too_short` and
`decode_errors` are "skip" below), and checkpoints, samples and eval are written.

Damaged files: with `decode_errors="skip"` a file that fails to decode, even mid-stream, is
logged once and its clips come from the next readable video, deterministically (resuming gives
the same batches). `--config.data.decode_errors=raise` stops at the first damaged file with a
one-line error naming it: use it to vet a folder, not for long runs, which could then never get
past that file. At full size G and D are the README's 16x64x64
DCGAN (depth 4, widths 64), batch 64; its memory and speed on a GPU are not measured: lower
`--config.batch_size` if it does not fit, or try `--config.g.dtype=bfloat16
--config.d.dtype=bfloat16`.
"""

from gan_jax.train import default_config


def get_config():
    cfg = default_config(model="video_dcgan", data="video_folder")
    cfg.steps = 100_000
    cfg.batch_size = 64  # global; a multiple of the device count

    # G and D: depth 4, widths 64: 64x64 from a 4x4 base (the family's defaults).
    cfg.g.z_dim = 128
    cfg.ema.decay = 0.999

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
