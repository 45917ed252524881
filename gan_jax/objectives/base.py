"""What an objective is: what G is conditioned on, what D judges, and extra G terms.

An objective module (`gan_jax/objectives/<name>.py`, or any module given by path) defines

* `default_config() -> ConfigDict`: its keys under `cfg.objective` (with `name`);
* `validate(objective_cfg, spec)`: raises `ValueError` naming a bad key (`objective.context`);
* `make_objective(objective_cfg, spec) -> Objective`: the object the train step drives.

and may set `CONDITIONS_ON_LABELS = True` (False if absent): G and D are conditioned on class
labels, so both nets must come from families with a `conditional` key, set True (and no net
may set it True under an objective without this flag); `gan_jax.build.validate` checks it.

An `Objective` works on whole batches (every entry a dataset yields, `[N, ...]` each):

* `split(batch) -> (cond, real)`: `cond` is what G and D are conditioned on (None, labels
  `[N]`, context frames ...), `real` the real samples G's output imitates `[N, ...]`;
* `g_inputs(cond)`: what G receives next to its latents (`g.apply(v, latents, g_inputs)`);
* `d_inputs(samples, cond) -> (x, d_cond)`: what D judges, `d.apply(v, x, d_cond)`, for real and
  generated samples alike (for prediction: the context frames followed by the samples);
* `g_terms(fake, real, cond) -> {name: scalar}`: weighted terms G adds to its adversarial loss
  (an MSE on the future frames); logged as `g/<name>`;
* `adversarial_weight` (float attribute, 1 if absent): the weight of G's adversarial loss
  next to `g_terms` (0: a regression baseline);
* `d_classifier_weight`, `g_classifier_weight` (float attributes, 0 if absent) with `labels`
  (a tuple of class ids): the weights of the cross-entropy of D's implied classifier (D's
  logits of a clip under each of `labels`, softmaxed) for D on real clips and for G on its
  own (class-conditional runs);
* `sample_cond(key, num)`: a condition for `num` samples drawn without data (random labels),
  or None where G needs none;
* `conditions_from_data` (bool attribute, False if absent): G's conditions can only come from
  real data (context frames of a prediction): samples during training, `gan-jax sample` and
  evaluation then take them from real batches (`objective.split(batch)[0]`) instead of
  `sample_cond`;
* `clip(samples, cond)`: the clip a user is shown and metrics score, `[N, T, H, W, C]` for video.
"""

from __future__ import annotations

from typing import Any, Protocol

import jax

from gan_jax.registry import Registry, require

Cond = Any  # a pytree of arrays with a leading batch axis, or None


class Objective(Protocol):
    def split(self, batch: dict[str, jax.Array]) -> tuple[Cond, jax.Array]: ...

    def g_inputs(self, cond: Cond) -> Cond: ...

    def d_inputs(self, samples: jax.Array, cond: Cond) -> tuple[jax.Array, Cond]: ...

    def g_terms(self, fake: jax.Array, real: jax.Array, cond: Cond) -> dict[str, jax.Array]: ...

    def sample_cond(self, key: jax.Array, num: int) -> Cond: ...

    def clip(self, samples: jax.Array, cond: Cond) -> jax.Array: ...


_MODULE_FUNCTIONS = ("default_config", "validate", "make_objective")


def _check(name: str, part) -> None:
    require("objective", name, part, _MODULE_FUNCTIONS)


OBJECTIVES = Registry(
    "objective",
    "gan_jax.objectives",
    None,
    _check,
    is_part=lambda module: callable(getattr(module, "make_objective", None)),
)
