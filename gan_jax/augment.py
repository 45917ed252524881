"""Augmentation of everything D sees: DiffAugment's operations, with a fixed or adaptive (ADA)
probability per clip. Pure `jax.numpy`, no parameters.

DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training")
augments real and generated samples alike, in D's update and in G's (it is differentiable, so G
learns through it), so that D cannot overfit the few real clips it has. The policies, applied in
the order given, and their operations (each on one clip `[T, H, W, C]`, in [-1, 1]):

* `color`: `brightness` (adds a shift in [-0.5, 0.5)), `saturation` (scales each pixel's
  deviation from its mean over channels by a factor in [0, 2)), `contrast` (scales the deviation
  from the clip's mean by a factor in [0.5, 1.5));
* `translation`: shifts the clip by whole pixels, up to `translation_ratio` of its height and
  width each way, filling the uncovered border with zeros;
* `cutout`: zeroes a rectangle of `cutout_ratio` of the height and width (cut at the borders).

**Video**: one set of random parameters per clip, the same on every frame: a translation moves
the whole clip, cutout cuts the same rectangle out of every frame, and a colour operation is the
same affine map of every frame (contrast is taken about the mean of the whole clip). Images are
clips of one frame.

**Probability** (StyleGAN2-ADA, Karras et al. 2020): each operation is applied to each clip with
probability `p`, drawn independently per operation and clip; a clip left alone is passed through
bitwise. `p = 1` is DiffAugment. With `ada_target > 0`, `p` adapts: every `ada_interval` steps,
`r_t = E[sign(D(augmented real))]` over those steps is compared with the target, and `p` moves by
`sign(r_t - target) * (batch_size * ada_interval) / (ada_kimg * 1000)`, clipped to [0, 1] (so
`p` can cross [0, 1] in `ada_kimg` thousand real clips). D overconfident on reals (`r_t` above
the target) means overfitting: more augmentation.

The random numbers come from the caller (`uniform(op, k) -> [N, k]`), one stream per operation
named in `OPS`, so that the train step draws them from its own key, in the batch's sharding.
Every operation is affine in the clip, so `augment`'s backward pass is written out as the
adjoint operations in reverse order (no scatter; the same cost as the forward pass on CPU).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
from ml_collections import config_dict

from gan_jax.config import Checker, ConfigError

Array = jax.Array

# policy -> its operations, in DiffAugment's order.
POLICIES = {
    "color": ("brightness", "saturation", "contrast"),
    "translation": ("translation",),
    "cutout": ("cutout",),
}
# Every operation, in a fixed order: an operation's index names its random stream, so that the
# numbers an operation draws do not depend on the policy or its order.
OPS = ("brightness", "saturation", "contrast", "translation", "cutout")
# How many uniform numbers per clip each operation draws: whether to apply it, then its values.
DRAWS = {"brightness": 2, "saturation": 2, "contrast": 2, "translation": 3, "cutout": 3}
# The collection of `GANState.d_stats` that holds ADA's state (see `ada_init`).
STATE_KEY = "augment"


def parse_policy(policy: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """`"color,translation"` or `("color", "translation")` -> `("color", "translation")`.

    Raises:
        ValueError: an unknown policy name (naming the known ones) or a repeated one.
    """
    if isinstance(policy, str):
        names = [name.strip() for name in policy.split(",") if name.strip()]
    elif isinstance(policy, tuple | list) and all(isinstance(name, str) for name in policy):
        names = [name.strip() for name in policy]
    else:
        raise ValueError(
            f"policy={policy!r} must be a comma-separated string or a tuple of names from "
            f"{list(POLICIES)}"
        )
    for name in names:
        if name not in POLICIES:
            raise ValueError(f"unknown policy {name!r}; known: {', '.join(POLICIES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"policy {policy!r} names a policy twice")
    return tuple(names)


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Settings of D's input augmentation (hashable: the train step closes over it).

    Attributes:
        policy: names from `POLICIES` in the order applied (a comma-separated string is
            accepted); empty: no augmentation.
        p: the probability of each operation per clip; with `ada_target > 0`, the starting p.
        translation_ratio: the largest shift, as a fraction of the height and of the width.
        cutout_ratio: the cut rectangle's height and width, as a fraction of the clip's.
        ada_target: the target of `E[sign(D(real))]`; 0: p stays fixed.
        ada_kimg: thousands of real clips over which p may go from 0 to 1 (StyleGAN2-ADA: 500).
        ada_interval: steps between updates of p (StyleGAN2-ADA: 4).
    """

    policy: tuple[str, ...] = ()
    p: float = 1.0
    translation_ratio: float = 0.125
    cutout_ratio: float = 0.5
    ada_target: float = 0.0
    ada_kimg: float = 500.0
    ada_interval: int = 4

    def __post_init__(self):
        object.__setattr__(self, "policy", parse_policy(self.policy))
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"p={self.p} must be in [0, 1].")
        if not 0.0 <= self.translation_ratio < 1.0:
            raise ValueError(f"translation_ratio={self.translation_ratio} must be in [0, 1).")
        if not 0.0 <= self.cutout_ratio <= 1.0:
            raise ValueError(f"cutout_ratio={self.cutout_ratio} must be in [0, 1].")
        if not 0.0 <= self.ada_target < 1.0:
            raise ValueError(f"ada_target={self.ada_target} must be in [0, 1) (0: off).")
        if not self.ada_kimg > 0:
            raise ValueError(f"ada_kimg={self.ada_kimg} must be > 0.")
        if self.ada_interval < 1:
            raise ValueError(f"ada_interval={self.ada_interval} must be >= 1.")

    @property
    def enabled(self) -> bool:
        return bool(self.policy)

    @property
    def adaptive(self) -> bool:
        """Whether p adapts (and lives in the state) rather than staying fixed."""
        return self.enabled and self.ada_target > 0

    @property
    def ops(self) -> tuple[str, ...]:
        """The operations applied, in order."""
        return tuple(op for name in self.policy for op in POLICIES[name])


