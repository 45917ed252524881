"""Config plumbing: config files, `--config.key=value` overrides, config.json, key checks.

A config file is a Python file with `get_config()` returning an `ml_collections.ConfigDict`
(see experiments/configs/; `gan_jax.build.default_config` gives a whole run's defaults). This
module knows no group's meaning: each part validates its own group with a `Checker`, and
`gan_jax.build.validate` runs them all. It imports no module of the project, so every layer
may use it.

Overrides are parsed here rather than with absl flags, which do not mix with argparse
subcommands. A value is read with `ast.literal_eval` and must have the type of the value it
replaces (an int may replace a float; a list may replace a tuple); text that is not a Python
literal is taken as a string where the key holds a string. An override may add a key to a
group that holds a mapping of names (`--config.penalty.my_penalty=0.5`): see `OPEN_GROUPS`.
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
_OVERRIDE_PREFIX = "--config."
# Groups whose keys are names chosen by the user (penalties by name, learning-rate multipliers
# by parameter path, loss weights by D head): an override may add a key to them.
OPEN_GROUPS = ("penalty", "loss.head_weights", "g.lr_multipliers", "d.lr_multipliers")


class ConfigError(ValueError):
    """A config file, key or value that cannot be used; the message says how to fix it."""


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
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        raise ConfigError(
            f"config file {path}, line {e.lineno}: {e.msg}; fix the Python syntax there"
        ) from None
    except Exception as e:  # noqa: BLE001 - any failure of the user's file is a config error
        raise ConfigError(f"config file {path} failed to load: {_where(e, path)}") from e
    if not callable(getattr(module, "get_config", None)):
        raise ConfigError(f"config file {path} has no get_config() function")
    try:
        cfg = module.get_config()
    except Exception as e:  # noqa: BLE001
        raise ConfigError(f"get_config() of {path} failed: {_where(e, path)}") from e
    if not isinstance(cfg, config_dict.ConfigDict):
        raise ConfigError(
            f"{path}: get_config() returned {type(cfg).__name__}; return an "
            "ml_collections.ConfigDict"
        )
    return cfg


def _where(error: Exception, path: Path) -> str:
    """`Type: message (line N)`, the line being the last one of `path` in the traceback."""
    line = None
    tb = error.__traceback__
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename) == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    at = f" (line {line})" if line is not None else ""
    return f"{type(error).__name__}: {error}{at}"


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
    """Reads a config.json (`to_json`'s text, e.g. WORKDIR/config.json)."""
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


def to_json(cfg: config_dict.ConfigDict) -> str:
    """The text of a config.json (`load_config_json` reads it back)."""
    return json.dumps(cfg.to_dict(), indent=2, sort_keys=True) + "\n"


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
            close = _closest(name, list(group.keys()))
            hint = f"did you mean {'.'.join([*parts[:depth], close])}? " if close else ""
            raise ConfigError(_unknown_key_text(key, hint, prefix, group.keys()))
        if depth < len(parts) - 1:
            group = group[name]
    return group, parts[-1]


# Keys that moved when parts became found by name: an old config gets pointed to the new key.
MOVED_KEYS = {
    "step.loss": "loss.name",
    "step.r1_gamma": "penalty.r1 (the same gamma)",
    "step.gp_weight": "penalty.gp, with loss.name='wasserstein' for WGAN-GP",
    "step.ema_decay": "ema.decay",
    "g.arch": "g.name",
    "d.arch": "d.name",
    "g.conv_impl": "the environment variable GAN_JAX_CONV_IMPL (one route per process)",
    "d.conv_impl": "the environment variable GAN_JAX_CONV_IMPL (one route per process)",
}


def _unknown_key_text(key: str, hint: str, prefix: str, keys: Iterable[str]) -> str:
    """ "unknown key g.widht; did you mean g.base_width? keys in g: ..." (or where it moved)."""
    if key in MOVED_KEYS:
        return f"unknown key {key}: it is now {MOVED_KEYS[key]}"
    where = f"keys in {prefix}" if prefix else "top-level keys"
    return f"unknown key {key}; {hint}{where}: {', '.join(sorted(keys))}"


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


def _add_to_open_group(cfg: config_dict.ConfigDict, key: str, text: str) -> bool:
    """Adds `key` to one of `OPEN_GROUPS` (a weight or multiplier: a number); False if `key`
    does not belong to an open group that exists in `cfg`."""
    parent, _, name = key.rpartition(".")
    if parent not in OPEN_GROUPS:
        return False
    group = cfg
    for part in parent.split("."):
        if not isinstance(group, config_dict.ConfigDict) or part not in group:
            return False
        group = group[part]
    if not isinstance(group, config_dict.ConfigDict) or name in group:
        return False
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        value = None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key}={text} must be a number: {parent} holds weights by name")
    with group.unlocked():
        group[name] = float(value)
    return True


