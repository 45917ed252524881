"""Flax layers for the video models: convolutions routed through `conv_ops`, normalisation.

The convolution modules own their parameters (`kernel` `[*K, Cin, Cout]`, `bias` `[Cout]`) and
call `gan_jax.ops.conv`, whose route is chosen once per process: matrix products on
space-to-depth blocks (Winograd where the block depth allows) on CPU, the plain `lax` ops
elsewhere (`GAN_JAX_CONV_IMPL` overrides).
"""

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.config import ConfigError
from gan_jax.ops import conv as conv_ops

# DCGAN initialisation (Radford et al. 2016): weights ~ N(0, 0.02).
dcgan_init = nn.initializers.normal(stddev=0.02)

NORMS = ("batch", "none")

# The entry of D's output dict that holds its own classifier's logits (`class_head`), not a head
# that the adversarial loss judges.
CLASS_LOGITS = "class_logits"

# A net's `dtype` setting -> its compute dtype (convolutions and matrix products); parameters,
# optimiser state, losses, penalties and the EMA stay float32 whatever it is.
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


class Conv(nn.Module):
    """Strided N-d convolution, channels last: `[N, *S, Cin]` -> `[N, *S', features]`."""

    features: int
    kernel_size: Sequence[int]
    strides: Sequence[int]
    padding: Sequence[tuple[int, int]]
    use_bias: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param(
            "kernel", dcgan_init, (*self.kernel_size, x.shape[-1], self.features), jnp.float32
        )
        y = conv_ops.conv(
            x.astype(self.dtype),
            kernel.astype(self.dtype),
            tuple(self.strides),
            tuple(self.padding),
        )
        if self.use_bias:
            y = _add_bias(y, self.param("bias", nn.initializers.zeros, (self.features,)))
        return y


class ConvTranspose(nn.Module):
    """Transposed N-d convolution (PyTorch `ConvTranspose` semantics), channels last.

    `[N, *S, Cin]` -> `[N, *S', features]` with `S' = (S - 1) * stride + k - lo - hi`.
    """

    features: int
    kernel_size: Sequence[int]
    strides: Sequence[int]
    padding: Sequence[tuple[int, int]]
    use_bias: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param(
            "kernel", dcgan_init, (*self.kernel_size, x.shape[-1], self.features), jnp.float32
        )
        y = conv_ops.conv_transpose(
            x.astype(self.dtype),
            kernel.astype(self.dtype),
            tuple(self.strides),
            tuple(self.padding),
        )
        if self.use_bias:
            y = _add_bias(y, self.param("bias", nn.initializers.zeros, (self.features,)))
        return y


# Nearest x2 then a 3x3 stride-1 conv (padding 1) equals, along each axis, a transposed conv of
# kernel 4, stride 2, padding 1 whose taps are sums of the 3 conv taps: output 2i draws input i
# through taps 1 and 2 of the 3x3 kernel and input i - 1 through tap 0; output 2i + 1 draws
# input i through taps 0 and 1 and input i + 1 through tap 2. Row t of this matrix lists the
# 3x3 taps that sum to the transposed kernel's tap t (PyTorch semantics: output o = 2i - 1 + t).
_RESIZE_TAPS = np.array([[0, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0]], np.float32)


class ResizeConv(nn.Module):
    """Nearest-neighbour x2 upsampling, then a 3x3 stride-1 convolution (Odena et al. 2016):
    `[N, H, W, Cin]` -> `[N, 2H, 2W, features]`.

    The four pixels of each 2x2 output block see the same kernel, so it cannot draw the
    checkerboard a stride-2 transposed convolution leaves inside flat regions. It runs as that
    transposed convolution (kernel 4, stride 2, padding 1) with its 4x4 kernel folded from the
    3x3 one (`_RESIZE_TAPS`): on CPU the same fast route as `ConvTranspose`, at the low
    resolution, instead of a 3x3 convolution over the 4x larger upsampled map, which XLA:CPU
    runs far below its matmul peak. The parameter is the 3x3 `kernel` `[3, 3, Cin, features]`.
    """

    features: int
    use_bias: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", dcgan_init, (3, 3, x.shape[-1], self.features), jnp.float32)
        folded = jnp.einsum("ty,ux,yxio->tuio", _RESIZE_TAPS, _RESIZE_TAPS, kernel)
        y = conv_ops.conv_transpose(
            x.astype(self.dtype), folded.astype(self.dtype), (2, 2), ((1, 1), (1, 1))
        )
        if self.use_bias:
            y = _add_bias(y, self.param("bias", nn.initializers.zeros, (self.features,)))
        return y