# ---------------------------------------------------------------------------------------------
# Config group `augment`

_KEYS = (
    "policy",
    "p",
    "translation_ratio",
    "cutout_ratio",
    "ada_target",
    "ada_kimg",
    "ada_interval",
)


def default_config() -> config_dict.ConfigDict:
    """The `augment` group of a run config: off (`policy = ""`).

    `policy`: e.g. "color,translation,cutout"; `p`: probability per operation and clip (the
    starting p with ADA: StyleGAN2-ADA starts at 0); `translation_ratio`, `cutout_ratio`;
    `ada_target` > 0 (e.g. 0.6) adapts p, by up to 1 per `ada_kimg` thousand real clips, every
    `ada_interval` steps.
    """
    return config_dict.ConfigDict(
        {
            "policy": "",
            "p": 1.0,
            "translation_ratio": 0.125,
            "cutout_ratio": 0.5,
            "ada_target": 0.0,
            "ada_kimg": 500.0,
            "ada_interval": 4,
        }
    )


def validate_config(augment_cfg: config_dict.ConfigDict, is_video: bool) -> None:
    """Raises `ConfigError` naming the first bad key of `augment`.

    Args:
        augment_cfg: the `augment` group.
        is_video: whether the data are clips `[N, T, H, W, C]` (the only inputs it augments).
    """
    check = Checker(augment_cfg, "augment")
    check.only_keys(_KEYS)
    policy = check.value("policy", (str, tuple))
    try:
        policy = parse_policy(policy)
    except ValueError as e:
        raise ConfigError(f"augment.policy={augment_cfg.policy!r}: {e}") from None
    check.number("p", 0.0, 1.0)
    check.number("translation_ratio", 0.0, 1.0, high_open=True)
    check.number("cutout_ratio", 0.0, 1.0)
    target = check.number("ada_target", 0.0, 1.0, high_open=True)
    check.number("ada_kimg", 0.0, low_open=True)
    check.integer("ada_interval", 1)
    if policy and not is_video:
        raise ConfigError(
            f"augment.policy={augment_cfg.policy!r}: augmentation works on clips [N, T, H, W, C] "
            "and images (T = 1); these data are not clips (2-D points?): set augment.policy=''"
        )
    if target and not policy:
        raise ConfigError(
            f"augment.ada_target={target} adapts the probability of the policy's operations, "
            "but augment.policy is empty: name a policy, e.g. 'color,translation,cutout'"
        )


