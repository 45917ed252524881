"""The benchmark video GAN: the README's 3-D DCGAN at full width (G 512 -> 256 -> 128 -> 64 -> 3
channels, D mirrored, batch norm, Adam 2e-4 for each), on 16-frame 32x32 clips, batch 32.

Run (the steady-state speed of one train step; no data is read, batches are random):
    .venv/bin/python benchmarks/train_step.py --config experiments/configs/dcgan_benchmark.py
    .venv/bin/python benchmarks/train_step.py --config experiments/configs/dcgan_benchmark.py \
        --config.data.height=64 --config.data.width=64 --config.batch_size=8

Expected: measured in the README's benchmark section (clips/s and GFLOP/s on the CPU kinds
seen). Any config file benchmarks the same way (a new model family needs no benchmark code). As a
training run (`gan-jax train`) it is the main job's data at the benchmark's size; nobody has
trained it to a result.
"""

from gan_jax.train import default_config


def get_config():
    cfg = default_config(model="video_dcgan", data="bouncing_shapes")
    cfg.batch_size = 32
    cfg.data.num_frames = 16
    cfg.data.height = 32
    cfg.data.width = 32
    cfg.data.num_threads = 1
    return cfg
