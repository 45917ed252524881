"""The dataset "video_folder" (gan_jax.data.datasets): its config keys, spec and batches.

``decode_errors`` defaults to "skip" in the run config. A file that is damaged mid-stream
(probing reads only its headers, so the index cannot tell) fails when one of its clips is
decoded; under "raise" that stops the run at the same step on every resume, because the data
order is deterministic, so the run can never get past the file. Under "skip" the file is logged
once per process and its clip is replaced by the next readable video in index order. That
replacement depends only on which files fail, so batches, and a resumed run, stay exactly
reproducible. Set ``decode_errors="raise"`` to vet a folder: the first damaged file then stops
the run with a one-line error naming it.
"""

from __future__ import annotations

from pathlib import Path

from ml_collections import config_dict

from gan_jax.data.pipeline import (
    clip_config,
    clip_spec,
    make_clip_dataset,
    resolve_data_config,
    source_keys,
)
from gan_jax.data.spec import DataSpec
from gan_jax.data.video_folder.index import VIDEO_EXTENSIONS, require_videos
from gan_jax.data.video_folder.source import VideoFolder

_EMPTY_ROOT = (
    "data.root is empty: set it to your folder of videos, e.g. --config.data.root=/data/UCF-101"
)


def default_config() -> config_dict.ConfigDict:
    """Every key of `cfg.data` for a folder of videos, with defaults (`root` must be set)."""
    cfg = clip_config("video_folder")
    cfg.root = ""
    cfg.frame_stride = 1
    cfg.target_fps = config_dict.placeholder(float)
    cfg.clip_start = "random"
    cfg.crop = "random"
    cfg.resize_short_side = config_dict.placeholder(int)
    cfg.random_flip = False
    cfg.labels = "auto"
    cfg.too_short = "raise"
    cfg.decode_errors = "skip"  # see the module docstring for why not "raise"
    cfg.cache_dir = config_dict.placeholder(str)
    cfg.clip_cache = False
    cfg.extensions = VIDEO_EXTENSIONS
    cfg.index_threads = 8
    cfg.time_range = (0.0, 1.0)  # (start, end) fractions of each video clips come from
    return cfg


def make_source(resolved, *, seed: int = 0) -> VideoFolder:
    """The source of a resolved config (indexes the folder; the index is cached on disk)."""
    keys = source_keys(resolved)
    root = keys.pop("root")
    if not root:
        raise ValueError(_EMPTY_ROOT)
    return VideoFolder(Path(root).expanduser(), seed=seed, **keys)


def validate(data_cfg) -> None:
    """Checks that ``data.root`` is a folder holding files with a video ending.

    Cheap checks only (no file is opened); ``spec`` builds the source, which probes every file
    and applies the too-short and decode-error policies, so those errors also come before
    training starts.

    Raises:
      ValueError: ``data.root`` is empty; DataError: it is missing or holds no video file.
    """
    resolved = resolve_data_config(data_cfg)
    if not resolved["root"]:
        raise ValueError(_EMPTY_ROOT)
    require_videos(Path(resolved["root"]).expanduser().absolute(), resolved["extensions"])


def spec(data_cfg, batch_size: int) -> DataSpec:
    """Clips `[T, H, W, C]`, and `label` when the folder has class sub-folders.

    Builds the source, so a folder that gives no usable clip fails here, at validation.
    """
    resolved = resolve_data_config(data_cfg)
    classes = make_source(resolved).classes
    return clip_spec(resolved, batch_size, None if classes is None else len(classes))


def make_dataset(data_cfg, **kwargs):
    """Batches of the clip pipeline (`gan_jax.data.pipeline.make_clip_dataset`)."""
    return make_clip_dataset(data_cfg, **kwargs)