def config_from(augment_cfg: config_dict.ConfigDict) -> AugmentConfig:
    """The `AugmentConfig` of a validated `augment` group."""
    return AugmentConfig(
        policy=parse_policy(augment_cfg.policy),
        p=float(augment_cfg.p),
        translation_ratio=float(augment_cfg.translation_ratio),
        cutout_ratio=float(augment_cfg.cutout_ratio),
        ada_target=float(augment_cfg.ada_target),
        ada_kimg=float(augment_cfg.ada_kimg),
        ada_interval=int(augment_cfg.ada_interval),
    )


# ---------------------------------------------------------------------------------------------
# The operations: x [N, T, H, W, C], one parameter per clip


def _per_clip(values: Array, x: Array) -> Array:
    """`[N]` -> `[N, 1, 1, 1, 1]`, to broadcast over a clip."""
    return values.reshape((-1,) + (1,) * (x.ndim - 1)).astype(x.dtype)


def brightness(x: Array, shift: Array) -> Array:
    """Adds `shift[n]` to every value of clip n. `x`: `[N, T, H, W, C]`; `shift`: `[N]`."""
    return x + _per_clip(shift, x)


def saturation(x: Array, factor: Array) -> Array:
    """Scales each pixel's deviation from its mean over channels by `factor[n]` `[N]`."""
    # Channel by channel: XLA:CPU reduces and broadcasts a minor axis of 3 about 10x slower
    # than it adds three strided slices (measured on [16, 8, 32, 32, 3]: 2.7 vs 0.2 ms).
    channels = x.shape[-1]
    planes = [x[..., c] for c in range(channels)]
    mean = sum(planes[1:], planes[0]) / channels
    scale = _per_clip(factor, mean)
    return jnp.stack([(plane - mean) * scale + mean for plane in planes], axis=-1)


def contrast(x: Array, factor: Array) -> Array:
    """Scales the deviation from the mean of the whole clip (all frames) by `factor[n]` `[N]`:
    the same affine map of every frame."""
    mean = jnp.mean(x, axis=tuple(range(1, x.ndim)), keepdims=True)
    return (x - mean) * _per_clip(factor, x) + mean


def translate(x: Array, dy: Array, dx: Array) -> Array:
    """Shifts clip n by `dy[n]` rows down and `dx[n]` columns right (int `[N]`), every frame
    alike; uncovered pixels are 0.

    One gather by index over the flattened pixels (no convolution): `out[n, t, h, w] = x[n, t,
    h - dy[n], w - dx[n]]` where that is inside the clip. Its adjoint is the opposite shift,
    which is how `augment` differentiates it (a gather, not autodiff's scatter-add).
    """
    n, frames, height, width, channels = x.shape
    rows = jnp.arange(height).reshape(1, height, 1) - dy.reshape(n, 1, 1)  # source row
    cols = jnp.arange(width).reshape(1, 1, width) - dx.reshape(n, 1, 1)  # source column
    inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)  # [N, H, W]
    source = jnp.clip(rows, 0, height - 1) * width + jnp.clip(cols, 0, width - 1)
    pixels = x.reshape(n, frames, height * width, channels)
    moved = jnp.take_along_axis(
        pixels, source.reshape(n, 1, height * width, 1), axis=2, mode="clip"
    ).reshape(x.shape)
    return jnp.where(inside.reshape(n, 1, height, width, 1), moved, jnp.zeros((), x.dtype))


