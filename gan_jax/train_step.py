"""The pure GAN train step: `(state, batch, key) -> (state, metrics)`.

One step = `n_critic` D updates, then one G update against the new D, then the EMA of G. The
step does no I/O; it closes over the models, the optimisers, an objective and a `StepConfig`
and drives them:

* the **objective** splits the whole batch (every entry the dataset yields) into what G and D
  are conditioned on and the real samples, and builds D's inputs (`gan_jax.objectives`);
* G's **latents** are a pytree whose per-sample shapes G declares (`g.latent_shapes`);
* D returns logits `[N]` or a dict of heads (`{"image": [N * T], "video": [N]}`); the **loss**
  (`gan_jax.losses`, `(real_logits, fake_logits)` for both nets) and the **penalties** (R1,
  R2, GP, ... by name, weighted) go over the heads, each head weighted by `head_weights`.
  A dict's `"class_logits"` entry (`layers.CLASS_LOGITS`) is no head but D's own classifier
  `[N, 2K]`, which the objective's class terms train (ADC-GAN).

Metrics (float32 scalars): `d/loss`, `d/total_loss` (with penalties), `d/real_logit`,
`d/fake_logit`, `d/real_acc`, `d/fake_acc` (the discriminator's accuracy: real judged real,
fake judged fake), `d/<penalty>` (`d/r1`, `d/r2`, `d/gp`), `g/loss`, `g/<term>` and
`g/total_loss` when the objective adds G terms, `grad_norm/d`, `grad_norm/g`. With several
heads each per-head metric is named `.../<head>` (`d/real_acc/image`) and `d/loss`, `g/loss`
are the weighted sums. With class terms: `d/class_loss`, `d/class_acc` (D's classifier on
real clips), `d/fake_class_loss` (D's own classifier on G's clips), `g/class_loss`,
`g/class_acc`. With augmentation, `aug/p` (the probability used in the step) and
`aug/rt` (`E[sign(D(augmented real))]`, averaged over the step's D updates and D's heads).

Augmentation (`StepConfig.augment`, `gan_jax.augment`): everything D sees is augmented, real
and fake, in D's update and in G's (G's gradients go through it), after the objective's
`d_inputs`; the penalties are taken on the augmented inputs (R1 is the gradient at the
augmented real clip D judged). With ADA, p lives in `d_stats["augment"]` (see `create_state`)
and is updated at the end of the step from that step's `aug/rt`.

Randomness: `key = fold_in(key, state.step)`, then named subkeys, so a resumed run draws the
same numbers as an uninterrupted one and no RNG state needs checkpointing. The augmentation's
numbers come from `fold_in(update key, _AUGMENT_STREAM)`, leaving every other draw as it was.

Parallelism: under `jit` over a mesh the compiler inserts the all-reduces; noise is constrained
to the batch sharding (otherwise XLA replicates it and every device runs G on the whole batch).
With `axis_name` set, the step is the per-device body of a `pmap`: gradients, metrics and the
batch-norm statistics are averaged over that axis, and each device takes its slice of the same
global noise, so `pmap`, 1 device and N devices draw identical numbers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax import lax
from ml_collections import config_dict

from gan_jax import augment
from gan_jax.augment import AugmentConfig
from gan_jax.config import Checker, ConfigError
from gan_jax.losses import LOSSES, PENALTIES
from gan_jax.models import draw_latents
from gan_jax.models.layers import CLASS_LOGITS
from gan_jax.objectives import Objective, Unconditional
from gan_jax.ops import blocks as blk
from gan_jax.state import GANState

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]
_SINGLE_HEAD = ""  # the one head of a D that returns an array
# Named subkeys of the augmentation: folded into an update's key (a constant no other draw
# folds in), then real and fake get their own streams.
_AUGMENT_STREAM = 0x617567  # "aug"
_REAL, _FAKE = 0, 1


def _weights(value, what: str) -> tuple[tuple[str, float], ...]:
    """A mapping (or pairs) of name -> weight as sorted pairs, so the config stays hashable."""
    items = value.items() if isinstance(value, Mapping) else value
    pairs = tuple(sorted((str(name), float(weight)) for name, weight in items))
    for name, weight in pairs:
        if not weight >= 0:
            raise ValueError(f"{what}[{name!r}] = {weight} must be >= 0.")
    return pairs


@dataclasses.dataclass(frozen=True)
class StepConfig:
    """Settings of the train step (hashable, so it can be closed over by `jit`).

    Attributes:
        loss: a name of `gan_jax.losses.LOSSES` ("nonsaturating", "hinge", "wasserstein",
            "least_squares", "rpgan", or one registered / given by module path).
        n_critic: D updates per G update; each sees the same real batch and fresh noise.
        penalties: penalty name -> weight (`{"r1": 1.0, "r2": 1.0}`); the D loss adds
            `penalty.scale * weight * value` (R1, R2: `gamma / 2 * E ||grad D||^2`).
        penalty_every: lazy regularisation: penalties are computed on every k-th D update only,
            with their weight multiplied by k (StyleGAN2); their metrics read 0 in between.
        head_weights: D head -> weight of its loss and penalties (missing heads: 1).
        ema_decay: decay of the EMA of G's params; 0 makes `g_ema` equal `g_params`.
        ema_half_life: if > 0, the EMA's half-life in samples seen (StyleGAN's `ema_kimg *
            1000`), replacing `ema_decay`: decay = 0.5 ** (batch / half_life).
        ema_rampup: with `ema_half_life`, caps the half-life at `ema_rampup * samples seen` so
            that the average forgets the untrained start (StyleGAN2-ADA: 0.05); 0 = off.
        augment: augmentation of D's inputs (`gan_jax.augment.AugmentConfig`); off by default.
            With `augment.adaptive`, the state must hold ADA's p: `create_state(...,
            augment=cfg.augment)`.
    """

    loss: str = "nonsaturating"
    n_critic: int = 1
    penalties: tuple[tuple[str, float], ...] = ()
    penalty_every: int = 1
    head_weights: tuple[tuple[str, float], ...] = ()
    ema_decay: float = 0.999
    ema_half_life: float = 0.0
    ema_rampup: float = 0.0
    augment: AugmentConfig = AugmentConfig()

    def __post_init__(self):
        object.__setattr__(self, "penalties", _weights(self.penalties, "penalties"))
        object.__setattr__(self, "head_weights", _weights(self.head_weights, "head_weights"))
        LOSSES.get(self.loss)  # raises naming the known losses
        for name, _ in self.penalties:
            PENALTIES.get(name)
        if self.n_critic < 1:
            raise ValueError(f"n_critic={self.n_critic} must be >= 1.")
        if self.penalty_every < 1:
            raise ValueError(f"penalty_every={self.penalty_every} must be >= 1.")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay={self.ema_decay} must be in [0, 1).")
        if self.ema_half_life < 0 or self.ema_rampup < 0:
            raise ValueError("ema_half_life and ema_rampup must be >= 0.")
        if self.ema_rampup and not self.ema_half_life:
            raise ValueError("ema_rampup needs ema_half_life > 0 (it caps the half-life).")
        if not isinstance(self.augment, AugmentConfig):
            raise TypeError(
                f"augment must be a gan_jax.augment.AugmentConfig, got {type(self.augment)}"
            )

    def head_weight(self, head: str) -> float:
        return dict(self.head_weights).get(head, 1.0)


def default_config() -> tuple[config_dict.ConfigDict, config_dict.ConfigDict]:
    """The `step` and `ema` groups of a run config.

    `step.n_critic`: D updates per G update. `ema.decay`: decay of G's EMA per step;
    `ema.half_life_images` > 0 replaces it by a half-life in samples seen (StyleGAN's
    `ema_kimg * 1000`), and `ema.rampup` > 0 caps that half-life at `rampup * samples seen`.
    `ema.standing_stats` > 0: the EMA G is sampled with batch-norm statistics measured on
    that many of its own batches (`gan_jax.standing_stats`); 0 keeps the trained G's.
    """
    step = config_dict.ConfigDict({"n_critic": 1})
    ema = config_dict.ConfigDict(
        {"decay": 0.999, "half_life_images": 0.0, "rampup": 0.0, "standing_stats": 0}
    )
    return step, ema


def validate_config(step_cfg: config_dict.ConfigDict, ema_cfg: config_dict.ConfigDict) -> None:
    """Raises `ConfigError` naming the first bad key of `step` or `ema`."""
    step = Checker(step_cfg, "step")
    step.only_keys(("n_critic",))
    step.integer("n_critic", 1)
    ema = Checker(ema_cfg, "ema")
    ema.only_keys(("decay", "half_life_images", "rampup", "standing_stats"))
    ema.number("decay", 0.0, 1.0, high_open=True)
    ema.integer("standing_stats", 0)
    half_life = ema.number("half_life_images", 0.0)
    if ema.number("rampup", 0.0) and not half_life:
        raise ConfigError("ema.rampup caps ema.half_life_images: set that too (> 0)")


def _with_axis_name(module: nn.Module, axis_name: str | None) -> nn.Module:
    """Binds batch-norm statistics to the pmap axis, for modules that have the setting."""
    if axis_name is not None and hasattr(module, "bn_axis_name"):
        return module.clone(bn_axis_name=axis_name)
    return module


def as_heads(logits) -> dict[str, jax.Array]:
    """D's output as a dict of heads; an array is the single head `""`. The logits of D's own
    classifier (`CLASS_LOGITS`) are no head: see `class_logits`."""
    if not isinstance(logits, Mapping):
        return {_SINGLE_HEAD: logits}
    return {head: value for head, value in logits.items() if head != CLASS_LOGITS}


def class_logits(logits) -> jax.Array | None:
    """The logits `[N, 2K]` of D's own classifier in D's output (`layers.class_head`), or None."""
    return logits.get(CLASS_LOGITS) if isinstance(logits, Mapping) else None


def metric_name(base: str, head: str) -> str:
    """`d/loss` for the single head, `d/loss/<head>` for a named one."""
    return base if head == _SINGLE_HEAD else f"{base}/{head}"


class BatchNoise:
    """Random numbers with one row per sample of the batch, following the batch's sharding.

    Under `jit` the draw is over the global batch, constrained to `data_sharding`; under `pmap`
    each device draws the global batch's numbers and keeps its own rows, so both forms (and any
    device count) see the same numbers. Each call of `uniform` / `normal` takes a new subkey.
    """

    def __init__(
        self,
        key: jax.Array,
        num: int,
        data_sharding: jax.sharding.Sharding | None,
        axis_name: str | None,
    ):
        self.key = key
        self.num = num
        self.data_sharding = data_sharding
        self.axis_name = axis_name
        self._calls = 0

    def draw(self, sampler: Callable, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
        """`sampler(key, (num, *shape))` for this device's (or the mesh's) batch."""
        if self.axis_name is None:
            x = sampler(key, (self.num, *shape))
            if self.data_sharding is not None:
                x = lax.with_sharding_constraint(x, self.data_sharding)
            return x
        devices = lax.psum(1, self.axis_name)
        x = sampler(key, (self.num * devices, *shape))
        return lax.dynamic_slice_in_dim(x, lax.axis_index(self.axis_name) * self.num, self.num)

    def _next_key(self) -> jax.Array:
        self._calls += 1
        return jax.random.fold_in(self.key, self._calls)

    def uniform(self, shape: tuple[int, ...] = ()) -> jax.Array:
        return self.draw(jax.random.uniform, self._next_key(), tuple(shape))

    def normal(self, shape: tuple[int, ...] = ()) -> jax.Array:
        return self.draw(jax.random.normal, self._next_key(), tuple(shape))


def split_augment_state(d_stats: Mapping) -> tuple[Mapping, dict | None]:
    """`(D's own collections, ADA's state or None)`: ADA's p rides in `d_stats` under
    `augment.STATE_KEY` (so states without it keep their tree), but D must not see it."""
    if augment.STATE_KEY not in d_stats:
        return d_stats, None
    rest = {name: value for name, value in d_stats.items() if name != augment.STATE_KEY}
    return rest, d_stats[augment.STATE_KEY]


def ema_step_size(cfg: StepConfig, step: jax.Array, batch_size) -> Any:
    """`1 - decay` of the EMA update after `step` steps of `batch_size` samples each."""
    if not cfg.ema_half_life:
        return 1.0 - cfg.ema_decay
    half_life = jnp.asarray(cfg.ema_half_life, jnp.float32)
    if cfg.ema_rampup:
        seen = step.astype(jnp.float32) * batch_size
        half_life = jnp.minimum(half_life, seen * cfg.ema_rampup)
    decay = 0.5 ** (batch_size / jnp.maximum(half_life, 1e-8))
    return 1.0 - decay


# D's update runs as one unit (below) where D's parameters take at least this many bytes.
_D_UPDATE_UNIT_BYTES = 16 * 2**20


def _update_d(d_tx, d_grads, d_opt, d_params, step: jax.Array):
    """D's optimiser update: (new d_params, new d_opt, the norm of `d_grads`).

    XLA:CPU's scheduler writes the new optimiser state last in the step, so a large D's
    gradients and a copy of its old moments stay alive through the whole G step (vs_pytorch's
    DCGAN at 16x64x64: 124 MiB of 1082). A conditional that is always taken makes the update
    one unit that completes before the G step reads the new parameters; the gradients' norm
    (a metric) is taken inside it, since taken outside it kept D's gradients alive to the
    step's end (42 MiB of the G step's peak). A small D keeps the plain update: the unit's
    own fusions round Adam's arithmetic differently, and the recorded results of the shipped
    configs would move. So do GPUs and TPUs, whose schedulers differ and where a
    conditional waits for its predicate on the host.
    """

    def update(d_grads, d_opt, d_params):
        d_updates, d_opt = d_tx.update(d_grads, d_opt, d_params)
        return optax.apply_updates(d_params, d_updates), d_opt, optax.tree.norm(d_grads)

    d_bytes = sum(x.nbytes for x in jax.tree.leaves(d_params))
    if d_bytes < _D_UPDATE_UNIT_BYTES or jax.default_backend() != "cpu":
        return update(d_grads, d_opt, d_params)

    def keep(d_grads, d_opt, d_params):
        return d_params, d_opt, optax.tree.norm(d_grads)

    return lax.cond(step >= 0, update, keep, d_grads, d_opt, d_params)


# D's real and fake passes take their gradients one after the other (below) where the real
# clips of one D update take at least this many bytes (vs_pytorch's 16x32x32 clips, batch 32:
# 6 MiB; the main job's: 3 MiB), and with penalties at least the second size: their gradients
# then join the two passes' in another order, and the bits of a shipped config would move
# (bouncing_shapes_long's: 6 MiB with R1).
_D_PASSES_APART_BYTES = 4 * 2**20
_D_PASSES_APART_PENALISED_BYTES = 16 * 2**20


def _passes_apart(loss, d_classifier_weight: float, penalised: bool, real: jax.Array) -> bool:
    """Whether D's update takes the gradients of its real and fake passes one after the other.

    With both passes differentiated together, XLA:CPU runs both forward passes before either
    backward pass, so it keeps what the kernel gradients of both need (the Winograd-transformed
    inputs of the wide layers). A loss that is a sum of a real term and a fake term
    (`Loss.d_separable`) lets the real pass finish its backward pass before G and the fake
    pass start: vs_pytorch's DCGAN at 16x64x64 peaks at 535 MiB in D's update instead of 704.
    Without penalties the gradients are the same bits either way (each is the same sum of the
    same two terms). D's own classifier (which needs both passes' logits in one loss) keeps
    the joint form, and so do small inputs, where there is little to gain. GPUs and TPUs,
    whose schedulers differ, keep it too.
    """
    limit = _D_PASSES_APART_PENALISED_BYTES if penalised else _D_PASSES_APART_BYTES
    return (
        getattr(loss, "d_separable", False)
        and not d_classifier_weight
        and real.nbytes >= limit
        and jax.default_backend() == "cpu"
    )


def make_train_step(
    g: nn.Module,
    d: nn.Module,
    g_tx: optax.GradientTransformation,
    d_tx: optax.GradientTransformation,
    cfg: StepConfig = StepConfig(),
    *,
    objective: Objective | None = None,
    data_sharding: jax.sharding.Sharding | None = None,
    axis_name: str | None = None,
) -> Callable[[GANState, Batch, jax.Array], tuple[GANState, Metrics]]:
    """Builds the pure train step.

    Args:
        g: generator with `latent_shapes`; `(latents, cond, train=)` -> samples `[N, ...]`.
        d: discriminator; `(x, cond, train=)` -> logits `[N]` or a dict of heads.
        g_tx, d_tx: optimisers of G and D.
        cfg: `StepConfig`.
        objective: what G consumes and D judges (`gan_jax.objectives`); default
            `Unconditional("video")`: real clips from `batch["video"]`, no conditioning.
        data_sharding: sharding of batch-major arrays (`NamedSharding(mesh, P("data"))`); noise
            drawn in the step is constrained to it. None on one device or under `pmap`.
        axis_name: set to the `pmap` axis name to get the per-device body of a `pmap` step.

    Returns:
        `train_step(state, batch, key) -> (state, metrics)` where `batch` is the whole batch
        (the global batch under `jit`, the device's share under `pmap`), `key` is the run's
        base PRNG key, and metrics is a flat dict of float32 scalars (see the module docstring).
    """
    g = _with_axis_name(g, axis_name)
    d = _with_axis_name(d, axis_name)
    objective = Unconditional() if objective is None else objective
    loss = LOSSES.get(cfg.loss)
    penalties = [(name, PENALTIES.get(name), weight) for name, weight in cfg.penalties]
    every = cfg.penalty_every
    adversarial_weight = float(getattr(objective, "adversarial_weight", 1.0))
    d_classifier_weight = float(getattr(objective, "d_classifier_weight", 0.0))
    g_classifier_weight = float(getattr(objective, "g_classifier_weight", 0.0))

    def mean_over_devices(tree: Any) -> Any:
        return tree if axis_name is None else lax.pmean(tree, axis_name)

    def latents(key: jax.Array, num: int):
        noise = BatchNoise(key, num, data_sharding, axis_name)
        return draw_latents(key, g.latent_shapes, lambda k, s: noise.draw(jax.random.normal, k, s))

    def apply_g(g_params, g_stats, z, cond):
        """G in train mode: (samples, updated stats)."""
        variables = {"params": g_params, **g_stats}
        g_cond = objective.g_inputs(cond)
        if not g_stats:
            return g.apply(variables, z, g_cond, train=True), g_stats
        return g.apply(variables, z, g_cond, train=True, mutable=list(g_stats))

    def apply_d(d_params, d_stats, x, d_cond):
        """D in train mode: (logits, updated stats)."""
        variables = {"params": d_params, **d_stats}
        if not d_stats:
            return d.apply(variables, x, d_cond, train=True), d_stats
        return d.apply(variables, x, d_cond, train=True, mutable=list(d_stats))

    def weighted(value: jax.Array, weight: float) -> jax.Array:
        return value if weight == 1.0 else weight * value

    def class_cross_entropy(d_params, d_stats, x, labels) -> tuple[jax.Array, jax.Array]:
        """The classifier a projection D implies (as in P2GAN, Han et al. 2021): the softmax
        over the classes of D's logit of `x` under each label (D's label-free part cancels),
        scored against `labels` `[N]`: (cross-entropy, accuracy). One D pass per class of
        `objective.labels`; the heads' logits are averaged per clip and weighted."""
        n = x.shape[0]
        per_class = []
        for label in objective.labels:  # static and few: one D pass each
            heads = as_heads(apply_d(d_params, d_stats, x, jnp.full((n,), label, jnp.int32))[0])
            per_class.append(
                sum(
                    weighted(h.reshape(n, -1).mean(axis=1), cfg.head_weight(head))
                    for head, h in heads.items()
                )
            )
        logits = jnp.stack(per_class, axis=-1)  # [N, K]
        target = labels[:, None] == jnp.asarray(objective.labels, jnp.int32)[None, :]
        ce = jnp.mean(optax.softmax_cross_entropy(logits, target.astype(jnp.float32)))
        accuracy = jnp.mean(
            jnp.sum(jax.nn.one_hot(jnp.argmax(logits, -1), logits.shape[-1]) * target, -1)
        )
        return ce, accuracy

    def own_class_cross_entropy(logits, labels, side) -> tuple[jax.Array, jax.Array]:
        """Cross-entropy of D's own classifier's logits `[N, 2K]` against `labels` `[N]` as
        real (`side` 0) or fake (1) classes, and its accuracy over the K real classes."""
        k = logits.shape[-1] // 2
        ce = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels + side * k))
        accuracy = jnp.mean((jnp.argmax(logits[:, :k], -1) == labels).astype(jnp.float32))
        return ce, accuracy

    def augmented(x: jax.Array, key: jax.Array, which: int, p) -> jax.Array:
        """D's input `x` augmented with the streams of `key` (an update's key) for `which`
        (`_REAL` or `_FAKE`); `x` itself when augmentation is off."""
        if not cfg.augment.enabled:
            return x
        key = jax.random.fold_in(jax.random.fold_in(key, _AUGMENT_STREAM), which)
        noise = BatchNoise(key, x.shape[0], data_sharding, axis_name)

        def uniform(op: str, k: int) -> jax.Array:  # [N, k], one stream per operation
            op_key = jax.random.fold_in(key, augment.OPS.index(op))
            return noise.draw(jax.random.uniform, op_key, (k,))

        return augment.augment(x, cfg.augment, p, uniform)

    def d_loss_and_metrics(real_heads, fake_heads) -> tuple[jax.Array, Metrics]:
        """D's loss summed over the heads, weighted, and its per-head metrics."""
        unknown = sorted(set(dict(cfg.head_weights)) - set(real_heads))
        if unknown:
            raise ValueError(
                f"head_weights name D heads {unknown} that D does not return; its heads: "
                f"{sorted(h for h in real_heads if h)}"
            )
        metrics, total = {}, None
        for head in real_heads:
            r, f = real_heads[head], fake_heads[head]
            head_loss = loss.d_loss(r, f)
            term = weighted(head_loss, cfg.head_weight(head))
            total = term if total is None else total + term
            metrics[metric_name("d/loss", head)] = head_loss
            metrics[metric_name("d/real_logit", head)] = jnp.mean(r)
            metrics[metric_name("d/fake_logit", head)] = jnp.mean(f)
            # The article's "discriminator accuracy": real judged real, fake judged fake.
            metrics[metric_name("d/real_acc", head)] = jnp.mean((r > 0).astype(jnp.float32))
            metrics[metric_name("d/fake_acc", head)] = jnp.mean((f < 0).astype(jnp.float32))
        metrics["d/loss"] = total
        return total, metrics

    def add_penalties(
        total, metrics, d_params, d_stats, real_x, fake_x, d_cond, heads, key, update
    ):
        """`total` plus the weighted penalties of every head; their values go into `metrics`."""

        def head_fn(head):  # penalties: D with the current statistics, not updating them
            def d_fn(x):
                return as_heads(apply_d(d_params, d_stats, x, d_cond)[0])[head]

            return d_fn

        n = real_x.shape[0]
        for j, (name, penalty, weight) in enumerate(penalties):
            for head in heads:
                noise = BatchNoise(jax.random.fold_in(key, j), n, data_sharding, axis_name)
                compute = lambda h=head, noise=noise, p=penalty: p.fn(  # noqa: E731
                    head_fn(h), real_x, fake_x, noise
                )
                if every == 1:
                    value = compute()
                else:  # lazy: every k-th D update, weight times k
                    value = lax.cond(update % every == 0, compute, lambda: jnp.zeros(()))
                coefficient = penalty.scale * weight * cfg.head_weight(head) * every
                total = total + coefficient * value
                metrics[metric_name(f"d/{name}", head)] = value
        return total

    def d_objective(d_params, d_stats, g_params, g_stats, cond, real, key, update, p):
        z_key, penalty_key = jax.random.split(key)
        n = real.shape[0]
        # G's statistics are updated by the G step only.
        fake, _ = apply_g(g_params, g_stats, latents(z_key, n), cond)
        fake = lax.stop_gradient(fake)
        real_x, d_cond = objective.d_inputs(real, cond)
        fake_x, _ = objective.d_inputs(fake, cond)
        # Penalties below see these augmented inputs too (StyleGAN2-ADA: R1 on augmented reals).
        real_x = augmented(real_x, key, _REAL, p)
        fake_x = augmented(fake_x, key, _FAKE, p)
        real_logits, d_stats = apply_d(d_params, d_stats, real_x, d_cond)
        fake_logits, d_stats = apply_d(d_params, d_stats, fake_x, d_cond)
        real_heads, fake_heads = as_heads(real_logits), as_heads(fake_logits)
        total, metrics = d_loss_and_metrics(real_heads, fake_heads)
        real_classes = class_logits(real_logits)
        if d_classifier_weight and real_classes is not None:
            # D's own classifier (ADC-GAN): real clips as their class, G's as their fake class.
            ce, accuracy = own_class_cross_entropy(real_classes, d_cond, 0)
            fake_ce, _ = own_class_cross_entropy(class_logits(fake_logits), d_cond, 1)
            total = total + d_classifier_weight * (ce + fake_ce)
            metrics["d/class_loss"], metrics["d/class_acc"] = ce, accuracy
            metrics["d/fake_class_loss"] = fake_ce
        elif d_classifier_weight:  # D learns the classes of real clips
            ce, accuracy = class_cross_entropy(d_params, d_stats, real_x, d_cond)
            total = total + d_classifier_weight * ce
            metrics["d/class_loss"], metrics["d/class_acc"] = ce, accuracy
        if cfg.augment.enabled:  # ADA's overfitting heuristic, on the augmented reals
            metrics["aug/rt"] = augment.sign_rate(real_heads)
        penalty_inputs = (d_stats, real_x, fake_x, d_cond, real_heads, penalty_key, update)
        total = add_penalties(total, metrics, d_params, *penalty_inputs)
        metrics["d/total_loss"] = total
        return total, (d_stats, metrics)

    def d_grads_passes_apart(d_params, d_stats, g_params, g_stats, cond, real, key, update, p):
        """`value_and_grad(d_objective, has_aux=True)` for a separable loss and no D classifier,
        with the gradients of D's real pass taken before G's and D's fake pass run (see
        `_passes_apart`). Draws the same numbers as `d_objective`."""
        z_key, penalty_key = jax.random.split(key)
        n = real.shape[0]
        real_x, d_cond = objective.d_inputs(real, cond)
        real_x = augmented(real_x, key, _REAL, p)

        def pass_loss(d_params, d_stats, x, which):
            # A separable loss's gradient in one side's logits is that of the loss with the
            # other side's logits held at zero.
            logits, d_stats = apply_d(d_params, d_stats, x, d_cond)
            heads, total = as_heads(logits), None
            for head, h in heads.items():
                zero = jnp.zeros_like(h)
                part = loss.d_loss(h, zero) if which == _REAL else loss.d_loss(zero, h)
                term = weighted(part, cfg.head_weight(head))
                total = term if total is None else total + term
            return total, (d_stats, heads)

        pass_grads = jax.value_and_grad(pass_loss, has_aux=True)
        (_, (d_stats, real_heads)), real_grads = pass_grads(d_params, d_stats, real_x, _REAL)
        # G's latents depend on every gradient of the real pass (`ops.blocks.after`), so XLA
        # cannot run G and the fake pass before the real pass's backward pass is done.
        done = sum(jnp.max(leaf) for leaf in jax.tree.leaves(real_grads))
        z = jax.tree.map(lambda z: blk.after(z, done), latents(z_key, n))
        fake = lax.stop_gradient(apply_g(g_params, g_stats, z, cond)[0])
        fake_x, _ = objective.d_inputs(fake, cond)
        fake_x = augmented(fake_x, key, _FAKE, p)
        (_, (d_stats, fake_heads)), fake_grads = pass_grads(d_params, d_stats, fake_x, _FAKE)
        d_grads = jax.tree.map(jnp.add, real_grads, fake_grads)
        total, metrics = d_loss_and_metrics(real_heads, fake_heads)
        if cfg.augment.enabled:  # ADA's overfitting heuristic, on the augmented reals
            metrics["aug/rt"] = augment.sign_rate(real_heads)
        if penalties:
            penalty_inputs = (d_stats, real_x, fake_x, d_cond, real_heads, penalty_key, update)

            def penalty_total(d_params):
                pen_metrics = {}
                value = add_penalties(
                    jnp.zeros((), jnp.float32), pen_metrics, d_params, *penalty_inputs
                )
                return value, pen_metrics

            (value, pen_metrics), pen_grads = jax.value_and_grad(penalty_total, has_aux=True)(
                d_params
            )
            d_grads = jax.tree.map(jnp.add, d_grads, pen_grads)
            total = total + value
            metrics.update(pen_metrics)
        metrics["d/total_loss"] = total
        return (total, (d_stats, metrics)), d_grads

    def g_objective(g_params, g_stats, d_params, d_stats, cond, real, key, p):
        fake, g_stats = apply_g(g_params, g_stats, latents(key, real.shape[0]), cond)
        fake_x, d_cond = objective.d_inputs(fake, cond)
        fake_x = augmented(fake_x, key, _FAKE, p)  # differentiable: G learns through it
        # D's statistics are updated by the D step only.
        fake_logits = apply_d(d_params, d_stats, fake_x, d_cond)[0]
        fake_heads = as_heads(fake_logits)
        real_heads = dict.fromkeys(fake_heads)
        if loss.g_needs_real:  # relativistic losses compare with D(real)
            real_x, _ = objective.d_inputs(real, cond)
            real_x = augmented(real_x, key, _REAL, p)
            real_heads = as_heads(lax.stop_gradient(apply_d(d_params, d_stats, real_x, d_cond)[0]))
        metrics, total = {}, None
        for head, f in fake_heads.items():
            head_loss = loss.g_loss(real_heads[head], f)
            term = weighted(head_loss, cfg.head_weight(head))
            total = term if total is None else total + term
            metrics[metric_name("g/loss", head)] = head_loss
        metrics["g/loss"] = total
        if adversarial_weight != 1.0:  # 0: a regression baseline, D trained beside it
            total = adversarial_weight * total
        terms = objective.g_terms(fake, real, cond)
        fake_classes = class_logits(fake_logits)
        if g_classifier_weight and fake_classes is not None:
            # ADC-GAN: G's clips read as real clips of their class, not as G's clips of it.
            ce, accuracy = own_class_cross_entropy(fake_classes, d_cond, 0)
            fake_ce, _ = own_class_cross_entropy(fake_classes, d_cond, 1)
            terms = {**terms, "class_loss": g_classifier_weight * (ce - fake_ce)}
            metrics["g/class_acc"] = accuracy
        elif g_classifier_weight:  # G's clips should be read as the class asked for
            ce, accuracy = class_cross_entropy(d_params, d_stats, fake_x, d_cond)
            terms = {**terms, "class_loss": g_classifier_weight * ce}
            metrics["g/class_acc"] = accuracy
        for name, value in terms.items():
            total = total + value
            metrics[f"g/{name}"] = value
        if terms:
            metrics["g/total_loss"] = total
        return total, (g_stats, metrics)

    def train_step(state: GANState, batch: Batch, key: jax.Array) -> tuple[GANState, Metrics]:
        cond, real = objective.split(batch)
        key = jax.random.fold_in(key, state.step)
        d_key, g_key = jax.random.split(key)
        d_stats, ada_state = split_augment_state(state.d_stats)
        if cfg.augment.adaptive and ada_state is None:
            raise ValueError(
                "augment.ada_target > 0 but the state holds no ADA state (d_stats"
                f"[{augment.STATE_KEY!r}]): create it with create_state(..., augment=cfg.augment)"
            )
        p = ada_state["p"] if cfg.augment.adaptive else cfg.augment.p
        rates = []

        d_params, d_opt = state.d_params, state.d_opt
        for i in range(cfg.n_critic):  # unrolled: n_critic is small and static
            update = state.step * cfg.n_critic + i
            d_grads_of = jax.value_and_grad(d_objective, has_aux=True)
            if _passes_apart(loss, d_classifier_weight, bool(penalties), real):
                d_grads_of = d_grads_passes_apart
            (_, (d_stats, d_metrics)), d_grads = d_grads_of(
                d_params,
                d_stats,
                state.g_params,
                state.g_stats,
                cond,
                real,
                jax.random.fold_in(d_key, i),
                update,
                p,
            )
            if cfg.augment.enabled:
                rates.append(d_metrics.pop("aug/rt"))
            d_grads, d_stats = mean_over_devices((d_grads, d_stats))
            d_params, d_opt, d_grad_norm = _update_d(d_tx, d_grads, d_opt, d_params, state.step)

        # Alternating updates: G trains against the D just updated.
        (_, (g_stats, g_metrics)), g_grads = jax.value_and_grad(g_objective, has_aux=True)(
            state.g_params, state.g_stats, d_params, d_stats, cond, real, g_key, p
        )
        g_grads, g_stats = mean_over_devices((g_grads, g_stats))
        g_updates, g_opt = g_tx.update(g_grads, state.g_opt, state.g_params)
        g_params = optax.apply_updates(state.g_params, g_updates)
        batch_size = real.shape[0] * (1 if axis_name is None else lax.psum(1, axis_name))
        step_size = ema_step_size(cfg, state.step, batch_size)
        g_ema = optax.incremental_update(g_params, state.g_ema, step_size=step_size)

        metrics = {
            **d_metrics,
            **g_metrics,
            "grad_norm/d": d_grad_norm,
            "grad_norm/g": optax.tree.norm(g_grads),
        }
        if cfg.augment.enabled:
            metrics["aug/p"] = jnp.asarray(p, jnp.float32)
            metrics["aug/rt"] = sum(rates[1:], rates[0]) / len(rates)
        metrics = mean_over_devices(metrics)
        if cfg.augment.adaptive:  # after the metrics' mean: r_t of the whole batch
            ada_state = augment.ada_update(
                ada_state, metrics["aug/rt"], state.step, batch_size, cfg.augment
            )
        if ada_state is not None:
            d_stats = {**d_stats, augment.STATE_KEY: ada_state}
        new_state = state.replace(
            step=state.step + 1,
            g_params=g_params,
            d_params=d_params,
            g_opt=g_opt,
            d_opt=d_opt,
            g_ema=g_ema,
            g_stats=g_stats,
            d_stats=d_stats,
        )
        return new_state, metrics

    return train_step
