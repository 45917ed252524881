"""Class-conditional generation: the objective, video_dcgan's class embedding (G) and projection
head (D), and `gan-jax sample --label` on a trained run."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ml_collections import config_dict
from test_config import CONFIGS

from gan_jax import build
from gan_jax.config import ConfigError, load_config_file
from gan_jax.main import main
from gan_jax.models.video_dcgan import VideoDiscriminator, VideoGenerator
from gan_jax.objectives import class_conditional
from gan_jax.objectives.class_conditional import ClassConditional

CLIP = (2, 8, 8, 3)


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
    g_vars = g.init(jax.random.key(0), z, labels, train=False)
    apply = jax.jit(lambda v, y: g.apply(v, z, y, train=False))
    clips = apply(g_vars, labels)
    assert not np.allclose(clips[0], clips[1])  # same noise, other class: another clip
    # Changing class 2's embedding changes the sample of label 2 only.
    table = g_vars["params"]["class_embedding"]["embedding"]
    moved = jax.tree.map(lambda x: x, g_vars)
    moved["params"]["class_embedding"]["embedding"] = table.at[2].add(1.0)
    changed = apply(moved, labels)
    np.testing.assert_array_equal(changed[0], clips[0])
    assert not np.allclose(changed[1], clips[1])

    d_vars = d.init(jax.random.key(1), clips, labels, train=False)
    judge = jax.jit(lambda v, y: d.apply(v, clips, y, train=False))
    logits = judge(d_vars, labels)
    projection = d_vars["params"]["class_projection"]["embedding"]
    moved = jax.tree.map(lambda x: x, d_vars)
    moved["params"]["class_projection"]["embedding"] = projection.at[0].add(1.0)
    changed = judge(moved, labels)
    assert changed[1] == logits[1] and changed[0] != logits[0]
    with pytest.raises(ValueError, match="class-conditional"):
        g.apply(g_vars, z, None, train=False)


def test_a_class_conditional_run_trains_and_samples_by_label(tmp_path, capsys):
    cfg = load_config_file(CONFIGS / "tiny.py")
    cfg.steps, cfg.log.sample_every, cfg.ckpt.every = 1, 0, 1
    cfg.data.height = cfg.data.width = 16  # the shapes feature network's smallest frames
    cfg.eval.shapes_features_steps = 3
    cfg.objective = class_conditional.default_config()
    cfg.objective.labels = (1, 2)
    cfg.g.conditional = cfg.d.conditional = True
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
    assert main(["train", "--config", str(config), "--workdir", str(tmp_path / "other")]) != 0
    assert "g.conditional=True" in capsys.readouterr().err


def test_sample_labels_go_class_by_class_without_label():
    objective = ClassConditional(num_classes=4, labels=(1, 2, 3))
    from gan_jax.sampling import class_labels

    np.testing.assert_array_equal(class_labels(objective, 5, None, "W"), [1, 1, 2, 2, 3])
    np.testing.assert_array_equal(class_labels(objective, 2, 3, "W"), [3, 3])
    assert class_labels(object(), 2, None, "W") is None
    with pytest.raises(ConfigError, match="not class-conditional"):
        class_labels(object(), 2, 1, "W")