def cutout_mask(shape: tuple[int, ...], top: Array, left: Array, size: tuple[int, int]) -> Array:
    """bool `[N, 1, H, W, 1]`: False inside clip n's rectangle of `size` (rows, columns) whose
    top-left corner is `(top[n], left[n])` (int `[N]`, may lie outside the clip)."""
    n, _, height, width, _ = shape
    rows = jnp.arange(height).reshape(1, height) - top.reshape(n, 1)
    cols = jnp.arange(width).reshape(1, width) - left.reshape(n, 1)
    in_rows = (rows >= 0) & (rows < size[0])
    in_cols = (cols >= 0) & (cols < size[1])
    return ~(in_rows.reshape(n, 1, height, 1, 1) & in_cols.reshape(n, 1, 1, width, 1))


def cutout(x: Array, top: Array, left: Array, size: tuple[int, int]) -> Array:
    """Zeroes the same rectangle in every frame of clip n (see `cutout_mask`)."""
    return jnp.where(cutout_mask(x.shape, top, left, size), x, jnp.zeros((), x.dtype))


def _integers(u: Array, low: Array | int, count: Array | int) -> Array:
    """Uniform [0, 1) -> int32 uniform over `[low, low + count)`."""
    k = jnp.minimum(jnp.floor(u * count).astype(jnp.int32), count - 1)
    return low + k


def translation_range(height: int, width: int, ratio: float) -> tuple[int, int]:
    """The largest shift in rows and in columns (DiffAugment's rounding)."""
    return int(height * ratio + 0.5), int(width * ratio + 0.5)


def cutout_size(height: int, width: int, ratio: float) -> tuple[int, int]:
    """The rectangle's rows and columns (DiffAugment's rounding)."""
    return int(height * ratio + 0.5), int(width * ratio + 0.5)