def _add_bias(y: jax.Array, bias: jax.Array) -> jax.Array:
    # Explicit rank: the tests run with jax_numpy_rank_promotion="raise".
    return y + bias.astype(y.dtype).reshape((1,) * (y.ndim - 1) + bias.shape)


def tanh_output(x: jax.Array, gain: float) -> jax.Array:
    """G's last layer `x` -> samples in [-1, 1]: `tanh(gain * x)`, in float32.

    A gain above 1 steepens the tanh, so the same last-layer values reach nearer -1 and 1 and
    an edge between two of them spans fewer intermediate values (bouncing shapes' palette is
    exact; see experiments/configs/bouncing_shapes.py). With Adam it also scales how fast the
    last layer's updates move the output."""
    x = x.astype(jnp.float32)
    if gain != 1.0:  # gain 1 compiles to the plain tanh (the same bits as before the setting)
        x = gain * x
    return jnp.tanh(x)


def check_unconditional(cond, owner: str) -> None:
    """Unconditional nets take `cond` (the model contract) but must get None."""
    if cond is not None:
        raise ValueError(
            f"{owner} is unconditional but was given a condition; use objective "
            "'unconditional', a conditional model family, or (for labels) g.conditional=True "
            "and d.conditional=True where the family offers it"
        )


def check_labels(cond, num: int, num_classes: int, owner: str) -> jax.Array:
    """A class-conditional net's `cond`: int labels `[N]` in [0, num_classes)."""
    if cond is None or getattr(cond, "shape", None) != (num,):
        raise ValueError(
            f"{owner} is class-conditional (num_classes={num_classes}) and takes labels [{num}] "
            f"as its condition, got {None if cond is None else getattr(cond, 'shape', cond)}; "
            "train it with objective.name='class_conditional'"
        )
    if not jnp.issubdtype(cond.dtype, jnp.integer):
        raise ValueError(f"{owner}: labels must be integers, got {cond.dtype}")
    return cond


def class_modulation(x: jax.Array, labels: jax.Array, num_classes: int, name: str) -> jax.Array:
    """The class part of conditional normalisation (de Vries et al. 2017, as in Miyato & Koyama
    2018's generator): normalised features `[N, ..., C]` times (1 + gamma_y) plus beta_y, with
    per-class gamma and beta `[num_classes, C]` learned from zero (so it starts as the plain
    normalisation). Call inside a compact module; `labels` `[N]`."""
    table = nn.Embed(num_classes, 2 * x.shape[-1], embedding_init=nn.initializers.zeros, name=name)
    gamma, beta = jnp.split(table(labels).astype(x.dtype), 2, axis=-1)
    shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (x.shape[-1],)
    return x * (1 + gamma.reshape(shape)) + beta.reshape(shape)


def class_projection(
    features: jax.Array, labels: jax.Array, num_classes: int, name: str
) -> jax.Array:
    """The projection discriminator's class term (Miyato & Koyama 2018): <embed(y), phi(x)>
    `[N]` in float32, phi(x) the last feature map `[N, ..., C]` summed over its positions (their
    global sum pooling). Summed, a feature that marks an object counts the objects, so a
    label such as the number of objects is linear in phi. Call inside a compact module."""
    pooled = jnp.sum(features.astype(jnp.float32), axis=tuple(range(1, features.ndim - 1)))
    embedding = nn.Embed(num_classes, features.shape[-1], name=name)(labels)
    return jnp.sum(embedding * pooled, axis=-1)


def class_head(features: jax.Array, num_classes: int, dtype: Any) -> jax.Array:
    """A discriminator's own classifier (ADC-GAN, Hou et al. 2022): its last feature map
    `[N, ..., C]`, flattened, through a hidden layer of width C (leaky ReLU) to `2 *
    num_classes` logits `[N, 2K]` in float32, the first K for real clips of each class, the
    last K for G's. Call inside a compact module: the parameters are `class_hidden`, `classes`."""
    flat = features.reshape(features.shape[0], -1)
    hidden = nn.Dense(features.shape[-1], dtype=dtype, name="class_hidden")(flat)
    hidden = nn.leaky_relu(hidden, 0.2)
    return nn.Dense(2 * num_classes, dtype=dtype, name="classes")(hidden).astype(jnp.float32)


