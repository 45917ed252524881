"""bf16 mixed precision (`g.dtype = d.dtype = "bfloat16"`) in every model family.

Convolutions and matrix products run in bf16; parameters, optimiser state, losses, penalties and
the EMA stay float32. bf16 keeps 8 mantissa bits, so a bf16 step is not the float32 step: these
tests bound how far its first-step losses may drift from float32's from the same state, batch
and key, and check that what must stay float32 does and that gradient penalties stay finite.
"""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_main_job_marks, run_main_job

from gan_jax import build, config, train
from gan_jax.multiseed import train_seed

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "configs"

# First-step losses and penalties of bf16 against float32, relative. Measured on this project's
# CPU (the "fast" route) from the same state, batch and key: losses within 0.03 % in all four
# families. Each penalty alone: R1 0.7 %, GP 0.2 % and D's total loss 0.15 % on the 2-D MLP,
# R1 / R2 0.25 % on the R3GAN D; R2 on the MLP 9.4 %: its fake points are bf16 outputs of G,
# and the squared gradient norm of a small leaky-ReLU D moves with the points it is taken at.
LOSS_RTOL = 0.005
PENALTY_RTOL = 0.2


def _tiny(model: str):
    if model == "mlp":
        cfg = train.default_config(model="mlp", data="ring")
        cfg.g.hidden = cfg.d.hidden = 16
        return cfg
    cfg = train.default_config(model=model, data="bouncing_shapes")
    cfg.data.num_frames, cfg.data.height, cfg.data.width = 2, 8, 8
    cfg.data.size_range = (2.0, 4.0)
    if model == "video_dcgan":
        cfg.g.z_dim = 8
        for net in (cfg.g, cfg.d):
            net.base_width, net.depth = 4, 2
    elif model == "mocogan":
        cfg.data.num_frames = 4
        cfg.g.content_dim, cfg.g.motion_dim, cfg.g.noise_dim = 6, 4, 3
        cfg.g.base_width, cfg.g.depth = 4, 1
        cfg.d.base_width, cfg.d.depth, cfg.d.image_stride = 4, 2, 2
    elif model == "r3gan":
        cfg.g.z_dim = 8
        for net in (cfg.g, cfg.d):
            net.widths, net.group_size = (8, 8), 4
        cfg.g.blocks, cfg.d.blocks = (1, 0), (0, 1)
    return cfg


def _first_step(cfg, dtype: str):
    """Metrics and state after one step of `cfg` with both nets' dtype set to `dtype`."""
    cfg = cfg.copy_and_resolve_references()
    cfg.batch_size = 8
    cfg.g.dtype = cfg.d.dtype = dtype
    spec = train.validate(cfg)
    run = build.build(cfg, spec)
    state = jax.jit(build.init_fn(run))(jax.random.key(0))
    rng = np.random.default_rng(0)
    batch = {
        key: rng.uniform(-1, 1, array.shape).astype(array.dtype)
        for key, array in spec.example_batch(spec.batch_size).items()
    }
    state, metrics = jax.jit(build.step_fn(run))(state, batch, jax.random.key(1))
    return jax.device_get(metrics), jax.device_get(state)


@pytest.mark.parametrize(
    "model",
    [
        "mlp",
        # 15 to 26 s each, nearly all compilation: the default suite keeps to its 10 minutes.
        # The video nets' bf16 convolutions: tests/test_ops_conv.py (CPU), test_gpu_step.py.
        pytest.param("video_dcgan", marks=pytest.mark.slow),
        pytest.param("mocogan", marks=pytest.mark.slow),
        pytest.param("r3gan", marks=pytest.mark.slow),
    ],
)
def test_bf16_step_stays_near_float32_and_keeps_float32_state(model):
    cfg = _tiny(model)
    f32_metrics, _ = _first_step(cfg, "float32")
    bf16_metrics, bf16_state = _first_step(cfg, "bfloat16")
    losses = [name for name in f32_metrics if name.endswith("loss")]
    assert "d/loss" in losses and "g/loss" in losses, losses
    for name in losses:
        np.testing.assert_allclose(
            bf16_metrics[name], f32_metrics[name], rtol=LOSS_RTOL, err_msg=f"{model}: {name}"
        )
    # The setting reached the nets: bf16 products round differently from float32 ones.
    assert any(bf16_metrics[name] != f32_metrics[name] for name in losses)
    assert all(np.isfinite(value) for value in bf16_metrics.values()), bf16_metrics
    # Losses and every other metric are computed in float32.
    assert {np.asarray(value).dtype for value in bf16_metrics.values()} == {np.dtype("float32")}
    # Parameters, optimiser state and EMA stay float32 in a bf16 run.
    for part in ("g_params", "d_params", "g_ema", "g_opt", "d_opt", "g_stats", "d_stats"):
        dtypes = {leaf.dtype for leaf in jax.tree.leaves(getattr(bf16_state, part))}
        assert not dtypes & {jnp.dtype(jnp.bfloat16)}, (part, dtypes)


@pytest.mark.parametrize(
    "model",
    ["mlp", pytest.param("r3gan", marks=pytest.mark.slow)],  # r3gan: 30 s, a conv D
)
def test_gradient_penalties_stay_finite_in_bf16(model):
    """R1, R2 and WGAN-GP take gradients of D's logits with respect to its bf16-cast inputs:
    each penalty and D's total loss stay finite and near float32's. All three in one run (the
    Wasserstein loss), so that each dtype compiles once."""
    cfg = _tiny(model)
    cfg.loss.name = "wasserstein"
    penalties = ("r1", "r2", "gp")
    for penalty in penalties:
        setattr(cfg.penalty, penalty, 1.0)
    f32_metrics, _ = _first_step(cfg, "float32")
    bf16_metrics, _ = _first_step(cfg, "bfloat16")
    for name in [*(f"d/{penalty}" for penalty in penalties), "d/total_loss"]:
        assert np.isfinite(bf16_metrics[name]), (name, bf16_metrics[name])
        np.testing.assert_allclose(
            bf16_metrics[name], f32_metrics[name], rtol=PENALTY_RTOL, err_msg=name
        )


