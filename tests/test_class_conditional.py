"""Class-conditional generation: the objective, video_dcgan's class embedding (G) and projection
head (D), and `gan-jax sample --label` on a trained run."""

import json
import types

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import jit_init
from ml_collections import config_dict
from test_config import CONFIGS

from gan_jax import build, evaluate
from gan_jax.config import ConfigError, load_config_file
from gan_jax.main import main
from gan_jax.metrics.label_accuracy import METRIC as LABEL_ACCURACY
from gan_jax.models.mocogan import ImageVideoDiscriminator, MoCoGenerator
from gan_jax.models.video_dcgan import VideoDiscriminator, VideoGenerator
from gan_jax.objectives import class_conditional
from gan_jax.objectives.class_conditional import ClassConditional
from gan_jax.state import create_state
from gan_jax.train_step import StepConfig, make_train_step

CLIP = (2, 8, 8, 3)


def _tiny_moco_g(clip, **kwargs):
    """A class-conditional MoCoGenerator small enough for a test."""
    return MoCoGenerator(
        clip_shape=clip,
        content_dim=4,
        motion_dim=3,
        noise_dim=2,
        base_width=4,
        depth=2,
        num_classes=3,
        **kwargs,
    )


def _row_moved(variables, path: str, row: int = 2, by: float = 1.0):
    """A copy of `variables` with row `row` of the table at `path` ("params/.../embedding")
    moved by `by`."""
    flat = flax.traverse_util.flatten_dict(variables, sep="/")
    flat[path] = flat[path].at[row].add(by)
    return flax.traverse_util.unflatten_dict(flat, sep="/")


def one_sgd_step(g, d, objective, batch):
    """The state G and D start from (seed 0) and the metrics of one SGD step on `batch`."""
    tx = optax.sgd(1e-3)
    init = jax.jit(
        lambda k: create_state(k, g, d, tx, tx, objective=objective, example_batch=batch)
    )
    state = init(jax.random.key(0))
    step = jax.jit(make_train_step(g, d, tx, tx, StepConfig(), objective=objective))
    return state, jax.device_get(step(state, batch, jax.random.key(1))[1])


def sgd_step_metric_names(g, d, objective, batch) -> set[str]:
    """The names of the metrics `one_sgd_step` returns, from the step traced, not compiled."""
    tx = optax.sgd(1e-3)
    state = jax.eval_shape(
        lambda k: create_state(k, g, d, tx, tx, objective=objective, example_batch=batch),
        jax.random.key(0),
    )
    step = make_train_step(g, d, tx, tx, StepConfig(), objective=objective)
    return set(jax.eval_shape(step, state, batch, jax.random.key(1))[1])


def _spec(name="bouncing_shapes"):
    data = {"name": name}
    if name == "bouncing_shapes":
        data.update({"num_frames": 2, "height": 8, "width": 8, "num_objects": (1, 2)})
        data["size_range"] = (2.0, 4.0)
    return build.data_spec(config_dict.ConfigDict(data), 8)


def test_objective_conditions_both_nets_on_the_batch_labels_and_draws_its_classes():
    objective = class_conditional.make_objective(
        config_dict.ConfigDict({"name": "class_conditional", "labels": (1, 2)}), _spec()
    )
    assert objective.num_classes == 3  # 0, 1 or 2 objects
    clips = jnp.zeros((4, *CLIP))
    labels, real = objective.split({"video": clips, "label": jnp.array([1, 2, 2, 1])})
    assert labels.dtype == jnp.int32 and real is clips
    assert objective.g_inputs(labels) is labels
    assert objective.d_inputs(real, labels) == (real, labels)
    drawn = np.asarray(objective.sample_cond(jax.random.key(0), 200))
    assert set(drawn) == {1, 2}  # never 0: no clip of the data has no object
    with pytest.raises(KeyError, match="needs labelled data"):
        objective.split({"video": clips})


@pytest.mark.parametrize(
    "labels, data, error",
    [
        ((3,), "bouncing_shapes", r"objective.labels=\(3,\): 3 is no class"),
        ((), "ring", "needs labelled data"),
    ],
)
def test_bad_settings_name_the_key(labels, data, error):
    cfg = config_dict.ConfigDict({"name": "class_conditional", "labels": labels})
    with pytest.raises(ConfigError, match=error):
        class_conditional.validate(cfg, _spec(data))


