"""Datasets by name and the deterministic input pipeline.

``make_dataset`` (in ``pipeline``) is the trainer's entry point: any dataset of ``DATASETS``
("bouncing_shapes", "video_folder", "ring", "grid", or one of your own); the sources can be used
directly for random access and ground truth.
"""

from gan_jax.data import points_source
from gan_jax.data.bouncing_shapes import BouncingShapes, render_shapes
from gan_jax.data.datasets import DATASETS, data_spec, default_data_config
from gan_jax.data.pipeline import make_dataset, make_source, resolve_data_config
from gan_jax.data.spec import DataSpec
from gan_jax.data.video_folder import VideoFolder, index_videos

__all__ = [
    "DATASETS",
    "BouncingShapes",
    "DataSpec",
    "VideoFolder",
    "data_spec",
    "default_data_config",
    "index_videos",
    "make_dataset",
    "make_source",
    "points_source",
    "render_shapes",
    "resolve_data_config",
]
