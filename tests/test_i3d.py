"""Tests for the Flax I3D, its weight files, the PyTorch converter and the FVD computer.

The numerical check builds the PyTorch reference (tests/i3d_torch_reference.py, the structure of
piergiaj/pytorch-i3d) with random weights, converts it through the CLI and compares features.
Inputs are tiny (tens of pixels) with a 2x2x2 final average pool so it stays fast on CPU; the
real 16x224x224 check is marked slow.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from gan_jax.metrics.fvd import FVDComputer, fvd_from_features
from gan_jax.metrics.i3d import (
    I3D,
    check_i3d_variables,
    expected_i3d_shapes,
    load_i3d_params,
    preprocess_for_i3d,
    same_padding,
    save_i3d_params,
)
from gan_jax.metrics.i3d_convert import convert_torch_state_dict, load_torch_state_dict, main

TINY_WINDOW = (2, 2, 2)


def random_variables(seed: int = 0) -> dict:
    """I3D variables with small random weights and positive variances (no costly jitted init)."""
    rng = np.random.default_rng(seed)
    flat = {}
    for name, shape in expected_i3d_shapes().items():
        if name.endswith("/var"):
            flat[name] = rng.uniform(0.5, 2.0, size=shape).astype(np.float32)
        elif name.endswith("/kernel"):
            fan_in = np.prod(shape[:-1])
            flat[name] = (rng.normal(size=shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        else:
            flat[name] = (rng.normal(size=shape) * 0.1).astype(np.float32)
    return traverse_util.unflatten_dict(flat, sep="/")


def torch_layout_state_dict(variables) -> dict:
    """The inverse of the converter, in numpy: Flax variables -> port state-dict names/layouts."""
    leaf_names = {"kernel": "weight", "scale": "weight", "mean": "running_mean"}
    leaf_names |= {"var": "running_var", "bias": "bias"}
    state_dict = {}
    for (collection, *path, leaf), value in traverse_util.flatten_dict(variables).items():
        assert collection in ("params", "batch_stats")
        if leaf == "kernel":
            value = np.transpose(value, (4, 3, 0, 1, 2))
        state_dict[".".join([*path, leaf_names[leaf]])] = value
    return state_dict


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("kernel", [1, 2, 3, 7])
def test_same_padding_is_tensorflow_same(kernel, stride):
    for size in range(1, 20):
        want = jax.lax.padtype_to_pads((size,), (kernel,), (stride,), "SAME")[0]
        assert same_padding(size, kernel, stride) == tuple(want), size


def test_variable_names_and_count():
    shapes = expected_i3d_shapes()
    assert shapes["params/Conv3d_1a_7x7/conv3d/kernel"] == (7, 7, 7, 3, 64)
    assert shapes["params/Mixed_5c/b1b/conv3d/kernel"] == (3, 3, 3, 192, 384)
    assert shapes["batch_stats/Mixed_4f/b3b/bn/var"] == (128,)
    assert shapes["params/logits/conv3d/bias"] == (400,)
    # 57 conv + BN units (3 stem + 9 blocks x 6) of 5 variables each, plus the logits conv
    # (kernel, bias). The port's state dict has 57 * 6 + 2 = 344 tensors (num_batches_tracked).
    assert len(shapes) == 57 * 5 + 2
    num_params = sum(np.prod(s) for name, s in shapes.items() if name.startswith("params/"))
    assert num_params == 12_697_264


def test_output_shape_and_input_size_errors():
    variables = random_variables()
    tiny = I3D(avg_pool_window=TINY_WINDOW)
    clips = jax.ShapeDtypeStruct((3, 9, 64, 48, 3), jnp.float32)
    assert jax.eval_shape(tiny.apply, variables, clips).shape == (3, 400)
    real = I3D()
    # Smallest input the real network accepts, and its FVD input.
    for shape in [(1, 9, 193, 193, 3), (2, 16, 224, 224, 3)]:
        out = jax.eval_shape(real.apply, variables, jax.ShapeDtypeStruct(shape, jnp.float32))
        assert out.shape == (shape[0], 400)
    for shape, message in [
        ((1, 8, 224, 224, 3), "too small"),
        ((1, 16, 192, 224, 3), "too small"),
        ((1, 16, 256, 256, 3), "too large"),
        ((1, 16, 224, 224, 1), "3 channels"),
    ]:
        with pytest.raises(ValueError, match=message):
            jax.eval_shape(real.apply, variables, jax.ShapeDtypeStruct(shape, jnp.float32))
    with pytest.raises(ValueError, match="uint8.*preprocess_for_i3d"):
        jax.eval_shape(real.apply, variables, jax.ShapeDtypeStruct((1, 16, 224, 224, 3), jnp.uint8))


def test_preprocess_for_i3d():
    pixels = np.array([0, 255, 51], np.uint8)
    clips = np.broadcast_to(pixels, (2, 20, 8, 6, 3))
    out = preprocess_for_i3d(clips, num_frames=16, size=32)
    assert out.shape == (2, 16, 32, 32, 3) and out.dtype == jnp.float32
    # FVD's 2 * x / 255 - 1; a constant frame stays constant under bilinear resizing.
    np.testing.assert_allclose(out[0, 3, 5, 7], [-1.0, 1.0, -0.6], atol=1e-6)
    # Only the first num_frames are kept.
    ramp = (
        np.arange(20, dtype=np.float32)[None, :, None, None, None] / 20 * np.ones((1, 20, 4, 4, 3))
    )
    np.testing.assert_array_equal(preprocess_for_i3d(ramp, 16, 4), ramp[:, :16])
    assert preprocess_for_i3d(ramp, None, 4).shape[1] == 20
    with pytest.raises(ValueError, match="4 frames but num_frames=16"):
        preprocess_for_i3d(np.zeros((1, 4, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="dtype int32"):
        preprocess_for_i3d(np.zeros((1, 16, 8, 8, 3), np.int32))
    with pytest.raises(ValueError, match=r"\[N, T, H, W, 3\]"):
        preprocess_for_i3d(np.zeros((1, 16, 8, 8), np.uint8))


def test_save_load_round_trip(tmp_path):
    variables = random_variables(1)
    path = tmp_path / "i3d"  # no .npz suffix: saved and loaded under exactly this path
    save_i3d_params(variables, path)
    loaded = load_i3d_params(path)
    flat_in = traverse_util.flatten_dict(variables, sep="/")
    flat_out = traverse_util.flatten_dict(loaded, sep="/")
    assert flat_in.keys() == flat_out.keys()
    for name, value in flat_in.items():
        assert isinstance(flat_out[name], jax.Array)
        np.testing.assert_array_equal(flat_out[name], value)


def test_load_errors_list_missing_unexpected_and_mismatched(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere\.npz.*i3d_convert"):
        load_i3d_params(tmp_path / "nowhere.npz")
    flat = traverse_util.flatten_dict(random_variables(2), sep="/")
    del flat["params/Mixed_4d/b2b/bn/scale"]
    del flat["batch_stats/Conv3d_1a_7x7/bn/mean"]
    flat["params/extra/kernel"] = np.zeros(3, np.float32)
    flat["params/logits/conv3d/bias"] = np.zeros(157, np.float32)
    path = tmp_path / "broken.npz"
    np.savez(path, **flat)
    with pytest.raises(ValueError) as error:
        load_i3d_params(path)
    message = str(error.value)
    assert "broken.npz" in message
    assert "2 missing keys" in message
    assert "params/Mixed_4d/b2b/bn/scale" in message
    assert "batch_stats/Conv3d_1a_7x7/bn/mean" in message
    assert "unexpected keys: ['params/extra/kernel']" in message
    assert "params/logits/conv3d/bias: (157,) (expected (400,))" in message
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.npz"):
        load_i3d_params(tmp_path / "junk.npz")


def test_convert_without_torch_maps_names_and_layouts():
    variables = random_variables(3)
    state_dict = torch_layout_state_dict(variables)
    # Key names and conv layout of the port, e.g. weight [O, I, T, H, W].
    assert state_dict["Conv3d_1a_7x7.conv3d.weight"].shape == (64, 3, 7, 7, 7)
    assert "Mixed_3b.b1b.bn.running_var" in state_dict
    # A DataParallel checkpoint ("module." prefix) with BN bookkeeping converts the same.
    wrapped = {f"module.{key}": value for key, value in state_dict.items()}
    wrapped["module.Mixed_3b.b0.bn.num_batches_tracked"] = np.int64(7)
    for source in (state_dict, wrapped):
        converted = convert_torch_state_dict(source)
        check_i3d_variables(converted)
        for name, value in traverse_util.flatten_dict(variables, sep="/").items():
            got = traverse_util.flatten_dict(converted, sep="/")[name]
            np.testing.assert_array_equal(got, value)
    # Element check of the transpose: weight[o, i, t, h, w] == kernel[t, h, w, i, o].
    weight = state_dict["Mixed_4e.b2b.conv3d.weight"]
    kernel = variables["params"]["Mixed_4e"]["b2b"]["conv3d"]["kernel"]
    assert weight[5, 7, 0, 1, 2] == kernel[0, 1, 2, 7, 5]


def test_convert_errors():
    state_dict = torch_layout_state_dict(random_variables(4))
    with pytest.raises(ValueError, match=r"not part of .*\['Mixed_3b.b0.bn.gamma'\]"):
        convert_torch_state_dict(state_dict | {"Mixed_3b.b0.bn.gamma": np.zeros(64)})
    missing = dict(state_dict)
    del missing["logits.conv3d.weight"]
    with pytest.raises(ValueError, match=r"missing keys: \['params/logits/conv3d/kernel'\]"):
        convert_torch_state_dict(missing)
    with pytest.raises(ValueError, match="Conv3d weight must be"):
        convert_torch_state_dict(state_dict | {"Conv3d_2b_1x1.conv3d.weight": np.zeros((64, 64))})


def test_cli_without_torch_says_pip_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(ImportError, match="pip install torch"):
        load_torch_state_dict(tmp_path / "in.pt")
    assert main([str(tmp_path / "in.pt"), str(tmp_path / "out.npz")]) == 1
    assert "pip install torch" in capsys.readouterr().err


def test_fvd_computer_streams_batches():
    variables = random_variables(5)
    computer = FVDComputer(
        variables, batch_size=2, num_frames=9, size=40, model=I3D(avg_pool_window=TINY_WINDOW)
    )
    rng = np.random.default_rng(5)
    real = rng.integers(0, 256, size=(3, 10, 40, 36, 3), dtype=np.uint8)
    fake = np.clip(real.astype(np.int32) + rng.integers(-60, 60, size=real.shape), 0, 255)
    fake = fake.astype(np.uint8)

    # 3 clips run as batches of 2 and 1 (zero-padded); a clip's features must not depend on
    # its batch neighbours or position.
    real_features = computer.features(real)
    assert real_features.shape == (3, 400)
    np.testing.assert_allclose(computer.features(real[1:]), real_features[1:], rtol=1e-5, atol=1e-5)
    fake_features = computer.features(fake)

    computer.add_real(real[:2])
    computer.add_real(real[2:])
    computer.add_fake(fake)
    want = fvd_from_features(real_features, fake_features)
    assert want > 0
    assert computer.compute() == pytest.approx(want, rel=1e-5)
    stats = computer.real_stats
    assert stats.count == 3
    np.testing.assert_allclose(stats.mean, real_features.mean(axis=0), rtol=1e-6, atol=1e-6)

    computer.reset_fake()
    with pytest.raises(ValueError, match="0 generated clips"):
        computer.compute()
    computer.add_fake(real)
    assert abs(computer.compute()) < 1e-6 * np.trace(stats.cov)


def test_fvd_computer_rejects_out_of_range_floats():
    computer = FVDComputer(random_variables(6), batch_size=2, num_frames=9, size=64)
    with pytest.raises(ValueError, match=r"\[-1, 1\] but span \[0, 255\]"):
        computer.add_real(np.linspace(0, 255, 2 * 9 * 8 * 8 * 3).reshape(2, 9, 8, 8, 3))
    with pytest.raises(ValueError, match=r"\[N, T, H, W, C\], got shape \(2, 9, 8, 8\)"):
        computer.add_real(np.zeros((2, 9, 8, 8), np.uint8))
    with pytest.raises(ValueError, match=r"RGB clips.*repeat a grey channel"):
        computer.add_real(np.zeros((2, 9, 8, 8, 1), np.uint8))


def _compare_with_torch(tmp_path, clip_shape, avg_pool_window):
    """Max |Flax - PyTorch| feature difference relative to max |PyTorch feature|."""
    torch = pytest.importorskip("torch")
    from i3d_torch_reference import fvd_features, random_reference

    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    calibration = rng.uniform(-1, 1, size=(1, *clip_shape[1:])).astype(np.float32)
    reference = random_reference(0, torch.from_numpy(calibration), avg_pool_window)
    checkpoint = tmp_path / "i3d.pt"
    torch.save(reference.state_dict(), checkpoint)
    assert main([str(checkpoint), str(tmp_path / "i3d.npz")]) == 0
    variables = load_i3d_params(tmp_path / "i3d.npz")

    clips = rng.uniform(-1, 1, size=clip_shape).astype(np.float32)
    want = fvd_features(reference, torch.from_numpy(clips)).numpy()
    model = I3D(avg_pool_window=avg_pool_window)
    got = np.asarray(jax.jit(model.apply)(variables, jnp.asarray(clips)))
    assert got.shape == want.shape == (clip_shape[0], 400)
    assert np.std(want) > 1.0  # the random network must produce non-degenerate features
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def test_matches_pytorch_reference(tmp_path):
    # 17 frames -> 2 time steps after the pool (exercises the time average); 60x52 is not
    # square and hits both branches of the "SAME" padding rule (odd and even sizes).
    relative_error = _compare_with_torch(tmp_path, (2, 17, 60, 52, 3), TINY_WINDOW)
    assert relative_error < 1e-4


@pytest.mark.slow
def test_matches_pytorch_reference_full_size(tmp_path):
    relative_error = _compare_with_torch(tmp_path, (1, 16, 224, 224, 3), (2, 7, 7))
    assert relative_error < 1e-4
