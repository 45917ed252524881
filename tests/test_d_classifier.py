"""D's own classifier (`d.classifier = True`, ADC-GAN): its logits beside D's heads in both
families, its terms in the train step (its settings are checked in test_class_conditional.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import jit_init
from test_class_conditional import CLIP, one_sgd_step

from gan_jax.models.mocogan import ImageVideoDiscriminator
from gan_jax.models.video_dcgan import VideoDiscriminator, VideoGenerator
from gan_jax.objectives.class_conditional import ClassConditional
from gan_jax.state import create_state
from gan_jax.train_step import StepConfig, as_heads, class_logits, make_train_step


@pytest.mark.parametrize("family", ["video_dcgan", "mocogan"])
def test_ds_classifier_gives_2k_logits_that_no_adversarial_head_judges(family):
    clip = (4, 8, 8, 3)
    if family == "video_dcgan":
        d = VideoDiscriminator(
            clip_shape=clip, base_width=4, depth=2, num_classes=3, classifier=True
        )
        heads = {""}
    else:
        d = ImageVideoDiscriminator(
            clip_shape=clip, base_width=4, depth=2, image_stride=2, num_classes=3, classifier=True
        )
        heads = {"image", "video"}
    clips = jax.random.uniform(jax.random.key(0), (2, *clip), minval=-1, maxval=1)
    labels = jnp.array([0, 2])
    d_vars = jit_init(d, 1, clips, labels)
    judge = jax.jit(lambda net, y: net.apply(d_vars, clips, y, train=False), static_argnums=0)
    output = judge(d, labels)
    assert set(as_heads(output)) == heads
    assert class_logits(output).shape == (2, 6)  # 3 classes of real clips, 3 of G's
    # The classifier reads the clip alone: another label moves the projection, not its logits.
    other = judge(d, jnp.array([1, 1]))
    np.testing.assert_array_equal(class_logits(other), class_logits(output))
    assert class_logits(judge(d.clone(classifier=False), labels)) is None


def test_ds_classifier_terms_combine_as_configured():
    g = VideoGenerator(clip_shape=CLIP, z_dim=4, base_width=4, depth=2, num_classes=3)
    d = VideoDiscriminator(
        clip_shape=CLIP, base_width=4, depth=2, norm="none", num_classes=3, classifier=True
    )
    objective = ClassConditional(
        num_classes=3, labels=(1, 2), d_classifier_weight=0.5, g_classifier_weight=2.0
    )
    clips = jax.random.uniform(jax.random.key(5), (8, *CLIP), minval=-1, maxval=1)
    labels = jnp.array([1, 2] * 4)
    state, metrics = one_sgd_step(g, d, objective, {"video": clips, "label": labels})

    # D before the update reads the real clips: their class among the real classes 0..2.
    read = jax.jit(lambda params: class_logits(d.apply({"params": params}, clips, labels)))
    logits = np.asarray(read(state.d_params))
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    true = np.asarray(labels)
    assert metrics["d/class_loss"] == pytest.approx(-log_p[np.arange(8), true].mean(), rel=1e-5)
    assert metrics["d/class_acc"] == pytest.approx(np.mean(logits[:, :3].argmax(-1) == true))
    # G's clips count as their fake class (3 + label) for D, with D's weight on both terms.
    assert metrics["d/fake_class_loss"] > 0
    assert metrics["d/total_loss"] == pytest.approx(
        metrics["d/loss"] + 0.5 * (metrics["d/class_loss"] + metrics["d/fake_class_loss"]),
        rel=1e-5,
    )
    # G's term, with its own weight: log p(fake class) - log p(real class), any sign.
    assert np.isfinite(metrics["g/class_loss"]) and 0 <= metrics["g/class_acc"] <= 1
    assert metrics["g/total_loss"] == pytest.approx(
        metrics["g/loss"] + metrics["g/class_loss"], rel=1e-5
    )


def test_gs_class_term_moves_its_clips_towards_the_real_class_of_their_label():
    """ADC-GAN's G term, log p(G's class) - log p(real class), lowered by G: with D frozen, G's
    clips of label c read more as real clips of c (logit c) than as G's (logit K + c)."""
    g = VideoGenerator(clip_shape=CLIP, z_dim=4, base_width=4, depth=2, norm="none", num_classes=3)
    d = VideoDiscriminator(
        clip_shape=CLIP, base_width=4, depth=2, norm="none", num_classes=3, classifier=True
    )
    # G's term weighs far more than its adversarial one; D's weight 0 and learning rate 0.
    objective = ClassConditional(num_classes=3, labels=(1, 2), g_classifier_weight=100.0)
    labels = jnp.array([1, 2] * 4)
    clips = jax.random.uniform(jax.random.key(5), (8, *CLIP), minval=-1, maxval=1)
    batch = {"video": clips, "label": labels}
    g_tx, d_tx = optax.sgd(0.2), optax.sgd(0.0)
    state = jax.jit(
        lambda k: create_state(k, g, d, g_tx, d_tx, objective=objective, example_batch=batch)
    )(jax.random.key(0))
    step = jax.jit(make_train_step(g, d, g_tx, d_tx, StepConfig(), objective=objective))
    z = {"z": jax.random.normal(jax.random.key(3), (8, 4))}

    @jax.jit
    def margin(g_params):  # mean logit(real class c) - logit(G's class c) of G's clips
        fake = g.apply({"params": g_params}, z, labels, train=False)
        logits = class_logits(d.apply({"params": state.d_params}, fake, labels, train=False))
        rows = jnp.arange(8)
        return jnp.mean(logits[rows, labels] - logits[rows, 3 + labels])

    before = margin(state.g_params)
    trained = state
    for i in range(5):
        trained = step(trained, batch, jax.random.key(i))[0]
    np.testing.assert_array_equal(
        jax.tree.leaves(trained.d_params)[0], jax.tree.leaves(state.d_params)[0]
    )
    after = margin(trained.g_params)
    assert after > before + 1e-3, (before, after)  # a flipped sign lowers it