def test_a_sample_of_label_l_is_drawn_with_ls_embedding_and_judged_with_ls_projection():
    g = VideoGenerator(clip_shape=CLIP, z_dim=4, base_width=4, depth=2, num_classes=3)
    d = VideoDiscriminator(clip_shape=CLIP, base_width=4, depth=2, num_classes=3)
    z = {"z": jnp.ones((2, 4))}  # the same noise for both samples
    labels = jnp.array([0, 2])
    g_vars = jit_init(g, 0, z, labels)
    apply = jax.jit(lambda v, y: g.apply(v, z, y, train=False))
    clips = apply(g_vars, labels)
    assert not np.allclose(clips[0], clips[1])  # same noise, other class: another clip
    # Changing class 2's embedding changes the sample of label 2 only.
    changed = apply(_row_moved(g_vars, "params/class_embedding/embedding"), labels)
    np.testing.assert_array_equal(changed[0], clips[0])
    assert not np.allclose(changed[1], clips[1])

    d_vars = jit_init(d, 1, clips, labels)
    judge = jax.jit(lambda v, y: d.apply(v, clips, y, train=False))
    logits = judge(d_vars, labels)
    changed = judge(_row_moved(d_vars, "params/class_projection/embedding", row=0), labels)
    assert changed[1] == logits[1] and changed[0] != logits[0]
    with pytest.raises(ValueError, match="class-conditional"):
        g.apply(g_vars, z, None, train=False)


def test_mocogans_class_embedding_and_both_heads_projections_take_the_label():
    clip = (4, 8, 8, 3)
    g = _tiny_moco_g(clip)
    latents = {"content": jnp.ones((2, 4)), "motion": jnp.ones((2, 4, 2))}  # same noise twice
    labels = jnp.array([0, 2])
    g_vars = jit_init(g, 0, latents, labels)
    apply = jax.jit(lambda v: g.apply(v, latents, labels, train=False))
    clips = apply(g_vars)
    assert clips.shape == (2, *clip) and not np.allclose(clips[0], clips[1])
    changed = apply(_row_moved(g_vars, "params/class_embedding/embedding"))
    np.testing.assert_array_equal(changed[0], clips[0])  # label 0's clip keeps its embedding
    assert not np.allclose(changed[1], clips[1])

    d = ImageVideoDiscriminator(
        clip_shape=clip, base_width=4, depth=2, image_stride=2, num_classes=3
    )
    d_vars = jit_init(d, 1, clips, labels)
    judge = jax.jit(lambda v: d.apply(v, clips, labels, train=False))
    logits = judge(d_vars)
    assert logits["image"].shape == (4,) and logits["video"].shape == (2,)
    for head, per_clip in (("image", 2), ("video", 1)):
        changed = judge(_row_moved(d_vars, f"params/{head}/class_projection/embedding"))
        # Only clip 1's (label 2) logits of this head move; its frames all take the clip's label.
        np.testing.assert_array_equal(changed[head][:per_clip], logits[head][:per_clip])
        assert np.all(changed[head][per_clip:] != logits[head][per_clip:])
        other = "video" if head == "image" else "image"
        np.testing.assert_array_equal(changed[other], logits[other])
    with pytest.raises(ValueError, match="MoCoGenerator is class-conditional"):
        g.apply(g_vars, latents, None, train=False)


@pytest.mark.parametrize("family", ["video_dcgan", "mocogan"])
@pytest.mark.parametrize("norm", ["batch", "none"])
def test_every_norm_of_a_conditional_g_has_a_class_scale_and_shift(family, norm):
    if family == "video_dcgan":
        g = VideoGenerator(
            clip_shape=CLIP, z_dim=4, base_width=4, depth=2, norm=norm, num_classes=3
        )
        latents = {"z": jnp.ones((2, 4))}
    else:
        g = _tiny_moco_g(CLIP, norm=norm)
        latents = {"content": jnp.ones((2, 4)), "motion": jnp.ones((2, 2, 2))}
    labels = jnp.array([0, 2])
    g_vars = jit_init(g, 0, latents, labels)
    flat = flax.traverse_util.flatten_dict(g_vars["params"], sep="/")
    tables = sorted(k for k in flat if k.endswith("_norm_class/embedding"))
    # One table per norm of G (the projection's and each hidden up-block's), batch norm or not.
    assert len(tables) == 2, tables
    apply = jax.jit(lambda v: g.apply(v, latents, labels, train=False))
    clips = apply(g_vars)
    for name in tables:
        changed = apply(_row_moved(g_vars, "params/" + name, by=0.5))
        np.testing.assert_array_equal(changed[0], clips[0])  # label 0 keeps its scale and shift
        assert not np.allclose(changed[1], clips[1]), name


