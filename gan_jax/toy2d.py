"""Training loop for the 2-D mixture toy: the whole run is one compiled `lax.scan`.

The data are drawn inside the compiled loop (`points.sample_points`), so a ring or grid run
takes seconds to minutes on a CPU. The step is the library's `make_train_step`, unchanged.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax.data.points import sample_points
from gan_jax.metrics.mode_coverage import NUM_EVAL_SAMPLES, mode_coverage
from gan_jax.models.mlp import MLPDiscriminator, MLPGenerator
from gan_jax.state import GANState, create_state
from gan_jax.train_step import StepConfig, make_train_step


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    """A 2-D mixture run. Defaults are the plain non-saturating GAN."""

    dataset: str = "ring"
    steps: int = 10_000
    batch_size: int = 256
    z_dim: int = 2
    g_hidden: int = 128
    g_depth: int = 3
    d_hidden: int = 128
    d_depth: int = 3
    d_pack: int = 1
    g_lr: float = 2e-4
    d_lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    step: StepConfig = StepConfig(data_key="points", ema_decay=0.999)


def build(cfg: ToyConfig):
    """Models and optimisers of a toy run: `(g, d, g_tx, d_tx)`."""
    g = MLPGenerator(z_dim=cfg.z_dim, hidden=cfg.g_hidden, depth=cfg.g_depth)
    d = MLPDiscriminator(hidden=cfg.d_hidden, depth=cfg.d_depth, pack=cfg.d_pack)
    g_tx = optax.adam(cfg.g_lr, b1=cfg.betas[0], b2=cfg.betas[1])
    d_tx = optax.adam(cfg.d_lr, b1=cfg.betas[0], b2=cfg.betas[1])
    return g, d, g_tx, d_tx


def train_toy(cfg: ToyConfig, seed: int) -> tuple[GANState, dict[str, float]]:
    """Trains a toy GAN from `seed` and evaluates it.

    Returns:
        The final state and `mode_coverage` of `NUM_EVAL_SAMPLES` samples from the EMA generator
        (plus the last step's losses).
    """
    g, d, g_tx, d_tx = build(cfg)
    step_fn = make_train_step(g, d, g_tx, d_tx, cfg.step)
    root = jax.random.key(seed)
    init_key, data_key, step_key, eval_key = jax.random.split(root, 4)

    @jax.jit
    def run(init_key):
        state = create_state(init_key, g, d, g_tx, d_tx)

        def body(state, i):
            real = sample_points(jax.random.fold_in(data_key, i), cfg.batch_size, cfg.dataset)
            return step_fn(state, {cfg.step.data_key: real}, step_key)

        state, metrics = jax.lax.scan(body, state, jnp.arange(cfg.steps))
        z = jax.random.normal(eval_key, (NUM_EVAL_SAMPLES, cfg.z_dim))
        samples = g.apply({"params": state.g_ema}, z, train=False)
        return state, jax.tree.map(lambda m: m[-1], metrics), samples

    state, last_metrics, samples = run(init_key)
    result = mode_coverage(np.asarray(samples), cfg.dataset)
    result.update({k: float(v) for k, v in last_metrics.items()})
    return state, result
