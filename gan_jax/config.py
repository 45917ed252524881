"""Run configs: loading a config file, `--config.key=value` overrides, validation, config.json.

A config file is a Python file with `get_config()` returning an `ml_collections.ConfigDict`
(see experiments/configs/). Groups: `g`, `d` (model and optimiser of each net), `step` (the
`StepConfig` fields), `data`, `ckpt`, `log`, `eval`, plus `seed`, `steps` and `batch_size`
(global, over all processes). `base_config()` holds everything but `g`, `d` and `data`;
`video_model_configs()` / `mlp_model_configs()` give the model groups.

Overrides are parsed here rather than with absl flags, which do not mix with argparse
subcommands. A value is read with `ast.literal_eval` and must have the type of the value it
replaces (an int may replace a float; a list may replace a tuple); text that is not a Python
literal is taken as a string where the key holds a string.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ml_collections import config_dict

CONFIG_JSON = "config.json"
ARCHS = ("video_dcgan", "mlp")
OPTIMIZERS = ("adam", "sgd")
DTYPES = ("float32", "bfloat16")
VIDEO_DATASETS = ("bouncing_shapes", "video_folder")
POINT_DATASETS = ("ring", "grid")
_OVERRIDE_PREFIX = "--config."


class ConfigError(ValueError):
    """A config file, key or value that cannot be used; the message says how to fix it."""


def base_config() -> config_dict.ConfigDict:
    """Every group but `g`, `d` and `data`, with defaults."""
    cfg = config_dict.ConfigDict()
    cfg.seed = 0  # model init, noise, data order
    cfg.steps = 1000
    cfg.batch_size = 32  # global: over all devices and processes

    cfg.step = config_dict.ConfigDict()  # gan_jax.train_step.StepConfig fields
    cfg.step.loss = "nonsaturating"
    cfg.step.n_critic = 1
    cfg.step.r1_gamma = 0.0
    cfg.step.gp_weight = 10.0
    cfg.step.ema_decay = 0.999

    cfg.ckpt = config_dict.ConfigDict()
    cfg.ckpt.every = 500  # steps between checkpoints; one is always written at the end
    cfg.ckpt.keep = 3  # most recent checkpoints kept
    cfg.ckpt.async_save = True

    cfg.log = config_dict.ConfigDict()
    cfg.log.every = 50  # metrics to host, metrics.jsonl and TensorBoard
    cfg.log.sample_every = 500  # sample clips / points under WORKDIR/samples; 0 = end only
    cfg.log.num_samples = 8  # fixed-noise samples per sample step
    cfg.log.fps = 8.0  # frame rate of sample videos
    cfg.log.progress = True  # tqdm bar on process 0

    cfg.eval = config_dict.ConfigDict()
    cfg.eval.every = 0  # steps between metric evaluations during training; 0 = off
    cfg.eval.metrics = ()  # names from gan_jax.evaluate.METRICS; () = all that apply
    cfg.eval.num_samples = 64  # generated (and real) samples per evaluation
    cfg.eval.shapes_features_dir = ""  # shapes_fd's feature network cache; "" = WORKDIR/...
    cfg.eval.shapes_features_steps = 1200  # training steps of that network (on first use)
    cfg.eval.i3d_weights = ""  # I3D weights .npz for fvd (gan_jax.metrics.i3d_convert); "" = none
    cfg.eval.fvd_num_samples = 2048  # real and generated clips of fvd (the usual protocol)
    return cfg


def _optimizer_fields(group: config_dict.ConfigDict, lr: float) -> None:
    group.optimizer = "adam"  # "adam" or "sgd"
    group.lr = lr
    group.b1 = 0.5  # adam
    group.b2 = 0.999  # adam
    group.momentum = 0.0  # sgd


def video_model_configs() -> tuple[config_dict.ConfigDict, config_dict.ConfigDict]:
    """`(g, d)` groups of the video DCGAN (`gan_jax.models.video_dcgan`) with Adam 2e-4.

    The clip shape is not set here: it comes from `data.num_frames/height/width/channels`.
    """
    g = config_dict.ConfigDict()
    g.arch = "video_dcgan"
    g.z_dim = 128
    g.base_width = 64
    g.depth = 4
    g.norm = "batch"
    g.conv_impl = config_dict.placeholder(str)  # None: "fast" on CPU, "lax" elsewhere
    g.dtype = "float32"
    _optimizer_fields(g, 2e-4)

    d = config_dict.ConfigDict()
    d.arch = "video_dcgan"
    d.base_width = 64
    d.depth = 4
    d.norm = "batch"
    d.spectral_norm = False
    d.conv_impl = config_dict.placeholder(str)
    d.dtype = "float32"
    _optimizer_fields(d, 2e-4)
    return g, d


def mlp_model_configs() -> tuple[config_dict.ConfigDict, config_dict.ConfigDict]:
    """`(g, d)` groups of the 2-D MLP GAN (`gan_jax.models.mlp`) with Adam 2e-4."""
    g = config_dict.ConfigDict()
    g.arch = "mlp"
    g.z_dim = 2
    g.hidden = 128
    g.depth = 3
    _optimizer_fields(g, 2e-4)

    d = config_dict.ConfigDict()
    d.arch = "mlp"
    d.hidden = 128
    d.depth = 3
    d.pack = 1
    _optimizer_fields(d, 2e-4)
    return g, d


# ---------------------------------------------------------------------------------------------
# Loading


def load_config_file(path: str | os.PathLike) -> config_dict.ConfigDict:
    """Imports a config file and returns its `get_config()`.

    Raises:
        ConfigError: the file does not exist, is not a .py file or has no `get_config()`.
    """
    path = Path(path)
    if path.suffix == ".json":
        return load_config_json(path)
    if not path.is_file():
        raise ConfigError(
            f"config file {path} does not exist; pass a file such as "
            "experiments/configs/bouncing_shapes.py"
        )
    if path.suffix != ".py":
        raise ConfigError(f"config file {path} must be a .py file with get_config() (or a .json)")
    spec = importlib.util.spec_from_file_location(f"gan_jax_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "get_config", None)):
        raise ConfigError(f"config file {path} has no get_config() function")
    cfg = module.get_config()
    if not isinstance(cfg, config_dict.ConfigDict):
        raise ConfigError(
            f"{path}: get_config() returned {type(cfg).__name__}; return an "
            "ml_collections.ConfigDict"
        )
    return cfg


def _restore_tuples(value: Any) -> Any:
    """JSON turns tuples into lists; configs hold tuples (lists are not used in configs)."""
    if isinstance(value, dict):
        return {k: _restore_tuples(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(_restore_tuples(v) for v in value)
    return value


def config_from_dict(values: dict) -> config_dict.ConfigDict:
    """A ConfigDict from the plain dict of `cfg.to_dict()` or of a JSON file."""
    return config_dict.ConfigDict(_restore_tuples(values))


def load_config_json(path: str | os.PathLike) -> config_dict.ConfigDict:
    """Reads a config written by `write_config_json` (e.g. WORKDIR/config.json)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ConfigError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path} must hold a JSON object, got {type(values).__name__}")
    return config_from_dict(values)


