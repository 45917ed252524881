"""Config files, command-line overrides, validation, config.json; every shipped config builds."""

import pathlib

import jax
import numpy as np
import pytest
from ml_collections import config_dict

from gan_jax import build, config, samples
from gan_jax.parallel import make_mesh

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "configs"


def _tiny():
    return config.load_config_file(CONFIGS / "tiny.py")


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
        ("step.loss", "hinge", "hinge"),  # bare text for a str key
        ("step.loss", "'hinge'", "hinge"),
        ("data.size_range", "[2, 3]", (2.0, 3.0)),  # list -> tuple, ints -> floats
        ("g.conv_impl", "lax", "lax"),  # typed placeholder
        ("g.conv_impl", "None", None),
        ("data.num_epochs", "2", 2),
        ("eval.metrics", "('video_stats',)", ("video_stats",)),
    ],
)
def test_override_parses_and_keeps_types(key, text, expected):
    cfg = _tiny()
    config.override(cfg, key, text)
    group, name = cfg, key
    for part in key.split(".")[:-1]:
        group = group[part]
    name = key.split(".")[-1]
    assert group[name] == expected
    assert type(group[name]) is type(expected)
    config.validate(cfg)


@pytest.mark.parametrize(
    "key, text, message",
    [
        ("g.widht", "3", r"unknown key g\.widht; did you mean g\.base_width\? keys in g: arch, "),
        ("g.deph", "3", r"did you mean g\.depth\?"),
        ("setps", "3", r"unknown key setps; did you mean steps\? top-level keys: batch_size"),
        ("g.depth", "'x'", r"g\.depth='x' has type str, but g\.depth holds an int \(now 2\)"),
        ("g.depth", "1.5", r"g\.depth=1\.5 has type float, but g\.depth holds an int"),
        ("log.progress", "1", r"log\.progress holds a bool"),
        ("steps", "None", r"steps cannot be None"),
        ("g", "3", r"g is a group, not a value; set its keys: arch, "),
        ("g.depth.x", "3", r"g\.depth is a value"),
        ("data.size_range", "[2, 'a']", r"data\.size_range\[1\]"),
    ],
)
def test_override_errors_name_the_key_and_what_is_allowed(key, text, message):
    with pytest.raises(config.ConfigError, match=message):
        config.override(_tiny(), key, text)


@pytest.mark.parametrize(
    "key, text, message",
    [
        (
            "data.height",
            "10",
            r"data\.height=10 and data\.width=8 must be divisible by 2\*\*g\.depth=4",
        ),
        ("d.depth", "4", r"2\*\*d\.depth=16"),
        ("step.loss", "wgan", r"step: loss='wgan' is not one of"),
        ("g.optimizer", "rmsprop", r"g\.optimizer='rmsprop' is not allowed; choose one of"),
        ("g.arch", "mlp", r"g\.arch='mlp' and d\.arch='video_dcgan' must be the same"),
        ("data.name", "ring", r"data config for 'ring' has unknown key"),
        ("ckpt.every", "0", r"ckpt\.every must be >= 1"),
        ("eval.metrics", "('mode_coverage',)", r"'mode_coverage' does not apply to data\.name="),
        ("g.lr", "0", r"g\.lr must be > 0"),
    ],
)
def test_validate_rejects_impossible_configs(key, text, message):
    cfg = _tiny()
    config.override(cfg, key, text)
    with pytest.raises(config.ConfigError, match=message):
        config.validate(cfg)


def test_unknown_data_key_is_rejected():
    cfg = _tiny()
    with cfg.data.unlocked():
        cfg.data.num_framez = 3
    with pytest.raises(config.ConfigError, match=r"unknown key\(s\) \['num_framez'\]"):
        config.validate(cfg)


def test_video_folder_needs_a_root(tmp_path):
    cfg = config.load_config_file(CONFIGS / "video_folder.py")
    with pytest.raises(config.ConfigError, match=r"data\.root is empty: set it .*--config\.data"):
        config.validate(cfg)
    config.override(cfg, "data.root", str(tmp_path / "missing"))
    with pytest.raises(config.ConfigError, match=r"is not a directory"):
        config.validate(cfg)
    config.override(cfg, "data.root", str(tmp_path))
    config.validate(cfg)


def test_config_file_errors(tmp_path):
    with pytest.raises(config.ConfigError, match="does not exist"):
        config.load_config_file(tmp_path / "nope.py")
    bad = tmp_path / "bad.py"
    bad.write_text("x = 1\n")
    with pytest.raises(config.ConfigError, match=r"has no get_config\(\)"):
        config.load_config_file(bad)


def test_config_json_round_trip_keeps_tuples_and_placeholders(tmp_path):
    cfg = _tiny()
    path = config.write_config_json(cfg, tmp_path)
    assert path == tmp_path / "config.json"
    loaded = config.load_config_file(path)
    assert loaded.to_dict() == cfg.to_dict()
    assert isinstance(loaded.data.size_range, tuple)
    # An untyped None (from JSON) still takes a value, and overrides keep working.
    config.override(loaded, "g.conv_impl", "'lax'")
    assert loaded.g.conv_impl == "lax"
    assert config.differences(cfg.to_dict(), loaded.to_dict()) == ["g.conv_impl: None -> 'lax'"]


@pytest.mark.parametrize("name", ["tiny", "bouncing_shapes", "ring", "grid", "video_folder"])
def test_shipped_configs_validate_and_build(name, tmp_path):
    cfg = config.load_config_file(CONFIGS / f"{name}.py")
    assert isinstance(cfg, config_dict.ConfigDict)
    doc = (CONFIGS / f"{name}.py").read_text()
    assert f"--config experiments/configs/{name}.py" in doc and "Expected" in doc
    if name == "video_folder":
        config.override(cfg, "data.root", str(tmp_path))
    config.validate(cfg)
    gan = build.build(cfg)
    # The whole state, abstractly (no compilation): shapes match the data.
    state = samples.abstract_state(gan, make_mesh(jax.devices()[:1]))
    out = jax.eval_shape(
        lambda s: gan.g.apply(
            {"params": s.g_ema, **s.g_stats}, np.zeros((2, gan.g.z_dim)), train=False
        ),
        state,
    )
    assert out.shape == (2, *build.sample_shape(cfg))
    if name != "video_folder":
        batch = next(build.make_data(cfg, batch_size=2, seed=0, process_index=0, process_count=1))
        assert batch[build.data_key(cfg)].shape == (2, *build.sample_shape(cfg))


def test_main_job_is_what_the_readme_promises():
    cfg = config.load_config_file(CONFIGS / "bouncing_shapes.py")
    assert build.sample_shape(cfg) == (8, 32, 32, 3)
    assert cfg.g.depth == cfg.d.depth == 3
    doc = (CONFIGS / "bouncing_shapes.py").read_text()
    assert "gan-jax train --config experiments/configs/bouncing_shapes.py" in doc
