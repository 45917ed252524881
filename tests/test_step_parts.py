"""The train step drives the parts: D heads, conditioning from the whole batch, relativistic G
losses, lazy penalties, the EMA's half-life. Tiny hand-made modules keep the numbers checkable."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import Labelled

from gan_jax.losses import PENALTIES, Penalty
from gan_jax.state import create_state
from gan_jax.train_step import StepConfig, make_train_step

CLIP = (3, 2, 2, 1)  # T, H, W, C
N = 4


class ConstantG(nn.Module):
    """A G that ignores its noise: every sample is the learned clip `c` (plus a label row)."""

    num_classes: int = 0

    @property
    def latent_shapes(self):
        return {"z": (2,)}

    @nn.compact
    def __call__(self, latents, cond=None, train=True):
        c = self.param("c", nn.initializers.constant(0.3), CLIP)
        x = jnp.broadcast_to(c, (latents["z"].shape[0], *CLIP))
        if self.num_classes:
            emb = self.param("emb", nn.initializers.zeros, (self.num_classes,))
            x = x + emb[cond].reshape(-1, 1, 1, 1, 1)
        return x


class MeanD(nn.Module):
    """`w * mean(x) + b`; with `heads`, also an image head `[N * T]` on per-frame means."""

    heads: bool = False
    num_classes: int = 0

    @nn.compact
    def __call__(self, x, cond=None, train=True):
        w = self.param("w", nn.initializers.constant(0.5), ())
        b = self.param("b", nn.initializers.zeros, ())
        video = w * jnp.mean(x, axis=(1, 2, 3, 4)) + b
        if self.num_classes:
            video = (
                video + self.param("label_bias", nn.initializers.zeros, (self.num_classes,))[cond]
            )
        if not self.heads:
            return video
        v = self.param("v", nn.initializers.constant(-0.25), ())
        image = v * jnp.mean(x, axis=(2, 3, 4)).reshape(-1)
        return {"video": video, "image": image}


def _real(seed=0):
    return jnp.asarray(np.random.default_rng(seed).uniform(-1, 1, (N, *CLIP)), jnp.float32)


def _run(g, d, cfg, batch, objective=None, lr=0.1, steps=1):
    g_tx, d_tx = optax.sgd(lr), optax.sgd(lr)
    example = {k: np.asarray(v) for k, v in batch.items()}
    init = jax.jit(
        lambda k: create_state(k, g, d, g_tx, d_tx, objective=objective, example_batch=example)
    )
    state = init(jax.random.key(0))
    step = jax.jit(make_train_step(g, d, g_tx, d_tx, cfg, objective=objective))
    history = []
    for _ in range(steps):
        state, metrics = step(state, batch, jax.random.key(1))
        history.append(jax.device_get(metrics))
    return state, history


def _softplus(x):
    return np.logaddexp(0.0, x)


def test_heads_are_weighted_and_named_per_head():
    cfg = StepConfig(head_weights={"image": 0.5}, penalties={"r1": 2.0})
    _, (metrics,) = _run(ConstantG(), MeanD(heads=True), cfg, {"video": _real()})
    for name in ("d/loss", "d/real_acc", "d/fake_logit", "d/r1", "g/loss"):
        assert f"{name}/image" in metrics and f"{name}/video" in metrics, name
    np.testing.assert_allclose(
        metrics["d/loss"], 0.5 * metrics["d/loss/image"] + metrics["d/loss/video"], rtol=1e-6
    )
    np.testing.assert_allclose(
        metrics["g/loss"], 0.5 * metrics["g/loss/image"] + metrics["g/loss/video"], rtol=1e-6
    )
    # R1 per head, weighted by gamma / 2 and the head's weight.
    expected_total = metrics["d/loss"] + 0.5 * 2.0 * (
        0.5 * metrics["d/r1/image"] + metrics["d/r1/video"]
    )
    np.testing.assert_allclose(metrics["d/total_loss"], expected_total, rtol=1e-6)
    # The video head's R1 by hand: D = w mean(x) + b, so |grad|^2 = w^2 / size per sample.
    size = np.prod(CLIP)
    np.testing.assert_allclose(metrics["d/r1/video"], 0.5**2 / size, rtol=1e-5)


def test_unknown_head_weight_is_an_error():
    with pytest.raises(ValueError, match=r"head_weights name D heads \['audio'\]"):
        _run(
            ConstantG(),
            MeanD(heads=True),
            StepConfig(head_weights={"audio": 1.0}),
            {"video": _real()},
        )


def test_the_whole_batch_reaches_the_objective_and_g_terms_are_added():
    batch = {"video": _real(), "label": jnp.full((N,), 1, jnp.int32)}
    g, d = ConstantG(num_classes=3), MeanD(num_classes=3)
    state, (metrics,) = _run(g, d, StepConfig(), batch, objective=Labelled(mse_weight=0.1))
    # Only label 1 was seen: only its rows of G's embedding and D's label bias moved.
    emb = np.asarray(state.g_params["emb"])
    bias = np.asarray(state.d_params["label_bias"])
    assert emb[1] != 0 and bias[1] != 0
    assert emb[0] == emb[2] == 0 and bias[0] == bias[2] == 0
    # G's extra term is logged and added to its loss.
    assert metrics["g/mean_sq"] > 0
    np.testing.assert_allclose(
        metrics["g/total_loss"], metrics["g/loss"] + metrics["g/mean_sq"], rtol=1e-6
    )


def test_relativistic_g_loss_pairs_with_real_logits_of_the_updated_d():
    real = _real(3)
    lr = 0.5
    _, (metrics,) = _run(ConstantG(), MeanD(), StepConfig(loss="rpgan"), {"video": real}, lr=lr)
    # By hand: fake mean mf = 0.3 for every sample, real means mr_i; D(x) = w mean(x) + b.
    mr = np.asarray(real, np.float64).mean(axis=(1, 2, 3, 4))
    mf, w0 = 0.3, 0.5
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    # D minimises mean softplus(w (mf - mr)); b cancels out of the pairing.
    d_loss = np.mean(_softplus(w0 * (mf - mr)))
    w1 = w0 - lr * np.mean(sigmoid(w0 * (mf - mr)) * (mf - mr))
    np.testing.assert_allclose(metrics["d/loss"], d_loss, rtol=1e-5)
    # G minimises mean softplus(D(real) - D(fake)) under the updated D (w1, not w0).
    g_loss = np.mean(_softplus(w1 * (mr - mf)))
    np.testing.assert_allclose(metrics["g/loss"], g_loss, rtol=1e-5)
    assert abs(np.mean(_softplus(w0 * (mr - mf))) - g_loss) > 1e-3  # w0 would differ


@pytest.fixture
def constant_penalty():
    PENALTIES.register("test_one", Penalty(lambda d_fn, real, fake, noise: jnp.ones(()), 1.0))
    yield "test_one"
    PENALTIES.unregister("test_one")


def test_lazy_penalties_run_every_kth_d_update_with_k_times_the_weight(constant_penalty):
    cfg = StepConfig(penalties={constant_penalty: 0.25}, penalty_every=3, n_critic=2)
    _, history = _run(ConstantG(), MeanD(), cfg, {"video": _real()}, steps=3)
    # D updates 0..5; the metrics show each step's last D update: 1, 3, 5 -> on at 3 only.
    values = [float(m[f"d/{constant_penalty}"]) for m in history]
    assert values == [0.0, 1.0, 0.0]
    extra = [float(m["d/total_loss"] - m["d/loss"]) for m in history]
    np.testing.assert_allclose(extra, [0.0, 0.25 * 3, 0.0], atol=1e-6)


def test_ema_half_life_in_samples():
    half_life = 10.0
    g_tx = optax.sgd(0.1)
    g, d = ConstantG(), MeanD()
    cfg = StepConfig(ema_half_life=half_life)
    state0 = create_state(jax.random.key(0), g, d, g_tx, g_tx)
    state1, _ = _run(g, d, cfg, {"video": _real()})
    beta = 0.5 ** (N / half_life)
    c0, c1 = np.asarray(state0.g_params["c"]), np.asarray(state1.g_params["c"])
    np.testing.assert_allclose(state1.g_ema["c"], beta * c0 + (1 - beta) * c1, rtol=1e-6)