def write_config_json(cfg: config_dict.ConfigDict, workdir: str | os.PathLike) -> Path:
    """Writes `cfg` to WORKDIR/config.json (through a temporary file, so it is never torn)."""
    path = Path(workdir) / CONFIG_JSON
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{CONFIG_JSON}.partial{os.getpid()}")
    partial.write_text(json.dumps(cfg.to_dict(), indent=2, sort_keys=True) + "\n", "utf-8")
    os.replace(partial, path)
    return path


# ---------------------------------------------------------------------------------------------
# Overrides


def split_overrides(argv: Sequence[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """Separates `--config.key=value` / `--config.key value` arguments from the others.

    Returns:
        `([(key, text), ...], other_args)` with keys such as "g.width".
    """
    overrides, others = [], []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith(_OVERRIDE_PREFIX):
            body = arg[len(_OVERRIDE_PREFIX) :]
            if "=" in body:
                key, text = body.split("=", 1)
            elif i + 1 < len(argv):
                key, text = body, argv[i + 1]
                i += 1
            else:
                raise ConfigError(f"{arg} has no value; write {arg}=VALUE")
            if not key:
                raise ConfigError(f"{arg}: missing key; write --config.group.key=VALUE")
            overrides.append((key, text))
        else:
            others.append(arg)
        i += 1
    return overrides, others


def _keys_text(group: config_dict.ConfigDict) -> str:
    return ", ".join(sorted(group.keys()))


def _closest(name: str, keys: list[str]) -> str | None:
    """The key most like `name`, also matching parts of snake_case keys ("widht" ~ "base_width")."""
    close = difflib.get_close_matches(name, keys, n=1)
    if close:
        return close[0]
    scored = [
        (max(difflib.SequenceMatcher(None, name, part).ratio() for part in key.split("_")), key)
        for key in keys
    ]
    score, key = max(scored, default=(0.0, None))
    return key if score >= 0.75 else None


def _lookup(cfg: config_dict.ConfigDict, key: str) -> tuple[config_dict.ConfigDict, str]:
    """The group holding `key` ("a.b.c") and the last name; raises naming close matches."""
    parts = key.split(".")
    group = cfg
    for depth, name in enumerate(parts):
        prefix = ".".join(parts[:depth])
        if not isinstance(group, config_dict.ConfigDict):
            raise ConfigError(f"unknown key {key}: {prefix} is a value ({group!r}), not a group")
        if name not in group:
            where = f"keys in {prefix}" if prefix else "top-level keys"
            close = _closest(name, list(group.keys()))
            hint = f"; did you mean {'.'.join([*parts[:depth], close])}?" if close else ""
            raise ConfigError(f"unknown key {key}{hint} {where}: {_keys_text(group)}")
        if depth < len(parts) - 1:
            group = group[name]
    return group, parts[-1]


def _type_name(value_type: type) -> str:
    return value_type.__name__


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _coerce(key: str, text: str, current: Any, field_type: type | None, nullable: bool) -> Any:
    """Parses override `text` for a key whose value is `current` (of type `field_type`);
    `nullable` keys (placeholders, None values) also take None."""
    if isinstance(current, config_dict.ConfigDict):
        raise ConfigError(f"{key} is a group, not a value; set its keys: {_keys_text(current)}")
    try:
        value = ast.literal_eval(text)
        parsed = True
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        value, parsed = text, False
    if field_type is None:
        field_type = type(current) if current is not None else None
    if parsed and value is None and nullable:
        return None
    if field_type is str:
        # Any text is a valid string (paths, names); a quoted literal is taken unquoted.
        return value if parsed and isinstance(value, str) else text
    if field_type is bool and not parsed and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if value is None:
        raise ConfigError(
            f"{key} cannot be None; it holds {_article(_type_name(field_type))} "
            f"{_type_name(field_type)} (now {current!r})"
        )
    if field_type is None:  # an untyped None: take any literal
        if not parsed:
            raise ConfigError(f"{key}={text!r} is not a Python literal (quote strings: '...')")
        return value
    return _check_type(key, value, current, field_type, text)


def _check_type(key: str, value: Any, current: Any, field_type: type, text: str) -> Any:
    if field_type is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if field_type is tuple and isinstance(value, list | tuple):
        value = tuple(value)
        kinds = {type(v) for v in current or ()}
        if len(kinds) == 1:
            (kind,) = kinds
            value = tuple(
                _check_type(f"{key}[{i}]", v, current[0], kind, repr(v))
                for i, v in enumerate(value)
            )
        return value
    if type(value) is not field_type:
        wanted = _type_name(field_type)
        raise ConfigError(
            f"{key}={text} has type {type(value).__name__}, but {key} holds {_article(wanted)} "
            f"{wanted} (now {current!r}); give {_article(wanted)} {wanted}"
        )
    return value


def override(cfg: config_dict.ConfigDict, key: str, text: str) -> None:
    """Sets `cfg.<key>` from the command-line text `text`, checking key and type."""
    group, name = _lookup(cfg, key)
    field = group._fields[name]  # noqa: SLF001 (FieldReference for typed placeholders)
    if isinstance(field, config_dict.FieldReference):
        current, field_type, nullable = field.get(), field.get_type(), True
    else:
        current, field_type, nullable = field, None, field is None
    value = _coerce(key, text, current, field_type, nullable)
    with group.unlocked():
        setattr(group, name, value)


def apply_overrides(
    cfg: config_dict.ConfigDict, overrides: Iterable[tuple[str, str]]
) -> config_dict.ConfigDict:
    """Applies `(key, text)` overrides in order; returns `cfg` (modified in place)."""
    for key, text in overrides:
        override(cfg, key, text)
    return cfg


# ---------------------------------------------------------------------------------------------
# Validation


def _need(cfg: config_dict.ConfigDict, key: str, kind: type | tuple[type, ...]) -> Any:
    group, name = _lookup(cfg, key)
    value = group[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise ConfigError(f"{key} must be {' or '.join(k.__name__ for k in kinds)}, got {value!r}")
    if not isinstance(value, kinds):
        raise ConfigError(f"{key} must be {' or '.join(k.__name__ for k in kinds)}, got {value!r}")
    return value


def _at_least(cfg, key: str, low: int) -> int:
    value = _need(cfg, key, int)
    if value < low:
        raise ConfigError(f"{key} must be >= {low}, got {value}")
    return value


def _one_of(cfg, key: str, allowed: Sequence[str]) -> str:
    value = _need(cfg, key, str)
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not allowed; choose one of {list(allowed)}")
    return value


def _check_optimizer(cfg, net: str) -> None:
    _one_of(cfg, f"{net}.optimizer", OPTIMIZERS)
    if _need(cfg, f"{net}.lr", (int, float)) <= 0:
        raise ConfigError(f"{net}.lr must be > 0, got {cfg[net].lr}")
    for name in ("b1", "b2", "momentum"):
        value = _need(cfg, f"{net}.{name}", (int, float))
        if not 0 <= value < 1:
            raise ConfigError(f"{net}.{name} must be in [0, 1), got {value}")


def _check_video_models(cfg) -> None:
    from gan_jax.models.video_dcgan import block_plan  # noqa: PLC0415 (keeps import light)

    data = cfg.data
    shape = (data.num_frames, data.height, data.width, data.channels)
    for net in ("g", "d"):
        depth = _at_least(cfg, f"{net}.depth", 1)
        _at_least(cfg, f"{net}.base_width", 1)
        _one_of(cfg, f"{net}.norm", ("batch", "none"))
        _one_of(cfg, f"{net}.dtype", DTYPES)
        if cfg[net].conv_impl is not None:
            _one_of(cfg, f"{net}.conv_impl", ("lax", "fast"))
        try:
            block_plan(shape, depth)
        except ValueError:
            scale = 2**depth
            raise ConfigError(
                f"data.height={data.height} and data.width={data.width} must be divisible by "
                f"2**{net}.depth={scale}; choose sizes that are multiples of {scale} or a "
                f"smaller {net}.depth"
            ) from None
    _at_least(cfg, "g.z_dim", 1)


def _check_mlp_models(cfg) -> None:
    for net in ("g", "d"):
        _at_least(cfg, f"{net}.hidden", 1)
        _at_least(cfg, f"{net}.depth", 0)
    _at_least(cfg, "g.z_dim", 1)
    pack = _at_least(cfg, "d.pack", 1)
    if cfg.batch_size % pack:
        raise ConfigError(f"batch_size={cfg.batch_size} must be divisible by d.pack={pack}")


def validate(cfg: config_dict.ConfigDict) -> None:
    """Checks that `cfg` can be built and trained; raises `ConfigError` naming the key.

    Device-dependent checks (batch size vs. device count) happen in the trainer.
    """
    from gan_jax.data import resolve_data_config  # noqa: PLC0415
    from gan_jax.data.points_source import resolve_points_config  # noqa: PLC0415
    from gan_jax.train_step import StepConfig  # noqa: PLC0415

    for group in ("g", "d", "step", "data", "ckpt", "log", "eval"):
        if group not in cfg or not isinstance(cfg[group], config_dict.ConfigDict):
            raise ConfigError(
                f"config has no group {group!r}; top-level keys: {_keys_text(cfg)}. Start "
                "from gan_jax.config.base_config() as experiments/configs/*.py do"
            )
    _need(cfg, "seed", int)
    _at_least(cfg, "steps", 1)
    _at_least(cfg, "batch_size", 1)

    name = _one_of(cfg, "data.name", VIDEO_DATASETS + POINT_DATASETS)
    try:
        if name in POINT_DATASETS:
            resolve_points_config(cfg.data)
        else:
            resolve_data_config(cfg.data)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if name == "video_folder" and not cfg.data.root:
        raise ConfigError(
            "data.root is empty: set it to your folder of videos, e.g. "
            "--config.data.root=/data/UCF-101"
        )
    if name == "video_folder" and not Path(cfg.data.root).expanduser().is_dir():
        raise ConfigError(f"data.root={cfg.data.root!r} is not a directory")

    arch = _one_of(cfg, "g.arch", ARCHS)
    if _one_of(cfg, "d.arch", ARCHS) != arch:
        raise ConfigError(f"g.arch={arch!r} and d.arch={cfg.d.arch!r} must be the same")
    wanted = "mlp" if name in POINT_DATASETS else "video_dcgan"
    if arch != wanted:
        raise ConfigError(f"data.name={name!r} needs g.arch = d.arch = {wanted!r}, got {arch!r}")
    if arch == "video_dcgan":
        _check_video_models(cfg)
    else:
        _check_mlp_models(cfg)
    for net in ("g", "d"):
        _check_optimizer(cfg, net)

    try:
        StepConfig(**cfg.step.to_dict())
    except (TypeError, ValueError) as e:
        raise ConfigError(f"step: {e} Keys in step: {_keys_text(cfg.step)}") from None

    _at_least(cfg, "ckpt.every", 1)
    _at_least(cfg, "ckpt.keep", 1)
    _need(cfg, "ckpt.async_save", bool)
    _at_least(cfg, "log.every", 1)
    _at_least(cfg, "log.sample_every", 0)
    _at_least(cfg, "log.num_samples", 1)
    if _need(cfg, "log.fps", (int, float)) <= 0:
        raise ConfigError(f"log.fps must be > 0, got {cfg.log.fps}")
    _need(cfg, "log.progress", bool)
    _at_least(cfg, "eval.every", 0)
    _at_least(cfg, "eval.num_samples", 1)
    _need(cfg, "eval.shapes_features_dir", str)
    _at_least(cfg, "eval.shapes_features_steps", 1)
    _need(cfg, "eval.i3d_weights", str)
    _at_least(cfg, "eval.fvd_num_samples", 2)
    metrics = _need(cfg, "eval.metrics", (tuple, list))
    from gan_jax.evaluate import check_metric_names  # noqa: PLC0415 (evaluate imports jax)

    try:
        check_metric_names(cfg, metrics)
    except ConfigError as e:
        raise ConfigError(f"eval.metrics: {e}") from None


def differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Keys whose values differ between two config dicts, as "key: old -> new" lines."""
    lines = []
    for key in sorted(set(old) | set(new)):
        name = f"{prefix}{key}"
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            lines += differences(a, b, f"{name}.")
        elif _restore_tuples(a) != _restore_tuples(b):
            lines.append(f"{name}: {a!r} -> {b!r}")
    return lines
