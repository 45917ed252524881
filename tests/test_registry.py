"""Parts by name: a model family, a loss and a penalty defined in this test module train through
`gan-jax train`'s own code path, then sample and evaluate, without editing any core file.

The toy G takes a pytree of latents (a content vector and per-frame motion codes) and the toy D
returns two heads (`image` per frame, `video` per clip), so the whole contract is exercised."""

import json
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import Labelled
from ml_collections import config_dict

from gan_jax import build, losses, models
from gan_jax.config import Checker
from gan_jax.losses import LOSSES, PENALTIES, Loss, Penalty
from gan_jax.main import main
from gan_jax.metric_writer import read_metrics
from gan_jax.metrics.registry import VIDEO, Metric
from gan_jax.objectives import OBJECTIVES
from gan_jax.registry import Registry, UnknownPartError
from gan_jax.workdir import load_run


class ToyG(nn.Module):
    """content `[N, 4]` + motion `[N, T, 2]` -> clips `[N, T, H, W, C]` through one dense layer."""

    clip: tuple[int, int, int, int]

    @property
    def latent_shapes(self):
        return {"content": (4,), "motion": (self.clip[0], 2)}

    @nn.compact
    def __call__(self, latents, cond=None, train=True):
        t, h, w, c = self.clip
        content = jnp.repeat(latents["content"][:, None, :], t, axis=1)  # [N, T, 4]
        x = jnp.concatenate([content, latents["motion"]], axis=-1)  # [N, T, 6]
        if cond is not None and cond.ndim == 1:  # labels [N] from a conditional objective
            x = x + nn.Embed(8, 6, name="label_embedding")(cond)[:, None, :]
        elif cond is not None:  # context frames [N, k, H, W, C]
            context = nn.Dense(6, name="context")(cond.reshape(cond.shape[0], -1))
            x = x + context[:, None, :]
        return jnp.tanh(nn.Dense(h * w * c)(x)).reshape(-1, t, h, w, c)


class ToyD(nn.Module):
    """clips -> `{"image": [N * T], "video": [N]}`."""

    @nn.compact
    def __call__(self, x, cond=None, train=True):
        n, t = x.shape[:2]
        frames = x.reshape(n * t, -1)
        image = nn.Dense(1, name="image")(frames)[:, 0]
        video = nn.Dense(1, name="video")(x.reshape(n, -1))[:, 0]
        return {"image": image, "video": video}


class ToyFamily:
    """A model family as an object (a module with these functions works the same)."""

    @staticmethod
    def g_config():
        return config_dict.ConfigDict({"scale": 1.0})

    @staticmethod
    def d_config():
        return config_dict.ConfigDict({"scale": 1.0})

    @staticmethod
    def validate_g(g_cfg, spec):
        Checker(g_cfg, "g").number("scale", 0.0, low_open=True)

    validate_d = validate_g

    @staticmethod
    def make_generator(g_cfg, spec):
        return ToyG(clip=spec.sample_shape)

    @staticmethod
    def make_discriminator(d_cfg, spec):
        return ToyD()


class LabelledObjective:
    """The objective module's functions, as an object."""

    @staticmethod
    def default_config():
        return config_dict.ConfigDict({"name": "test_labelled"})

    @staticmethod
    def validate(objective_cfg, spec):
        if spec.num_classes is None:
            raise ValueError("objective.name='test_labelled' needs labelled data")

    @staticmethod
    def make_objective(objective_cfg, spec):
        return Labelled(spec.num_classes)


class FirstFrame(Labelled):
    """A toy prediction-like objective: G sees the clip's first frame, which only real data
    can give (`conditions_from_data`); `sample_cond` must never be used."""

    conditions_from_data = True

    def __init__(self):
        super().__init__(num_classes=0)

    def split(self, batch):
        return batch["video"][:, :1], batch["video"]

    def d_inputs(self, samples, cond):
        return samples, None

    def sample_cond(self, key, num):
        raise AssertionError("conditions of this objective come from data only")


class FirstFrameObjective(LabelledObjective):
    @staticmethod
    def validate(objective_cfg, spec):
        pass

    @staticmethod
    def make_objective(objective_cfg, spec):
        return FirstFrame()


def _toy_d_loss(real, fake):
    return jnp.mean(jnp.square(real - 1.0)) + jnp.mean(jnp.square(fake))


