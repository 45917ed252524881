"""The bouncing-shapes feature network for inference: its settings, the network, the cache.

FVD's I3D needs downloaded weights and sees 224 x 224 Kinetics video; bouncing shapes at 32 x 32
are far from that. This network is trained here, deterministically, to read the scene of a
bouncing-shapes clip: how many objects, which palette colours, and per colour the velocity,
speed, first and last position, size and shape kind. Its penultimate layer (``feature_dim``
units after global average pooling and one dense layer) is the feature space of the Fréchet
Shapes Distance (``gan_jax.metrics.shapes_fd``).

This module holds computing features, saving and loading trained parameters and the cache. The
settings and the network (``FeatureNetSettings``, ``ShapesFeatureNet``, ``init_params``) are in
``gan_jax.metrics.shapes_net``; the training program (targets, loss, optimiser loop, held-out
metrics) is ``gan_jax.metrics.shapes_features_training``, which the cache runs on a miss.

``get_feature_params(cache_dir, data)`` trains on first use and caches the result in
``cache_dir/shapes_features_<T>x<H>x<W>x<C>_<hash>.npz`` (the hash covers every setting and
``FORMAT_VERSION``; the file is written to a temporary name and renamed), so later calls load it
in milliseconds.

Example:
    features = get_feature_params(None, cfg.data)      # or a clip shape (T, H, W, C)
    feats = features.features(clips)                    # [N, T, H, W, C] -> [N, feature_dim]
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from gan_jax.data.video_folder import default_cache_dir
from gan_jax.io.atomic import atomic_write
from gan_jax.metrics import shapes_features_training
from gan_jax.metrics.shapes_net import (
    _METRICS_KEY,
    _PARAM_PREFIX,
    _SETTINGS_KEY,
    FORMAT_VERSION,
    MIN_SIZE,
    FeatureNetSettings,
    ShapesFeatureNet,
    init_params,
    make_model,
    settings_for,
)

__all__ = [
    "FORMAT_VERSION",
    "MIN_SIZE",
    "FeatureNetSettings",
    "ShapesFeatureNet",
    "ShapesFeatures",
    "get_feature_params",
    "init_params",
    "load_feature_params",
    "make_model",
    "save_feature_params",
    "settings_for",
]

logger = logging.getLogger(__name__)


def train_feature_params(settings: FeatureNetSettings) -> tuple[dict, dict[str, float]]:
    """Trains the network for ``settings``: what ``get_feature_params`` runs on a cache miss
    (``gan_jax.metrics.shapes_features_training.train_feature_params``; tests replace it)."""
    return shapes_features_training.train_feature_params(settings)


@dataclasses.dataclass(frozen=True)
class ShapesFeatures:
    """Trained feature network: settings, params and how well its heads did on held-out clips.

    Attributes:
      settings: what it was trained on and how.
      params: Flax params of ``make_model(settings)``.
      heldout: metrics from ``shapes_features_training.heldout_metrics`` plus
        ``train_seconds``.
      path: the cache file it was loaded from or written to (None if not cached).
    """

    settings: FeatureNetSettings
    params: Any
    heldout: dict
    path: pathlib.Path | None = None

    @property
    def clip_shape(self) -> tuple[int, int, int, int]:
        """(T, H, W, C) of the clips the network accepts."""
        return self.settings.clip_shape

    @property
    def feature_dim(self) -> int:
        """D."""
        return self.settings.feature_dim

    def model(self) -> ShapesFeatureNet:
        """The Flax module."""
        return make_model(self.settings)

    def features(self, clips) -> np.ndarray:
        """Features of clips ``[N, T, H, W, C]`` (float in [-1, 1]) -> float32 ``[N, D]``.

        For many clips use ``gan_jax.metrics.shapes_fd.ShapesFD``, which batches and checks
        the input.
        """
        return np.asarray(_compiled_apply(self.settings)(self.params, jnp.asarray(clips))[0])

    def counts(self, clips) -> np.ndarray:
        """The number of objects the count head reads in clips ``[N, T, H, W, C]`` (float in
        [-1, 1]) -> int ``[N]``."""
        heads = _compiled_apply(self.settings)(self.params, jnp.asarray(clips))[1]
        return np.asarray(jnp.argmax(heads["count"], axis=-1))


@functools.lru_cache(maxsize=8)
def _compiled_apply(settings: FeatureNetSettings):
    """`apply(params, clips) -> (features, heads)` of the network, compiled once per settings
    (op by op, each call would run every convolution of CPU's route unfused)."""
    model = make_model(settings)
    return jax.jit(lambda params, clips: model.apply({"params": params}, clips))


def save_feature_params(path, features: ShapesFeatures) -> None:
    """Writes settings, held-out metrics and params to ``path`` (.npz) atomically."""
    path = pathlib.Path(path)
    arrays = {
        _SETTINGS_KEY: np.array(features.settings.to_json()),
        _METRICS_KEY: np.array(json.dumps(features.heldout, sort_keys=True)),
    }
    for key, value in traverse_util.flatten_dict(features.params, sep="/").items():
        arrays[_PARAM_PREFIX + key] = np.asarray(value)

    def write(tmp: pathlib.Path) -> None:
        # An open file, not a name: np.savez would append ".npz" to the temporary name.
        with open(tmp, "wb") as file:
            np.savez(file, **arrays)

    # A temporary name in the same directory, then an atomic rename: readers (and other
    # processes training the same settings) never see a partial file.
    atomic_write(path, write)


def load_feature_params(path, settings: FeatureNetSettings | None = None) -> ShapesFeatures:
    """Reads a file written by ``save_feature_params``.

    Args:
      path: the .npz file.
      settings: if given, the file must hold parameters for exactly these settings.

    Returns:
      The ``ShapesFeatures``.
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"shapes feature params file {str(path)!r} does not exist")
    with np.load(path) as data:
        if _SETTINGS_KEY not in data.files:
            raise ValueError(
                f"{str(path)!r} is not a shapes feature params file (no {_SETTINGS_KEY!r}; has "
                f"{sorted(data.files)[:5]}...); delete it and train again"
            )
        stored = json.loads(str(data[_SETTINGS_KEY]))
        heldout = json.loads(str(data[_METRICS_KEY]))
        flat = {
            key[len(_PARAM_PREFIX) :]: np.array(data[key])
            for key in data.files
            if key.startswith(_PARAM_PREFIX)
        }
    version = stored.pop("format_version", None)
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{str(path)!r} holds shapes feature params of format {version}, this code reads "
            f"format {FORMAT_VERSION}; delete the file to retrain"
        )
    loaded_settings = FeatureNetSettings(**stored)
    if settings is not None and loaded_settings != settings:
        raise ValueError(
            f"{str(path)!r} holds params for settings {loaded_settings}, not the requested "
            f"{settings}; the file was renamed or is corrupt: delete it to retrain"
        )
    params = traverse_util.unflatten_dict(flat, sep="/")
    _check_param_shapes(params, loaded_settings, path)
    return ShapesFeatures(loaded_settings, params, heldout, path)


def _check_param_shapes(params, settings: FeatureNetSettings, path) -> None:
    expected = jax.eval_shape(lambda: init_params(settings))
    want = {k: v.shape for k, v in traverse_util.flatten_dict(expected, sep="/").items()}
    have = {k: v.shape for k, v in traverse_util.flatten_dict(params, sep="/").items()}
    if want != have:
        differing = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
        raise ValueError(
            f"{str(path)!r}: parameter shapes do not match the network for its settings (first "
            f"differences: {[(k, have.get(k), want.get(k)) for k in differing[:3]]}, as (name, "
            "in file, expected)); the file is corrupt: delete it to retrain"
        )


def get_feature_params(cache_dir, data, **settings) -> ShapesFeatures:
    """Loads the trained feature network for ``data`` from the cache, training it on a miss.

    Args:
      cache_dir: directory of the cache; None = ``<default_cache_dir()>/shapes_features``
        (``~/.cache/gan_jax/shapes_features``).
      data: ``(T, H, W, C)``, a bouncing_shapes data config (e.g. the trainer's ``cfg.data``)
        or a ``BouncingShapes`` source; see ``settings_for``.
      **settings: other ``FeatureNetSettings`` fields (widths, feature_dim, steps, seed, ...).

    Returns:
      ``ShapesFeatures``; ``heldout`` holds the accuracies measured when it was trained.
    """
    resolved = settings_for(data, **settings)
    if cache_dir is None:
        cache_dir = pathlib.Path(default_cache_dir()) / "shapes_features"
    path = pathlib.Path(cache_dir) / resolved.cache_name()
    if path.exists():
        return load_feature_params(path, resolved)
    logger.info("shapes features: no cache at %s, training (%d steps)", path, resolved.steps)
    params, report = train_feature_params(resolved)
    features = ShapesFeatures(resolved, params, report, path)
    save_feature_params(path, features)
    logger.info("shapes features: trained in %.1f s, held-out %s", report["train_seconds"], report)
    return features