def override(cfg: config_dict.ConfigDict, key: str, text: str) -> None:
    """Sets `cfg.<key>` from the command-line text `text`, checking key and type."""
    if _add_to_open_group(cfg, key, text):
        return
    group, name = _lookup(cfg, key)
    field = group._fields[name]  # noqa: SLF001 (FieldReference for typed placeholders)
    if isinstance(field, config_dict.FieldReference):
        current, field_type, nullable = field.get(), field.get_type(), True
    else:
        current, field_type, nullable = field, None, field is None
    value = _coerce(key, text, current, field_type, nullable)
    with group.unlocked():
        setattr(group, name, value)


def fill_missing(group: config_dict.ConfigDict, defaults: config_dict.ConfigDict) -> None:
    """Adds to `group`, in place, the keys of `defaults` it lacks (a run's config saved before
    those keys existed), with their default values."""
    with group.unlocked():
        for key, value in defaults.items():
            if key not in group:
                group[key] = value


def apply_overrides(
    cfg: config_dict.ConfigDict, overrides: Iterable[tuple[str, str]]
) -> config_dict.ConfigDict:
    """Applies `(key, text)` overrides in order; returns `cfg` (modified in place)."""
    for key, text in overrides:
        override(cfg, key, text)
    return cfg


# ---------------------------------------------------------------------------------------------
# Validation helpers: each part validates its own group with these


class Checker:
    """Reads and checks the values of one config group, naming keys in full ("g.lr").

    Args:
        group: the group (`cfg.g`), or the whole config with `prefix=""`.
        prefix: the group's path ("g", "data", "penalty").
    """

    def __init__(self, group: config_dict.ConfigDict, prefix: str):
        if not isinstance(group, config_dict.ConfigDict):
            raise ConfigError(f"{prefix} must be a group of keys, got {group!r}")
        self.group = group
        self.prefix = prefix

    def name(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def value(self, key: str, kind: type | tuple[type, ...]) -> Any:
        """`group[key]`, which must exist and be of `kind` (bool is never an int here)."""
        if key not in self.group:
            where = f"keys in {self.prefix}" if self.prefix else "top-level keys"
            raise ConfigError(f"missing key {self.name(key)}; {where}: {_keys_text(self.group)}")
        value = self.group[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            wanted = " or ".join(k.__name__ for k in kinds)
            raise ConfigError(f"{self.name(key)} must be {wanted}, got {value!r}")
        return value

    def integer(self, key: str, low: int | None = None, high: int | None = None) -> int:
        value = self.value(key, int)
        if (low is not None and value < low) or (high is not None and value > high):
            raise ConfigError(f"{self.name(key)} must be {_range_text(low, high)}, got {value}")
        return value

    def number(
        self,
        key: str,
        low: float | None = None,
        high: float | None = None,
        *,
        low_open: bool = False,
        high_open: bool = False,
    ) -> float:
        """A float (or int) in `[low, high]`; `low_open` / `high_open` exclude the ends."""
        value = self.value(key, (int, float))
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high or value != value:  # value != value: NaN
            text = _interval_text(low, high, low_open, high_open)
            raise ConfigError(f"{self.name(key)} must be {text}, got {value}")
        return float(value)

    def boolean(self, key: str) -> bool:
        return self.value(key, bool)

    def string(self, key: str) -> str:
        return self.value(key, str)

    def one_of(self, key: str, allowed: Sequence[str]) -> str:
        value = self.value(key, str)
        if value not in allowed:
            raise ConfigError(
                f"{self.name(key)}={value!r} is not allowed; choose one of {list(allowed)}"
            )
        return value

    def group_of(self, key: str) -> Checker:
        """A `Checker` of the subgroup `key`."""
        return Checker(self.value(key, config_dict.ConfigDict), self.name(key))

    def only_keys(self, allowed: Iterable[str]) -> None:
        """Raises naming the first key of the group that is not in `allowed`."""
        allowed = list(allowed)
        for key in sorted(self.group.keys()):
            if key not in allowed:
                close = _closest(key, allowed)
                hint = f"did you mean {self.name(close)}? " if close else ""
                raise ConfigError(_unknown_key_text(self.name(key), hint, self.prefix, allowed))


def _range_text(low, high) -> str:
    if low is not None and high is not None:
        return f"in [{low}, {high}]"
    return f">= {low}" if low is not None else f"<= {high}"


def _interval_text(low, high, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low}"
    return f"{'<' if high_open else '<='} {high}"


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