def _toy_g_loss(real, fake):  # reads the real logits: the step must compute them for G
    return jnp.mean(jnp.square(fake - real))


def _toy_metric(ctx):
    return {"mean_abs": float(np.abs(ctx.fake()).mean())}


TOY_METRIC = Metric("toy_metric", (VIDEO,), _toy_metric)
TOY_LOSS = Loss(_toy_d_loss, _toy_g_loss, g_needs_real=True)
TOY_PENALTY = Penalty(lambda d_fn, real, fake, noise: jnp.mean(jnp.square(d_fn(real))), 1.0)

CONFIG_TEXT = """
from gan_jax.train import default_config


def get_config():
    cfg = default_config(model="test_toy", data="bouncing_shapes")
    cfg.steps = 2
    cfg.batch_size = 8
    cfg.data.num_frames = 3
    cfg.data.height = 4
    cfg.data.width = 4
    cfg.data.size_range = (2.0, 3.0)
    cfg.data.num_threads = 1
    cfg.loss.name = "test_toy_loss"
    cfg.loss.head_weights.image = 0.5
    cfg.penalty.test_toy_penalty = 0.1
    cfg.ckpt.every = 2
    cfg.log.every = 1
    cfg.log.sample_every = 0
    cfg.log.num_samples = 2
    cfg.log.progress = False
    cfg.eval.num_samples = 8
    return cfg
"""


@pytest.fixture
def toy_parts():
    models.FAMILIES.register("test_toy", ToyFamily)
    LOSSES.register("test_toy_loss", TOY_LOSS)
    PENALTIES.register("test_toy_penalty", TOY_PENALTY)
    OBJECTIVES.register("test_labelled", LabelledObjective)
    OBJECTIVES.register("test_first_frame", FirstFrameObjective)
    yield
    OBJECTIVES.unregister("test_labelled")
    OBJECTIVES.unregister("test_first_frame")
    models.FAMILIES.unregister("test_toy")
    LOSSES.unregister("test_toy_loss")
    PENALTIES.unregister("test_toy_penalty")