def _apply_op(
    op: str, x: Array, values: Array, cfg: AugmentConfig, *, adjoint: bool = False
) -> Array:
    """Operation `op` of every clip with its parameters from `values` `[N, k]` uniform [0, 1).

    With `adjoint`, the transpose of the operation's linear part instead (what the backward
    pass applies to a cotangent): the identity for brightness (a shift), the operation itself
    for saturation, contrast and cutout (self-adjoint), the opposite shift for translation.
    """
    _, _, height, width, _ = x.shape
    if op == "brightness":
        return x if adjoint else brightness(x, values[:, 0] - 0.5)
    if op == "saturation":
        return saturation(x, values[:, 0] * 2.0)
    if op == "contrast":
        return contrast(x, values[:, 0] + 0.5)
    if op == "translation":
        sy, sx = translation_range(height, width, cfg.translation_ratio)
        dy = _integers(values[:, 0], -sy, 2 * sy + 1)
        dx = _integers(values[:, 1], -sx, 2 * sx + 1)
        return translate(x, -dy, -dx) if adjoint else translate(x, dy, dx)
    if op == "cutout":
        size = cutout_size(height, width, cfg.cutout_ratio)
        # DiffAugment: the centre in [0, H + 1 - size % 2), the rectangle cut at the borders.
        cy = _integers(values[:, 0], 0, height + 1 - size[0] % 2)
        cx = _integers(values[:, 1], 0, width + 1 - size[1] % 2)
        return cutout(x, cy - size[0] // 2, cx - size[1] // 2, size)
    raise ValueError(f"unknown augmentation {op!r}; known: {', '.join(OPS)}")


def augment(
    x: Array,
    cfg: AugmentConfig,
    p: Array | float,
    uniform: Callable[[str, int], Array],
) -> Array:
    """Augments a batch of clips; differentiable w.r.t. `x`.

    Args:
        x: clips `[N, T, H, W, C]` (T = 1 for images).
        cfg: the policy and ratios.
        p: probability of each operation per clip, a scalar (float or traced).
        uniform: `uniform(op, k)` -> `[N, k]` uniform in [0, 1), a separate stream per op (the
            train step's `BatchNoise`, in the batch's sharding).

    Returns:
        The augmented clips `[N, T, H, W, C]`; a clip none of whose operations was drawn is
        returned bitwise unchanged.
    """
    if x.ndim != 5:
        raise ValueError(
            f"augmentation needs clips [N, T, H, W, C], got D inputs of shape {x.shape}; set "
            "augment.policy='' for these data"
        )
    draws = tuple(uniform(op, DRAWS[op]) for op in cfg.ops)
    return _augmented(x, draws, jnp.asarray(p, jnp.float32), cfg)


def apply_ops(x: Array, draws: tuple[Array, ...], p: Array, cfg: AugmentConfig) -> Array:
    """`augment` with its numbers given: `draws[i]` `[N, k]` for `cfg.ops[i]`. Plain jnp, so
    autodiff derives its gradient (`augment`'s own is written out; the tests compare them)."""
    for op, values in zip(cfg.ops, draws, strict=True):
        applied = (values[:, 0] < p).reshape(-1, 1, 1, 1, 1)
        x = jnp.where(applied, _apply_op(op, x, values[:, 1:], cfg), x)
    return x


# Every operation is affine in x, so the gradient is the adjoint operations in reverse order,
# written out rather than derived: autodiff turns the translation's gather into a scatter-add
# and lets XLA:CPU fuse the random draws into per-pixel loops (measured on [16, 8, 32, 32, 3]:
# 5-7 ms for the derived backward pass against about 1 ms for the adjoint one).
_augmented = jax.custom_vjp(apply_ops, nondiff_argnums=(3,))


def _augmented_fwd(x, draws, p, cfg):
    return apply_ops(x, draws, p, cfg), (draws, p)


def _augmented_bwd(cfg, residuals, cotangent):
    draws, p = residuals
    for op, values in reversed(tuple(zip(cfg.ops, draws, strict=True))):
        applied = (values[:, 0] < p).reshape(-1, 1, 1, 1, 1)
        adjoint = _apply_op(op, cotangent, values[:, 1:], cfg, adjoint=True)
        cotangent = jnp.where(applied, adjoint, cotangent)
    # The draws and p are not differentiated (p is ADA's state, updated by its own rule).
    return cotangent, jax.tree.map(jnp.zeros_like, draws), jnp.zeros_like(p)


_augmented.defvjp(_augmented_fwd, _augmented_bwd)


# ---------------------------------------------------------------------------------------------
# ADA: the adaptive probability


def ada_init(cfg: AugmentConfig) -> dict[str, Array]:
    """ADA's state: `p` (float32) and `rt_sum` (the sum of `r_t` since the last update of p)."""
    return {"p": jnp.asarray(cfg.p, jnp.float32), "rt_sum": jnp.zeros((), jnp.float32)}


def sign_rate(real_logits: dict[str, Array]) -> Array:
    """`r_t = E[sign(D(real))]` of one batch: the mean sign of each head's logits, averaged over
    D's heads. float32 scalar in [-1, 1]."""
    rates = [jnp.mean(jnp.sign(logits.astype(jnp.float32))) for logits in real_logits.values()]
    return sum(rates[1:], rates[0]) / len(rates)


def ada_update(
    state: dict[str, Array], rt: Array, step: Array, batch_size, cfg: AugmentConfig
) -> dict[str, Array]:
    """ADA's state after a step whose reals gave `rt`.

    Args:
        state: `{"p", "rt_sum"}` before the step.
        rt: this step's `E[sign(D(augmented real))]`.
        step: the number of steps completed before this one (`GANState.step`).
        batch_size: real clips per step (global).
        cfg: `ada_target`, `ada_kimg`, `ada_interval`.

    Returns:
        The new state: every `ada_interval`-th step p moves by `sign(mean r_t - target) *
        batch_size * ada_interval / (ada_kimg * 1000)`, clipped to [0, 1], and the sum restarts.
    """
    rt_sum = state["rt_sum"] + rt
    due = (step + 1) % cfg.ada_interval == 0
    rate = rt_sum / cfg.ada_interval
    step_size = batch_size * cfg.ada_interval / (cfg.ada_kimg * 1e3)
    adjust = jnp.sign(rate - cfg.ada_target) * step_size
    p = jnp.clip(state["p"] + adjust.astype(jnp.float32), 0.0, 1.0)
    return {
        "p": jnp.where(due, p, state["p"]),
        "rt_sum": jnp.where(due, jnp.zeros_like(rt_sum), rt_sum),
    }
