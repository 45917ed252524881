"""What a loss and a penalty are, and the registries that find them by name.

A **loss** is a pair of pure functions of D's logits, `d_loss(real_logits, fake_logits)` and
`g_loss(real_logits, fake_logits)`, each returning a float32 scalar averaged over the batch;
logits are `[M]` (one per sample, or per frame for an image head). `g_needs_real` says whether
`g_loss` reads `real_logits` (relativistic losses): the train step computes D(real) in G's
update only then, and passes None otherwise.

A **penalty** is `fn(d_fn, real, fake, noise) -> scalar`, where `d_fn` maps D's input `[N, ...]`
to the logits `[M]` of one head (parameters, conditioning and statistics bound), `real` and
`fake` are D's inputs, and `noise` draws batch-shaped random numbers that follow the batch's
sharding (`noise.uniform(())` is `[N]`). The D loss adds `scale * weight * value`, with the
weight from the config (`penalty.r1`, ...).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol

import jax

from gan_jax.registry import Registry, require

Array = jax.Array


class Noise(Protocol):
    """Random numbers with one row per sample of the batch, sharded like it."""

    def uniform(self, shape: tuple[int, ...] = ()) -> Array:
        """`[N, *shape]` uniform in [0, 1)."""

    def normal(self, shape: tuple[int, ...] = ()) -> Array:
        """`[N, *shape]` standard normal."""


@dataclasses.dataclass(frozen=True)
class Loss:
    """An adversarial loss.

    Attributes:
        d_loss: `(real_logits [M], fake_logits [M]) -> scalar`, minimised by D.
        g_loss: `(real_logits [M] | None, fake_logits [M]) -> scalar`, minimised by G.
        g_needs_real: `g_loss` reads `real_logits` (else it gets None).
        d_separable: `d_loss(real, fake)` is a term in `real` plus a term in `fake` (not so
            for relativistic losses), so its gradient in `real` is that of
            `d_loss(real, zeros)`; the train step may then take the gradients of D's real
            and fake passes one after the other, which keeps less memory alive.
    """

    d_loss: Callable[[Array, Array], Array]
    g_loss: Callable[[Array | None, Array], Array]
    g_needs_real: bool = False
    d_separable: bool = False


@dataclasses.dataclass(frozen=True)
class Penalty:
    """A regulariser of D.

    Attributes:
        fn: `(d_fn, real, fake, noise) -> scalar` (see the module docstring).
        scale: the D loss adds `scale * weight * fn(...)`; R1 and R2 use 1/2, so that the
            config's weight is the papers' gamma (`gamma / 2 * E ||grad D||^2`).
    """

    fn: Callable[[Callable[[Array], Array], Array, Array, Noise], Array]
    scale: float = 1.0


def _check_loss(name: str, part) -> None:
    require("loss", name, part, ("d_loss", "g_loss", "g_needs_real"))


def _check_penalty(name: str, part) -> None:
    require("penalty", name, part, ("fn", "scale"))


LOSSES: Registry[Loss] = Registry("loss", "gan_jax.losses", "LOSS", _check_loss)
PENALTIES: Registry[Penalty] = Registry("penalty", "gan_jax.losses", "PENALTY", _check_penalty)