@pytest.mark.parametrize(
    "objective, d_family, g_conditional, d_conditional, settings, error",
    [
        ("class_conditional", "video_dcgan", True, True, {}, None),
        ("class_conditional", "mocogan", True, True, {}, None),
        ("class_conditional", "video_dcgan", False, True, {}, "conditions G on labels: set g.cond"),
        ("class_conditional", "video_dcgan", True, False, {}, "conditions D on labels: set d.cond"),
        ("class_conditional", "r3gan", True, None, {}, "d.name='r3gan' takes none; use a family"),
        ("unconditional", "video_dcgan", True, False, {}, "g.conditional=True makes G take labe"),
        # D's own classifier (ADC-GAN) needs the labels, and in mocogan its video head.
        ("class_conditional", "video_dcgan", True, True, {"d.classifier": True}, None),
        ("class_conditional", "mocogan", True, True, {"d.classifier": True}, None),
        ("unconditional", "video_dcgan", False, False, {"d.classifier": True}, "gives D a classi"),
        (
            "class_conditional",
            "mocogan",
            True,
            True,
            {"d.classifier": True, "d.heads": ("image",)},
            "puts D's classifier on its video head",
        ),
        (
            "class_conditional",
            "video_dcgan",
            True,
            True,
            {"d.classifier": True, "objective.d_classifier_weight": 0.0},
            "the head would stay untrained",
        ),
    ],
)
def test_nets_and_objective_must_agree_on_labels_when_the_config_is_checked(
    objective, d_family, g_conditional, d_conditional, settings, error
):
    cfg = build.parts_config(
        model="video_dcgan", d_model=d_family, data="bouncing_shapes", objective=objective
    )
    cfg.data.update({"num_frames": 4, "height": 8, "width": 8, "size_range": (2.0, 4.0)})
    cfg.batch_size = 8
    cfg.g.depth = 2
    if "depth" in cfg.d:
        cfg.d.depth = 2
    cfg.g.conditional = g_conditional
    if d_conditional is not None:
        cfg.d.conditional = d_conditional
    if objective == "class_conditional":
        cfg.objective.d_classifier_weight = 1.0  # what trains D's own classifier, where it has one
    cfg.update_from_flattened_dict(settings)
    if error is None:
        build.validate(cfg)
    else:
        with pytest.raises(ConfigError, match=error):
            build.validate(cfg)


