"""Video prediction: the objective, the predictor G, the prediction metrics, a run end to end."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from ml_collections import config_dict

from gan_jax import build
from gan_jax.config import ConfigError
from gan_jax.data.bouncing_shapes import BouncingShapes
from gan_jax.main import main
from gan_jax.metrics import prediction
from gan_jax.models.predictor import PredictionGenerator
from gan_jax.models.video_dcgan import VideoDiscriminator
from gan_jax.objectives import video_prediction
from gan_jax.objectives.video_prediction import VideoPrediction, gradient_difference
from gan_jax.state import create_state
from gan_jax.train import default_config
from gan_jax.train_step import StepConfig, make_train_step

CLIP = (4, 8, 8, 3)  # (T, H, W, C): 2 context frames, 2 future frames


def _models():
    g = PredictionGenerator(clip_shape=CLIP, z_dim=4, noise_width=2, base_width=4, depth=2)
    d = VideoDiscriminator(clip_shape=CLIP, base_width=4, depth=1)
    return g, d


def _clips(n=2, seed=0, size=8):
    source = BouncingShapes(
        num_frames=4, height=size, width=size, size_range=(3.0, size / 2), seed=seed
    )
    return np.stack([source[i]["video"] for i in range(n)])


def test_objective_splits_judges_context_then_future_and_shows_the_whole_clip():
    objective = VideoPrediction(context=3, num_frames=5)
    clips = jnp.arange(2 * 5 * 2 * 2 * 1, dtype=jnp.float32).reshape(2, 5, 2, 2, 1)
    context, future = objective.split({"video": clips, "label": jnp.zeros(2, jnp.int32)})
    assert context.shape == (2, 3, 2, 2, 1) and future.shape == (2, 2, 2, 2, 1)
    assert objective.future == 2
    assert objective.g_inputs(context) is context
    fake = -future
    x, d_cond = objective.d_inputs(fake, context)
    assert d_cond is None
    np.testing.assert_array_equal(x[:, :3], clips[:, :3])
    np.testing.assert_array_equal(x[:, 3:], -clips[:, 3:])
    np.testing.assert_array_equal(objective.clip(fake, context), x)
    with pytest.raises(ValueError, match=r"clips must be \[N, 5, H, W, C\]"):
        objective.split({"video": clips[:, :4]})
    with pytest.raises(ValueError, match="context frames of real clips"):
        objective.sample_cond(jax.random.key(0), 2)


def test_g_terms_combine_as_configured():
    fake = jnp.zeros((1, 1, 3, 3, 1)).at[0, 0, 1, 1, 0].set(1.0)
    real = jnp.zeros((1, 1, 3, 3, 1))
    mse = 1.0 / 9.0
    # Gradient differences: the dot has |d| = 1 on 2 of 6 vertical and 2 of 6 horizontal pairs.
    gdl = 2 / 6 + 2 / 6
    assert float(gradient_difference(fake, real)) == pytest.approx(gdl)
    terms = VideoPrediction(2, 3, mse_weight=10.0, gdl_weight=0.5).g_terms(fake, real, None)
    assert {k: float(v) for k, v in terms.items()} == pytest.approx(
        {"mse": 10 * mse, "gdl": 0.5 * gdl}
    )
    assert VideoPrediction(2, 3, mse_weight=0.0).g_terms(fake, real, None) == {}


def _spec(num_frames=4, channels=3):
    return build.data_spec(
        config_dict.ConfigDict(
            {"name": "bouncing_shapes", "num_frames": num_frames, "height": 16, "width": 16,
             "channels": channels}
        ),
        2,
    )  # fmt: skip


@pytest.mark.parametrize(
    "changes, error",
    [
        ({"context": 8}, "objective.context=8 must be smaller than data.num_frames=8"),
        ({"context": 0}, "objective.context"),
        ({"adversarial_weight": 0.0, "mse_weight": 0.0}, "G would learn nothing"),
        ({"mse_weight": -1.0}, "objective.mse_weight"),
        ({"lambda": 1.0}, "objective.lambda"),
    ],
)
def test_bad_objective_settings_name_the_key(changes, error):
    cfg = video_prediction.default_config()
    with cfg.unlocked():
        cfg.update(changes)
    with pytest.raises(ConfigError, match=error):
        video_prediction.validate(cfg, _spec(8))


@pytest.fixture(scope="module")
def regression():
    """`(g, state, objective, metrics of one step)` of the regression baseline (adversarial
    weight 0, MSE weight 10) on tiny clips; the nets initialised once for the tests below."""
    g, d = _models()
    objective = VideoPrediction(2, 4, adversarial_weight=0.0, mse_weight=10.0)
    tx = optax.sgd(1e-3)
    batch = {"video": jnp.asarray(_clips())}
    init = jax.jit(
        lambda key: create_state(key, g, d, tx, tx, objective=objective, example_batch=batch)
    )
    state = init(jax.random.key(0))
    step = jax.jit(make_train_step(g, d, tx, tx, StepConfig(), objective=objective))
    return g, state, objective, jax.device_get(step(state, batch, jax.random.key(3))[1])


def test_the_context_reaches_g_and_noise_changes_the_future(regression):
    g, state, objective, _ = regression
    context, _ = objective.split({"video": jnp.asarray(_clips())})
    variables = {"params": state.g_params, **state.g_stats}
    apply = jax.jit(lambda latents, ctx: g.apply(variables, latents, ctx, train=False))
    z = {"z": jax.random.normal(jax.random.key(1), (2, 4))}
    future = apply(z, context)
    assert future.shape == (2, 2, 8, 8, 3)
    assert float(jnp.abs(future).max()) <= 1.0
    grad = jax.jit(jax.grad(lambda ctx: jnp.sum(apply(z, ctx))))(context)
    # Every context frame reaches the prediction (not just the last one).
    assert all(float(jnp.abs(grad[:, t]).sum()) > 0 for t in range(2))
    other = {"z": jax.random.normal(jax.random.key(2), (2, 4))}
    assert not np.allclose(apply(other, context), future)
    with pytest.raises(ValueError, match="got none; train it with objective.name"):
        g.apply(variables, z, None, train=False)
    with pytest.raises(ValueError, match="context must leave at least one frame"):
        g.apply(variables, z, jnp.zeros((2, 4, 8, 8, 3)), train=False)


def test_the_regression_baseline_trains_g_on_the_mse_alone(regression):
    metrics = regression[3]
    # G's loss is the weighted MSE alone; the adversarial loss is still logged (D trains).
    assert metrics["g/total_loss"] == pytest.approx(metrics["g/mse"], rel=1e-6)
    assert metrics["g/loss"] > 0 and metrics["g/mse"] > 0
    # (Both terms at once: test_predict_cli.py's run, whose total is their sum.)


def test_psnr_and_ssim_match_hand_computed_values():
    # [-1, 1] -> [0, 1]: a frame off by 0.2 everywhere has MSE 0.01 on [0, 1], PSNR 20 dB.
    target = np.zeros((1, 2, 12, 12, 1), np.float32)
    predicted = target.copy()
    predicted[:, 0] += 0.2
    values = np.asarray(prediction.psnr(predicted, target))
    assert values[0, 0] == pytest.approx(20.0, abs=1e-4)
    assert values[0, 1] == prediction.MAX_PSNR  # identical frame: capped, not infinite

    # SSIM on an 11 x 11 frame: one window, the Gaussian-weighted statistics by hand.
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (1, 1, 11, 11, 1)).astype(np.float32)
    b = np.clip(a + rng.normal(0, 0.3, a.shape), -1, 1).astype(np.float32)
    x, y = (a[0, 0, :, :, 0] + 1) / 2, (b[0, 0, :, :, 0] + 1) / 2
    g1 = np.exp(-0.5 * (np.arange(11) - 5.0) ** 2 / 1.5**2)
    w = np.outer(g1, g1) / np.outer(g1, g1).sum()
    mx, my = (w * x).sum(), (w * y).sum()
    vx, vy = (w * x * x).sum() - mx**2, (w * y * y).sum() - my**2
    cxy = (w * x * y).sum() - mx * my
    c1, c2 = 0.01**2, 0.03**2
    expected = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    assert float(prediction.ssim(a, b)[0, 0]) == pytest.approx(expected, abs=1e-5)
    assert float(prediction.ssim(a, a)[0, 0]) == pytest.approx(1.0, abs=1e-6)


def test_colour_centroids_are_the_ground_truth_positions():
    source = BouncingShapes(num_frames=3, height=32, width=32, num_objects=(1, 3), seed=5)
    errors = []
    for i in range(40):
        example = source[i]
        centroids, _ = prediction.colour_centroids(example["video"][None])
        mask = example["object_mask"]
        positions, sizes = example["positions"][:, mask], example["sizes"][mask]
        for j, colour in enumerate(example["colour_ids"][mask]):
            # Frames where no other object's box reaches this one's: nothing hides it.
            gap = np.abs(positions - positions[:, j : j + 1]).max(-1)  # [T, objects]
            alone = np.all((gap >= (sizes + sizes[j]) / 2) | (np.arange(len(sizes)) == j), 1)
            found = centroids[0, alone, colour] - positions[alone, j]
            errors.extend(np.linalg.norm(found, axis=-1))
    assert len(errors) > 30
    assert float(np.mean(errors)) < 0.3 and float(np.max(errors)) < 0.75


def test_centroid_errors_measure_a_shift_and_skip_missing_objects():
    clips = _clips(2, seed=3, size=16)
    shifted = np.full_like(clips, -1.0)
    shifted[:, :, :, 2:] = clips[:, :, :, :-2]  # every object 2 px to the right
    distance, scored = prediction.centroid_errors(shifted, clips)
    whole = np.isfinite(distance)
    assert scored.sum() > 0 and whole.sum() > 0
    # Objects away from the right edge moved exactly 2 px.
    assert np.nanmedian(distance) == pytest.approx(2.0, abs=1e-6)
    empty = np.full_like(clips, -1.0)
    distance, scored = prediction.centroid_errors(empty, clips)
    assert scored.sum() > 0 and not np.isfinite(distance).any()


def test_prediction_metric_asks_for_a_prediction_run(tmp_path, capsys):
    cfg = default_config()
    cfg.eval.metrics = ("prediction",)
    config = tmp_path / "config.json"
    config.write_text(cfg.to_json())
    assert main(["train", "--config", str(config), "--workdir", str(tmp_path / "run")]) == 2
    assert "train with objective.name='video_prediction'" in capsys.readouterr().err