def logits_head(
    features: jax.Array,
    layer: Callable[[nn.Module, jax.Array], jax.Array],
    dtype: Any,
    labels: jax.Array | None = None,
    num_classes: int = 0,
    classifier: bool = False,
) -> jax.Array | dict[str, jax.Array]:
    """A discriminator's last step: a dense logit of its flattened last feature map
    `[N, ..., C]` (through `layer`, e.g. a spectral-norm wrapper), plus with `num_classes` > 0
    the projection term for `labels` `[N]` (`class_projection`) -> `[N]` float32. With
    `classifier` (and `num_classes` > 0), `{"": logits, CLASS_LOGITS: class_head(...)}`. Call
    inside a compact module: the parameters are its `logits` and `class_projection`."""
    flat = features.reshape(features.shape[0], -1)
    logits = layer(nn.Dense(1, dtype=dtype, name="logits"), flat)[:, 0].astype(jnp.float32)
    if num_classes:
        logits = logits + class_projection(features, labels, num_classes, "class_projection")
        if classifier:
            return {"": logits, CLASS_LOGITS: class_head(features, num_classes, dtype)}
    return logits


def minibatch_std(h: jax.Array, group: int) -> jax.Array:
    """Minibatch standard deviation feature (Karras et al. 2018, ProGAN sec. 3).

    Rows are split into consecutive groups of `group`; the std of each feature over a group,
    averaged over the features, is one scalar per group, repeated for every row of the group.
    A collapsed generator makes batches whose spread differs from real ones, and this lets D see it.
    A batch smaller than `group` (e.g. the batch of 2 at init) is one group, as in ProGAN.
    Groups are of the rows one call sees: under `jit` the global batch, in a `pmap` step each
    device's rows, so there a local batch smaller than `group` becomes one smaller group.

    Args:
        h: features `[N, F]`, N divisible by `group` (or N < group).
        group: rows per group, >= 2 (the std of one row is always 0).

    Returns:
        `[N, 1]`, the group statistic of each row.
    """
    n, features = h.shape
    if group < 2 or (n >= group and n % group):
        raise ValueError(
            f"minibatch_std: group={group} must be >= 2 and divide the batch of {n} rows; pick a "
            f"group size that divides the (packed) batch."
        )
    group = min(group, n)
    grouped = h.reshape(n // group, group, features)
    # Epsilon inside the sqrt: the gradient of sqrt is infinite at 0 (identical rows).
    std = jnp.sqrt(jnp.var(grouped, axis=1) + 1e-8)  # [N / group, F]
    per_group = jnp.mean(std, axis=1, keepdims=True)  # [N / group, 1]
    return jnp.repeat(per_group, group, axis=0)


def with_minibatch_std(features: jax.Array, group: int) -> jax.Array:
    """`[N, ..., C]` -> `[N, ..., C + 1]`: a feature map with one more channel holding the
    `minibatch_std` of its flattened rows (ProGAN puts it before D's last block), constant over
    the positions of each clip. `group` 0 returns the map unchanged."""
    if not group:
        return features
    stat = minibatch_std(features.reshape(features.shape[0], -1), group)
    shape = (*features.shape[:-1], 1)
    channel = jnp.broadcast_to(stat.reshape(-1, *(1,) * (features.ndim - 1)), shape)
    return jnp.concatenate([features, channel.astype(features.dtype)], axis=-1)


def check_minibatch_std(group: int, rows: int, owner: str, rows_text: str) -> None:
    """A `minibatch_std` group setting: 0 (off), or >= 2 dividing the `rows` D sees per call."""
    if group == 1 or group < 0 or (group and rows % group):
        raise ConfigError(
            f"{owner}.minibatch_std={group} must be 0 (off) or >= 2 and divide the {rows_text} "
            f"= {rows}"
        )


def check_output_gain(net_cfg, check) -> None:
    """G's optional `output_gain` key (configs saved before it have none): a number > 0."""
    if "output_gain" in net_cfg:
        check.number("output_gain", low=0.0, low_open=True)


def check_norm(norm: str, owner: str) -> None:
    if norm not in NORMS:
        raise ValueError(f"{owner}.norm={norm!r} is not one of {NORMS}.")


def normalize(
    x: jax.Array,
    norm: str,
    train: bool,
    axis_name: str | None,
    name: str,
    labels: jax.Array | None = None,
    num_classes: int = 0,
) -> jax.Array:
    """Apply the chosen normalisation over all axes but the channels; with `num_classes` > 0,
    then a per-class scale and shift of its output for `labels` `[N]` (`class_modulation`).

    Under `jit` over a mesh, batch statistics are computed on the global batch (sync-BN) by the
    compiler; under `pmap`, `axis_name` names the mapped axis to average statistics over.
    """
    if norm == "batch":
        x = nn.BatchNorm(
            use_running_average=not train,
            momentum=0.9,
            epsilon=1e-5,
            axis_name=axis_name,
            name=name,
        )(x)
    if num_classes:
        x = class_modulation(x, labels, num_classes, f"{name}_class")
    return x
