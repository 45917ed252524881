"""Tests of the bouncing-shapes feature network (training, cache) and the Fréchet Shapes Distance.

The fast tests share one network with the main job's clips and scenes, trained for 200 steps
(about 15 s); the fully trained network's check is marked slow.
"""

import json
import os

import numpy as np
import pytest
from ml_collections import config_dict

from gan_jax.data import default_data_config
from gan_jax.data.bouncing_shapes import BouncingShapes
from gan_jax.metrics import shapes_fd, shapes_features, shapes_features_training
from gan_jax.metrics.frechet import GaussianStats
from gan_jax.metrics.shapes_fd import ShapesFD, calibration_distances
from gan_jax.metrics.shapes_features import (
    FeatureNetSettings,
    ShapesFeatures,
    get_feature_params,
    load_feature_params,
    settings_for,
)

# The main job's scenes (experiments/configs/bouncing_shapes.py) and network, trained for 200
# instead of 1200 steps (about 15 s): enough to read the scenes and to order the calibration
# sets, which smaller networks or clips did not do reliably.
TINY_SHAPE = (8, 32, 32, 3)
SCENES = dict(num_objects=(1, 2), size_range=(8.0, 12.0), speed_range=(1.0, 2.5))
TINY_SETTINGS = dict(**SCENES, steps=200, num_heldout=64)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(cache_dir, ShapesFeatures) of the tiny network, trained once for the module."""
    cache_dir = tmp_path_factory.mktemp("shapes_cache")
    return cache_dir, get_feature_params(cache_dir, TINY_SHAPE, **TINY_SETTINGS)


def _flat(params):
    from flax import traverse_util

    return traverse_util.flatten_dict(params, sep="/")


def test_tiny_network_learns_the_scene(tiny):
    _, features = tiny
    heldout = features.heldout
    # Far above chance after a few seconds: the heads read the clips.
    assert heldout["count_accuracy"] > heldout["chance_count_accuracy"] + 0.1
    assert heldout["position_rmse"] < 8.0  # pixels, on 32 x 32 frames
    assert features.features(np.zeros((3, *TINY_SHAPE), np.float32)).shape == (3, 128)


def test_cache_second_call_loads_without_training(tiny, monkeypatch):
    cache_dir, first = tiny
    calls = []
    monkeypatch.setattr(
        shapes_features, "train_feature_params", lambda settings: calls.append(settings)
    )
    second = get_feature_params(cache_dir, TINY_SHAPE, **TINY_SETTINGS)
    assert calls == []
    assert second.path == first.path and second.path.parent == cache_dir
    assert second.settings == first.settings and second.heldout == first.heldout
    for key, value in _flat(first.params).items():
        np.testing.assert_array_equal(_flat(second.params)[key], value)
    # The only file is the finished one: no temporary left behind.
    assert sorted(p.name for p in cache_dir.iterdir()) == [first.path.name]
    assert first.path.name.startswith("shapes_features_8x32x32x3_")


def test_cache_miss_trains_for_other_settings(tiny, monkeypatch):
    cache_dir, first = tiny
    calls = []

    def fake_train(settings):
        calls.append(settings)
        return first.params, {"train_seconds": 0.0}

    monkeypatch.setattr(shapes_features, "train_feature_params", fake_train)
    other = get_feature_params(cache_dir, TINY_SHAPE, **{**TINY_SETTINGS, "seed": 5})
    assert len(calls) == 1 and calls[0].seed == 5
    assert other.path != first.path and other.path.exists()
    os.remove(other.path)


@pytest.mark.slow  # 22 s; suite time
def test_training_is_deterministic():
    # A narrower network: determinism needs no accuracy.
    settings = settings_for(
        TINY_SHAPE,
        **{**TINY_SETTINGS, "steps": 4, "num_heldout": 8, "widths": (8, 16), "feature_dim": 16},
    )
    params_a, _ = shapes_features_training.train_feature_params(settings)
    params_b, _ = shapes_features_training.train_feature_params(settings)
    flat_a, flat_b = _flat(params_a), _flat(params_b)
    assert flat_a.keys() == flat_b.keys()
    for key in flat_a:
        assert flat_a[key].tobytes() == flat_b[key].tobytes(), key
    initial = _flat(shapes_features.init_params(settings))
    assert any(not np.array_equal(initial[k], flat_a[k]) for k in flat_a), "training did nothing"


def test_fsd_orders_real_shuffled_generator_noise(tiny):
    _, features = tiny
    distances = calibration_distances(features, num_clips=128)
    names = list(shapes_fd.CALIBRATION_SETS)
    assert list(distances) == names
    values = [distances[name] for name in names]
    assert all(a < b for a, b in zip(values, values[1:])), distances


def test_streaming_matches_one_shot(tiny):
    _, features = tiny
    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 1, (40, *TINY_SHAPE)).astype(np.float32)
    fake = np.tanh(rng.normal(size=(30, *TINY_SHAPE))).astype(np.float32)
    one_shot = shapes_fd.shapes_fd(features, real, fake, batch_size=16)
    batches = ({"video": real[i : i + 7], "label": np.zeros(7)} for i in range(0, 40, 7))
    streamed = shapes_fd.shapes_fd(features, batches, [fake[:11], fake[11:]], batch_size=16)
    assert streamed == pytest.approx(one_shot, rel=1e-6)
    # uint8 clips in [0, 255] are mapped to [-1, 1].
    as_uint8 = np.round((real + 1) * 127.5).astype(np.uint8)
    metric = ShapesFD(features, batch_size=16)
    np.testing.assert_allclose(
        metric.features(as_uint8), metric.features(as_uint8 / 127.5 - 1), atol=1e-5
    )


def test_score_replaces_fakes_and_real_stats_can_be_reused(tiny, tmp_path):
    _, features = tiny
    rng = np.random.default_rng(1)
    real = rng.uniform(-1, 1, (20, *TINY_SHAPE)).astype(np.float32)
    metric = ShapesFD(features)
    metric.add_real(real)
    first = metric.score(np.zeros((10, *TINY_SHAPE), np.float32) - 1.0)
    assert metric.score(real[:10]) < first
    assert metric.fake_stats.count == 10
    metric.real_stats.save(tmp_path / "real.npz")
    reloaded = ShapesFD(features, real_stats=GaussianStats.load(tmp_path / "real.npz"))
    assert reloaded.score(real[:10]) == pytest.approx(metric.score(real[:10]), rel=1e-9)


def test_for_data_uses_the_data_config(tiny, monkeypatch):
    cache_dir, features = tiny
    data = default_data_config("bouncing_shapes")
    data.num_frames, data.height, data.width = TINY_SHAPE[:3]
    data.update(SCENES)
    # The tiny network was trained for exactly these scenes: the call must load it.
    monkeypatch.setattr(shapes_features, "train_feature_params", None)
    model_settings = {k: v for k, v in TINY_SETTINGS.items() if k not in data}
    metric = ShapesFD.for_data(data, num_real=20, cache_dir=cache_dir, **model_settings)
    assert metric.shapes_features.path == features.path
    assert metric.real_stats.count == 20
    assert np.isfinite(metric.score(np.zeros((4, *TINY_SHAPE), np.float32)))


def test_bad_clips_are_rejected_with_the_reason(tiny):
    _, features = tiny
    metric = ShapesFD(features)
    with pytest.raises(ValueError, match=r"\[N, 8, 32, 32, 3\].*got shape \(2, 8, 32, 16, 3\)"):
        metric.add_real(np.zeros((2, 8, 32, 16, 3), np.float32))
    with pytest.raises(ValueError, match=r"got shape \(8, 32, 32, 3\)"):
        metric.add_real(np.zeros(TINY_SHAPE, np.float32))
    with pytest.raises(ValueError, match=r"must lie in \[-1, 1\] but span \[0, 255\]"):
        metric.add_fake(np.linspace(0, 255, 2 * np.prod(TINY_SHAPE)).reshape(2, *TINY_SHAPE))
    with pytest.raises(ValueError, match="NaN: True"):
        metric.add_fake(np.full((2, *TINY_SHAPE), np.nan, np.float32))
    with pytest.raises(ValueError, match="dtype int32"):
        metric.add_fake(np.zeros((2, *TINY_SHAPE), np.int32))
    with pytest.raises(KeyError, match="'video' key"):
        metric.add_fake([{"clips": np.zeros((2, *TINY_SHAPE), np.float32)}])
    with pytest.raises(TypeError, match="iterable"):
        metric.add_fake(3.0)
    with pytest.raises(ValueError, match="1 generated clips added, at least 2"):
        metric.add_real(np.zeros((2, *TINY_SHAPE), np.float32))
        metric.add_fake(np.zeros((1, *TINY_SHAPE), np.float32))
        metric.compute()
    with pytest.raises(TypeError, match="ShapesFeatures"):
        ShapesFD({"params": {}})


def test_bad_settings_are_rejected_with_the_reason():
    with pytest.raises(ValueError, match="at least 16 x 16.*got 8 x 8"):
        settings_for((4, 8, 8, 3))
    with pytest.raises(ValueError, match=r"clip shape \(T, H, W, C\)"):
        settings_for((16, 32, 32))
    with pytest.raises(TypeError, match=r"unknown setting\(s\) \['width_multiplier'\]"):
        settings_for(TINY_SHAPE, width_multiplier=2)
    folder = default_data_config("video_folder")
    with pytest.raises(ValueError, match="name='video_folder'.*FVD"):
        settings_for(folder)
    with pytest.raises(ValueError, match="num_objects"):
        settings_for(TINY_SHAPE, num_objects=(1, 9))
    with pytest.raises(ValueError, match="steps must be >= 1"):
        settings_for(TINY_SHAPE, steps=0)


def test_settings_from_data_config_shape_and_source_agree():
    data = config_dict.ConfigDict(
        {"name": "bouncing_shapes", "num_frames": 8, "height": 32, "width": 32, "antialias": True}
    )
    from_cfg = settings_for(data)
    from_source = settings_for(BouncingShapes(num_frames=8, height=32, width=32, antialias=True))
    assert from_cfg == from_source
    assert from_cfg.clip_shape == (8, 32, 32, 3) and from_cfg.antialias
    # Scene settings change the cache key; equal settings written differently do not.
    assert from_cfg.cache_key() != settings_for((8, 32, 32, 3)).cache_key()
    assert settings_for((8, 32, 32, 3), widths=[32, 64, 64]).cache_key() == (
        settings_for((8, 32, 32, 3), widths=(32, 64, 64)).cache_key()
    )


def test_corrupt_or_mismatched_cache_files_are_rejected(tiny, tmp_path):
    _, features = tiny
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_feature_params(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not a shapes feature params file"):
        load_feature_params(tmp_path / "other.npz")
    with pytest.raises(ValueError, match="not the requested"):
        load_feature_params(features.path, settings_for(TINY_SHAPE, **{**TINY_SETTINGS, "seed": 9}))
    # Params that do not fit the network of the stored settings.
    flat = _flat(features.params)
    flat["feature/kernel"] = flat["feature/kernel"][:, :3]
    from flax import traverse_util

    broken = ShapesFeatures(features.settings, traverse_util.unflatten_dict(flat, sep="/"), {})
    shapes_features.save_feature_params(tmp_path / "broken.npz", broken)
    with pytest.raises(ValueError, match="feature/kernel"):
        load_feature_params(tmp_path / "broken.npz")
    # A file of another format version is not read.
    with np.load(features.path) as data:
        arrays = dict(data)
    stored = json.loads(str(arrays["settings_json"]))
    arrays["settings_json"] = np.array(json.dumps({**stored, "format_version": 0}))
    np.savez(tmp_path / "old.npz", **arrays)
    with pytest.raises(ValueError, match="format 0"):
        load_feature_params(tmp_path / "old.npz")


@pytest.mark.slow
def test_main_job_network_orders_the_calibration_sets(tmp_path_factory):
    """The main job's data config with the default settings (2-3 minutes of training)."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parents[1] / "experiments" / "configs" / "bouncing_shapes.py"
    spec = importlib.util.spec_from_file_location("main_job_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    features = get_feature_params(tmp_path_factory.mktemp("full"), module.get_config().data)
    assert isinstance(features.settings, FeatureNetSettings)
    assert features.heldout["count_accuracy"] > 0.85
    assert features.heldout["colour_label_accuracy"] > 0.9
    distances = calibration_distances(features, num_clips=512)
    values = [distances[name] for name in shapes_fd.CALIBRATION_SETS]
    assert all(a < b for a, b in zip(values, values[1:])), distances