def test_a_class_conditional_run_trains_and_samples_by_label(tmp_path, capsys):
    cfg = load_config_file(CONFIGS / "tiny.py")
    cfg.steps, cfg.log.sample_every, cfg.ckpt.every = 1, 0, 1
    cfg.data.height = cfg.data.width = 16  # the shapes feature network's smallest frames
    cfg.eval.shapes_features_steps = cfg.eval.count_head_steps = 3
    cfg.objective = class_conditional.default_config()
    cfg.objective.labels = (1, 2)
    cfg.g.conditional = cfg.d.conditional = True
    cfg.d.minibatch_std = 4  # as experiments/configs/shapes_class_conditional.py
    config = tmp_path / "config.json"
    config.write_text(cfg.to_json())
    workdir = tmp_path / "run"
    assert main(["train", "--config", str(config), "--workdir", str(workdir)]) == 0
    out = tmp_path / "samples"
    args = ["sample", "--workdir", str(workdir), "--num", "3", "--out", str(out)]
    assert main([*args, "--label", "2"]) == 0
    assert (out / "samples.png").is_file()
    capsys.readouterr()
    scores = ["eval", "--workdir", str(workdir), "--metric", "label_accuracy"]
    assert main([*scores, "--num-samples", "4"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("accuracy", "accuracy_1", "accuracy_2", "real_accuracy"):
        assert 0 <= result[f"label_accuracy/{key}"] <= 1, key
    assert result["label_accuracy/accuracy"] == pytest.approx(
        (result["label_accuracy/accuracy_1"] + result["label_accuracy/accuracy_2"]) / 2
    )
    capsys.readouterr()
    assert main([*args, "--label", "5"]) == 2
    assert "--label 5" in capsys.readouterr().err
    cfg.g.conditional = False
    config.write_text(cfg.to_json())
    capsys.readouterr()
    assert main(["train", "--config", str(config), "--workdir", str(tmp_path / "other")]) == 2
    assert "set g.conditional=True" in capsys.readouterr().err


def test_sample_labels_go_class_by_class_without_label():
    objective = ClassConditional(num_classes=4, labels=(1, 2, 3))
    from gan_jax.sampling import class_labels

    np.testing.assert_array_equal(class_labels(objective, 5, None, "W"), [1, 1, 2, 2, 3])
    np.testing.assert_array_equal(class_labels(objective, 2, 3, "W"), [3, 3])
    assert class_labels(object(), 2, None, "W") is None
    with pytest.raises(ConfigError, match="not class-conditional"):
        class_labels(object(), 2, 1, "W")


def test_label_accuracy_asks_for_each_class_and_scores_what_the_count_head_reads():
    class CountHead:  # stands in for the trained feature network: reads the clip's first value
        def counts(self, clips):
            return np.rint(np.asarray(clips)[:, 0, 0, 0, 0]).astype(np.int32)

    asked = []

    def sampler(state, key, num, cond):
        cond = np.asarray(cond)
        asked.append((num, set(cond.tolist())))
        shown = cond.astype(np.float32)
        if cond[0] == 2:
            shown[::2] = 1.0  # label 2's generator shows one object in every other clip
        return np.broadcast_to(shown[:, None, None, None, None], (num, 2, 2, 2, 3))

    run = types.SimpleNamespace(
        objective=ClassConditional(num_classes=3, labels=(1, 2)),
        spec=types.SimpleNamespace(sample_key="video"),
    )
    ctx = evaluate.EvalContext(cfg=None, run=run, state=None, sampler=sampler, num_samples=100)
    ctx.cached("count_head", CountHead)
    real_labels = np.array([1, 2, 2, 1], np.int32)
    real_clips = np.broadcast_to(
        np.array([1.0, 2.0, 1.0, 1.0])[:, None, None, None, None], (4, 2, 2, 2, 3)
    )
    ctx.data_batches = lambda num, size: iter([{"video": real_clips, "label": real_labels}])
    scores = LABEL_ACCURACY.compute(ctx)
    assert asked == [(50, {1}), (50, {2})]  # half of num_samples per class, each its label
    assert scores == {
        "accuracy_1": 1.0,
        "accuracy_2": 0.5,
        "accuracy": 0.75,
        "real_accuracy": 0.75,  # the third real clip reads as one object, labelled two
    }


def test_the_classifier_term_is_the_cross_entropy_of_ds_logits_under_each_class():
    g = VideoGenerator(clip_shape=CLIP, z_dim=4, base_width=4, depth=2, num_classes=3)
    d = VideoDiscriminator(clip_shape=CLIP, base_width=4, depth=2, norm="none", num_classes=3)
    objective = ClassConditional(
        num_classes=3, labels=(1, 2), d_classifier_weight=0.5, g_classifier_weight=2.0
    )
    clips = jax.random.uniform(jax.random.key(5), (8, *CLIP), minval=-1, maxval=1)
    batch = {"video": clips, "label": jnp.array([1, 2] * 4)}
    state, metrics = one_sgd_step(g, d, objective, batch)

    @jax.jit
    def logits_under(label):  # D before the update, on the real clips, told `label`
        labels = jnp.full((8,), label)
        return d.apply({"params": state.d_params}, clips, labels, train=True)

    logits = np.stack([logits_under(1), logits_under(2)], axis=-1)  # [N, 2]: classes 1, 2
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    true = np.array([0, 1] * 4)  # index of each clip's label in (1, 2)
    assert metrics["d/class_loss"] == pytest.approx(-log_p[np.arange(8), true].mean(), rel=1e-5)
    assert metrics["d/class_acc"] == pytest.approx(np.mean(logits.argmax(-1) == true))
    assert metrics["d/total_loss"] == pytest.approx(
        metrics["d/loss"] + 0.5 * metrics["d/class_loss"], rel=1e-5
    )
    # G's term: its clips read as the class asked for, with its own weight.
    assert metrics["g/class_loss"] > 0 and 0 <= metrics["g/class_acc"] <= 1
    assert metrics["g/total_loss"] == pytest.approx(
        metrics["g/loss"] + metrics["g/class_loss"], rel=1e-5
    )
    plain = ClassConditional(num_classes=3, labels=(1, 2))  # weight 0: the projection alone
    names = sgd_step_metric_names(g, d, plain, batch)
    assert "d/loss" in names and "d/class_loss" not in names