BF16 = {"g.dtype": "bfloat16", "d.dtype": "bfloat16"}


def _config_file(name: str, **overrides):
    cfg = config.load_config_file(CONFIGS / name)
    return config.apply_overrides(cfg, [(k, repr(v)) for k, v in overrides.items()])


@pytest.mark.slow
def test_the_ring_reaches_its_targets_in_bf16():
    """tests/test_toy2d.py's targets for the 2-D ring, with both MLPs in bf16."""
    _, result = train_seed(_config_file("ring.py", **BF16), seed=0)
    assert result["modes"] >= 7, result
    assert result["hq_percent"] >= 80.0, result


@pytest.mark.slow
def test_main_job_recipe_learns_moving_shapes_in_bf16(tmp_path):
    """The main job (experiments/configs/bouncing_shapes.py) with both nets in bf16 reaches the
    marks tests/test_train.py sets for it in float32 on at least two of seeds 0, 1 and 2: one GAN
    run can settle in a worse place whatever its precision, and which one does moves with the CPU's
    rounding. On an AMD EPYC with AVX-512 (no AMX) bf16 seeds 0 / 1 / 2 ended at FSD 6.78 / 2.36 /
    2.74, passing the physics check 90.8 / 91.0 / 91.4 %, off-palette 11.3 / 3.9 / 6.1 % (float32 on
    that CPU: FSD 2.65 / 4.07 / 2.22, 87.7 / 85.5 / 84.0 %, 9.5 / 8.6 / 9.3 %): seed 0 missed only
    the FSD mark. (In all six runs 0.7-1.8 % of the clips are drawn on a coloured background instead
    of black, float32 more often than bf16.) Seed 2's draw of real clips held the one real clip in
    about 30000 that the physics check misread until ``shapes_physics._whole_shapes`` was fixed
    (real_pass 0.998). The test ran seed 0 alone before, and its figures below are seed 0's.

    Measured on an AMD EPYC (2 cores) with an early recipe: FSD 11.0 against float32's
    10.4, off-palette pixels 77 % (86 %), frozen objects 24 % (31 %), mean
    gap 0.13 (0.17). Before the CPU route's Winograd transforms ran in float32, bf16 ended at
    FSD 41. Without AMX, bf16 is slower on a CPU (benchmarks/train_step.py; README).

    On an Intel Xeon with AMX the recipe before the minibatch-std channel (d.minibatch_std)
    failed these marks in every precision, float32 included: FSD 30.7 (float32), 18.9 (bf16,
    products on AMX: gan_jax/ops/products.py), 45.5 (bf16 with GAN_JAX_BF16_PRODUCTS=0). With
    the channel and the standing statistics the float32 command passes there on three seeds
    (FSD 13.4 / 9.6 / 12.2), but bf16 (AMX products), run as a user runs it
    (`conftest.run_main_job`, one CPU device), failed: FSD 34.1 / 26.7 / 16.2 for seeds 0 / 1 /
    2, off-palette 89 / 84 / 78 % (13.3 / 9.5 / 44.9 without the AMX products). With lazy R1 in
    the recipe (every 32nd D update) bf16 passes on the Xeon over those seeds: FSD 9.9 / 14.6 /
    13.2, off-palette 67 / 72 / 70 % (float32: 15.2 / 15.0 / 10.0). With Adam at betas (0, 0.99)
    and 1e-3: FSD 10.1 / 9.7 / 8.0, off-palette 42 / 39 / 40 % (float32: 9.8 / 7.1 / 8.4, 40 / 38
    / 39 %); with G's output gain of 6 as well: 8.8 / 7.1 / 7.9, 29 / 34 / 31 % (float32: 6.2 /
    7.1 / 6.9, 28 / 30 / 31 %). With G drawing sprites (the main job since; marks raised to FSD
    under 8 and a tenth of the clips passing the physics check), seed 0 on the Xeon: FSD 3.3,
    28.7 % passing, off-palette 20 % (float32: 3.4, 30.5 %, 20 %). With the sprites gliding off
    the walls in rounded colours (marks raised to FSD under 6 and two fifths passing), seed 0:
    FSD 4.4, 65.8 % passing, off-palette 19 % (float32: 3.5, 63.3 %, 18 %). With each clip's
    sprites in different colours (g.distinct_colours, g.colour_prior), seed 0: FSD 2.7, 92.6 %
    passing, off-palette 8 % (float32: 4.5, 91.4 %, 12 %)."""
    steps = _config_file("bouncing_shapes.py").steps
    met, missed = [], {}
    for seed in (0, 1, 2):  # until two seeds have met the marks, or two have missed them
        overrides = [f"--config.{key}={value}" for key, value in {**BF16, "seed": seed}.items()]
        results = run_main_job(tmp_path / f"seed{seed}", *overrides)
        try:
            assert_main_job_marks(results, steps)
            met.append(seed)
        except AssertionError as err:
            missed[seed] = str(err)
        if len(met) == 2 or len(missed) == 2:
            break
    assert len(met) == 2, f"seeds {sorted(missed)} missed the marks: {missed}"
