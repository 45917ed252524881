"""Model families, found by name (`cfg.g.name`, `cfg.d.name`), and G's latent contract.

A model family is one module (`gan_jax/models/<name>.py`, or any module given by path, or an
object registered with `FAMILIES.register`) that defines, for the nets it offers:

* `g_config()` / `d_config()`: the net's keys with defaults (its group in the run config also
  holds `name` and the optimiser's keys, `gan_jax.optim`);
* `validate_g(g_cfg, spec)` / `validate_d(d_cfg, spec)`: raise `ValueError` naming the key
  (`g.depth`) when the net cannot be built for the data `spec` (`gan_jax.data.spec.DataSpec`);
* `make_generator(g_cfg, spec)` / `make_discriminator(d_cfg, spec)`: Flax modules.

G and D may come from different families. The modules' contract:

* G has `latent_shapes`, a pytree of per-sample shapes (`{"z": (128,)}`, or
  `{"content": (64,), "motion": (T, 16)}`), and is called `g.apply(v, latents, cond, train=)`
  with latents of those shapes behind a batch axis `[N, ...]` and `cond` from the objective
  (None when unconditional); it returns samples `[N, ...]` (clips `[N, T, H, W, C]`).
* D is called `d.apply(v, x, cond, train=)` and returns logits: an array `[N]` (or `[M]`), or
  a dict of heads (`{"image": [N * T], "video": [N]}`) that losses and metrics go over.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from ml_collections import config_dict

from gan_jax.config import fill_missing
from gan_jax.data.spec import DataSpec
from gan_jax.registry import Registry, require

_G_FUNCTIONS = ("g_config", "validate_g", "make_generator")
_D_FUNCTIONS = ("d_config", "validate_d", "make_discriminator")

FAMILIES = Registry(
    "model family",
    "gan_jax.models",
    None,
    is_part=lambda module: any(
        callable(getattr(module, name, None)) for name in ("make_generator", "make_discriminator")
    ),
)


def family(name: str, net: str):
    """The family `name`, checked to offer net `net` ("g" or "d")."""
    part = FAMILIES.get(name)
    require(f"model family (for {net})", name, part, _G_FUNCTIONS if net == "g" else _D_FUNCTIONS)
    return part


def net_config(name: str, net: str) -> config_dict.ConfigDict:
    """The model keys of net `net` of family `name`, with `name` set."""
    fam = family(name, net)
    cfg = fam.g_config() if net == "g" else fam.d_config()
    with cfg.unlocked():
        cfg.name = name
    return cfg


def validate_net(net_cfg: config_dict.ConfigDict, net: str, spec: DataSpec) -> None:
    """Checks `net_cfg` against its family, after adding (in place) the family's keys that it
    lacks with their defaults: a run's config saved before a key existed (e.g. `dtype`)."""
    fam = family(net_cfg.name, net)
    fill_missing(net_cfg, net_config(net_cfg.name, net))
    (fam.validate_g if net == "g" else fam.validate_d)(net_cfg, spec)


def make_models(g_cfg: config_dict.ConfigDict, d_cfg: config_dict.ConfigDict, spec: DataSpec):
    """`(g, d)` Flax modules from `cfg.g` and `cfg.d` (each from its own family)."""
    g = family(g_cfg.name, "g").make_generator(g_cfg, spec)
    d = family(d_cfg.name, "d").make_discriminator(d_cfg, spec)
    if not hasattr(g, "latent_shapes"):
        raise TypeError(f"the generator of family {g_cfg.name!r} has no latent_shapes")
    return g, d


def _is_shape(x) -> bool:
    return isinstance(x, tuple) and all(isinstance(n, int) for n in x)


def latent_leaves(latent_shapes) -> tuple[list[tuple[int, ...]], jax.tree_util.PyTreeDef]:
    """The per-sample shapes of G's latents in tree order, and their tree structure."""
    return jax.tree.flatten(latent_shapes, is_leaf=_is_shape)


def draw_latents(key: jax.Array, latent_shapes, draw):
    """G's latents from one key: `draw(key, shape) -> [N, *shape]` for each latent.

    A single latent is drawn from `key` itself; several from `jax.random.split(key, n)` in
    tree order. `draw` fixes the batch size and the sharding (see the train step and sampler).
    """
    shapes, tree = latent_leaves(latent_shapes)
    keys = [key] if len(shapes) == 1 else list(jax.random.split(key, len(shapes)))
    return jax.tree.unflatten(tree, [draw(k, shape) for k, shape in zip(keys, shapes)])


def zero_latents(latent_shapes, num: int):
    """Zeros shaped like G's latents for `num` samples (for `init`)."""
    shapes, tree = latent_leaves(latent_shapes)
    return jax.tree.unflatten(tree, [jnp.zeros((num, *shape), jnp.float32) for shape in shapes])
