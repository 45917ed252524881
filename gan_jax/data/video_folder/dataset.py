"""The dataset "video_folder" (gan_jax.data.datasets): its config keys, spec and batches."""

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
from gan_jax.data.video_folder.index import VIDEO_EXTENSIONS
from gan_jax.data.video_folder.source import VideoFolder


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
    cfg.decode_errors = "raise"
    cfg.cache_dir = config_dict.placeholder(str)
    cfg.clip_cache = False
    cfg.extensions = VIDEO_EXTENSIONS
    cfg.index_threads = 8
    return cfg


def make_source(resolved, *, seed: int = 0) -> VideoFolder:
    """The source of a resolved config (indexes the folder; the index is cached on disk)."""
    keys = source_keys(resolved)
    root = keys.pop("root")
    if not root:
        raise ValueError("data.root must name the video folder (e.g. /data/UCF-101)")
    return VideoFolder(root, seed=seed, **keys)


def validate(data_cfg) -> None:
    root = resolve_data_config(data_cfg)["root"]
    if not root:
        raise ValueError(
            "data.root is empty: set it to your folder of videos, e.g. "
            "--config.data.root=/data/UCF-101"
        )
    if not Path(root).expanduser().is_dir():
        raise ValueError(f"data.root={root!r} is not a directory")


def spec(data_cfg, batch_size: int) -> DataSpec:
    """Clips `[T, H, W, C]`, and `label` when the folder has class sub-folders."""
    resolved = resolve_data_config(data_cfg)
    classes = make_source(resolved).classes
    return clip_spec(resolved, batch_size, None if classes is None else len(classes))


def make_dataset(data_cfg, **kwargs):
    """Batches of the clip pipeline (`gan_jax.data.pipeline.make_clip_dataset`)."""
    return make_clip_dataset(data_cfg, **kwargs)