def test_parts_from_a_test_module_train_sample_and_evaluate(toy_parts, tmp_path, capsys):
    config_file = tmp_path / "toy.py"
    config_file.write_text(CONFIG_TEXT)
    run = tmp_path / "run"
    assert main(["train", "--config", str(config_file), "--workdir", str(run)]) == 0
    records = read_metrics(run)
    assert [r["step"] for r in records] == [1, 2]
    last = records[-1]
    for name in ("d/loss", "d/real_acc", "d/test_toy_penalty", "g/loss"):
        for head in ("image", "video"):
            assert np.isfinite(last[f"{name}/{head}"]), f"{name}/{head}"
    np.testing.assert_allclose(
        last["d/loss"], 0.5 * last["d/loss/image"] + last["d/loss/video"], rtol=1e-5
    )
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["2"]

    out = tmp_path / "drawn"
    assert main(["sample", "--workdir", str(run), "--num", "3", "--out", str(out)]) == 0
    assert (out / "samples.png").is_file()
    capsys.readouterr()
    metric = "test_registry:TOY_METRIC"  # a metric of this module, by its path
    assert main(["eval", "--workdir", str(run), "--metric", "video_stats", "--metric", metric]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["step"] == 2 and np.isfinite(result["video_stats/fake_motion"])
    assert 0 < result["toy_metric/mean_abs"] <= 1


def test_a_part_can_be_named_by_its_module_path(toy_parts):
    # This module is importable as `test_registry` (tests/ is on the path): no registration.
    assert LOSSES.get("test_registry:TOY_LOSS") is TOY_LOSS
    assert LOSSES.get("gan_jax.losses.rpgan") is LOSSES.get("rpgan")
    assert models.FAMILIES.get("gan_jax.models.mlp") is models.FAMILIES.get("mlp")


def test_unknown_names_list_what_is_known(toy_parts, tmp_path, capsys):
    with pytest.raises(UnknownPartError, match=r"unknown loss 'hindge'; known: hinge, "):
        LOSSES.get("hindge")
    with pytest.raises(UnknownPartError, match="no module 'no_such_package'"):
        LOSSES.get("no_such_package.loss")
    assert "test_toy" in models.FAMILIES.names() and "video_dcgan" in models.FAMILIES.names()
    config_file = tmp_path / "toy.py"
    config_file.write_text(CONFIG_TEXT)
    args = ["train", "--config", str(config_file), "--workdir", str(tmp_path / "r")]
    assert main([*args, "--config.loss.name=hindge"]) == 2
    assert "loss.name='hindge': unknown loss 'hindge'" in capsys.readouterr().err
    assert main([*args, "--config.penalty.r3=1.0"]) == 2
    assert "penalty.r3: unknown penalty 'r3'" in capsys.readouterr().err
    assert main([*args, "--config.g.name=dcgan"]) == 2
    assert "g.name='dcgan': unknown model family 'dcgan'" in capsys.readouterr().err
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_registry_rules():
    registry = Registry("widget", "gan_jax.losses", "WIDGET")
    registry.register("a", 1)
    with pytest.raises(ValueError, match="widget 'a' is already registered"):
        registry.register("a", 2)
    registry.register("a", 2, replace=True)
    assert registry.get("a") == 2

    @registry.register("b")
    def b():
        return "b"

    assert registry.get("b") is b
    with pytest.raises(TypeError, match=r"loss 'bad' .* lacks \['g_needs_real'\]"):
        losses.LOSSES.register("bad", object.__new__(type("X", (), {"d_loss": 1, "g_loss": 2})))


def test_built_in_parts_are_files_of_their_packages():
    root = pathlib.Path(models.__file__).parents[1]
    assert (root / "losses" / "rpgan.py").is_file()
    assert (root / "models" / "video_dcgan.py").is_file()
    assert {"video_dcgan", "mlp"} <= set(models.FAMILIES.names())
    assert {"nonsaturating", "rpgan"} <= set(LOSSES.names())


def test_a_conditional_objective_gets_the_labels_through_the_trainer(toy_parts, tmp_path):
    """The trainer hands the whole batch to the step: the objective reads `label` (bouncing
    shapes' object count), G learns a label embedding, and sampling draws labels itself."""
    config_file = tmp_path / "toy.py"
    config_file.write_text(
        CONFIG_TEXT.replace("return cfg", "cfg.objective.name = 'test_labelled'\n    return cfg")
    )
    run = tmp_path / "run"
    assert main(["train", "--config", str(config_file), "--workdir", str(run)]) == 0
    _, built, state, _ = load_run(run)
    assert isinstance(built.objective, Labelled) and built.objective.num_classes == 4
    # The state the trainer started from (train.py: init key = split(key(seed))[0], split with
    # the default threefry layout, the init's draws with the classic one).
    init_key = jax.random.split(jax.random.key(0))[0]
    with jax.threefry_partitionable(False):
        initial = jax.jit(build.init_fn(built))(init_key).g_params["label_embedding"]
    moved = np.any(
        np.asarray(state.g_params["label_embedding"]["embedding"])
        != np.asarray(initial["embedding"]),
        axis=1,
    )
    # Object counts 1-3 are the labels of the data; rows 0 and 4-7 get no gradient (Adam then
    # moves them by exactly 0).
    assert moved[1:4].any() and not moved[0] and not moved[4:].any(), moved
    out = tmp_path / "drawn"
    assert main(["sample", "--workdir", str(run), "--num", "3", "--out", str(out)]) == 0


def test_conditions_that_only_data_can_give_come_from_real_batches(toy_parts, tmp_path, capsys):
    """Training samples, `sample` and `eval` condition G on real first frames, never on
    `sample_cond` (which raises here)."""
    config_file = tmp_path / "toy.py"
    text = "cfg.objective.name = 'test_first_frame'\n    cfg.log.sample_every = 1\n    return cfg"
    config_file.write_text(CONFIG_TEXT.replace("return cfg", text))
    run = tmp_path / "run"
    assert main(["train", "--config", str(config_file), "--workdir", str(run)]) == 0
    assert (run / "samples" / "step_000001.png").is_file()
    out = tmp_path / "drawn"
    assert main(["sample", "--workdir", str(run), "--num", "3", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["eval", "--workdir", str(run), "--metric", "video_stats"]) == 0
    assert np.isfinite(json.loads(capsys.readouterr().out)["video_stats/fake_mean_c0"])
