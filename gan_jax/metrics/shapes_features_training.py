"""Training program of the bouncing-shapes feature network (``gan_jax.metrics.shapes_features``).

From a clip's ground truth (``BouncingShapes.sample_scene``) it builds the targets of the
network's heads, trains them with Adam and measures the heads on held-out clips.
``shapes_features.get_feature_params`` runs ``train_feature_params`` on a cache miss;
``experiments/train_shapes_features.py`` runs it ahead of time.

Training is a pure function of ``FeatureNetSettings``: parameters from ``jax.random.key(seed)``,
step ``s`` sees examples ``[s * batch_size, (s + 1) * batch_size)`` of
``BouncingShapes(seed=data_seed)``, a fixed number of steps, and XLA on one CPU device is
deterministic, so the same settings give bitwise the same parameters. Held-out examples come
from the other end of the index range, disjoint from every training example.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax.data.bouncing_shapes import DISC, BouncingShapes
from gan_jax.metrics.shapes_net import (
    MAX_NOISE,
    NUM_COLOURS,
    REGRESSION_TARGETS,
    FeatureNetSettings,
    init_params,
    make_model,
)

logger = logging.getLogger(__name__)

# Regression targets that need motion: undefined (weight 0) for single frames.
_MOTION_TARGETS = ("vy", "vx", "y1", "x1", "speed")


# Scenes (ground truth only, no rendering) from which the regression targets' mean and standard
# deviation are estimated: cheap, and deterministic because they are the first training indices.
_NUM_STATS_SCENES = 2048


def target_stats(settings: FeatureNetSettings) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each raw regression target over present objects, ``[8]``.

    Standardising the targets gives every regression target the same weight in the loss (raw,
    velocities in pixels per frame would swamp sizes that vary by a few pixels).
    """
    dataset = settings.dataset()
    raw = make_raw_targets([dataset.sample_scene(i) for i in range(_NUM_STATS_SCENES)], settings)
    values = raw["per_colour"][raw["colours"] > 0.5]  # [objects, 8]
    mean = values.mean(axis=0)
    # A target that never varies (e.g. speed_range (2, 2) for the speed) keeps unit scale.
    std = np.where(values.std(axis=0) > 1e-6, values.std(axis=0), 1.0)
    return mean.astype(np.float32), std.astype(np.float32)


def make_raw_targets(scenes: list[dict], settings: FeatureNetSettings) -> dict[str, np.ndarray]:
    """Targets of a batch of ``BouncingShapes.sample_scene`` dicts, in physical units.

    Objects are indexed by colour (a clip never repeats a colour), which fixes the order of the
    per-object targets without any matching.

    Returns:
      ``count`` int32 [N]; ``colours`` float32 [N, 8] (1 = present); ``per_colour`` float32
      [N, 8, 8] (``REGRESSION_TARGETS``: pixels per frame and pixels, positions relative to
      the frame centre; zeros for absent colours); ``disc`` float32 [N, 8].
    """
    num = len(scenes)
    present = np.zeros((num, NUM_COLOURS), np.float32)
    per_colour = np.zeros((num, NUM_COLOURS, len(REGRESSION_TARGETS)), np.float32)
    disc = np.zeros((num, NUM_COLOURS), np.float32)
    centre = np.array([settings.height, settings.width], np.float32) / 2.0
    for i, scene in enumerate(scenes):
        mask = scene["object_mask"]
        colours = scene["colour_ids"][mask]
        velocity = scene["velocities"][mask]
        present[i, colours] = 1.0
        per_colour[i, colours, 0:2] = velocity
        per_colour[i, colours, 2:4] = scene["positions"][0, mask] - centre
        per_colour[i, colours, 4:6] = scene["positions"][-1, mask] - centre
        per_colour[i, colours, 6] = scene["sizes"][mask]
        per_colour[i, colours, 7] = np.linalg.norm(velocity, axis=-1)
        disc[i, colours] = (scene["shape_kinds"][mask] == DISC).astype(np.float32)
    return {
        "count": np.array([scene["label"] for scene in scenes], np.int32),
        "colours": present,
        "per_colour": per_colour,
        "disc": disc,
    }


def load_batch(
    dataset: BouncingShapes,
    indices,
    settings: FeatureNetSettings,
    stats,
    noisy_fraction: float = 0.0,
) -> tuple[np.ndarray, dict]:
    """Renders clips ``[N, T, H, W, C]`` and their training targets for dataset indices.

    Args:
      dataset: the source.
      indices: which examples.
      settings: the network settings.
      stats: ``target_stats(settings)``; the regression targets are standardised with them.
      noisy_fraction: probability that a clip gets pixel noise (see ``FeatureNetSettings``);
        which clips and how much depend only on (``data_seed``, index).

    Returns:
      ``(clips, targets)``; targets as ``make_raw_targets`` (regressions standardised) plus
      ``noise`` float32 [N], the added noise's standard deviation / ``MAX_NOISE``.
    """
    indices = [int(i) for i in indices]
    examples = [dataset[i] for i in indices]
    clips = np.stack([example["video"] for example in examples])
    targets = make_raw_targets(examples, settings)
    mean, std = stats
    # Absent colours stay at 0: they are masked out of the loss anyway.
    present = targets["colours"][:, :, None]
    targets["per_colour"] = (targets["per_colour"] - mean) / std * present
    targets["noise"] = np.zeros(len(indices), np.float32)
    if noisy_fraction > 0:
        for row, index in enumerate(indices):
            rng = np.random.default_rng([settings.data_seed, index, 0x0153])
            if rng.random() < noisy_fraction:
                level = rng.random()
                noise = rng.standard_normal(clips.shape[1:], np.float32) * (level * MAX_NOISE)
                clips[row] = np.clip(clips[row] + noise, -1.0, 1.0)
                targets["noise"][row] = level
    return clips, targets


def _regression_weights(settings: FeatureNetSettings) -> np.ndarray:
    """Weight of each regression target: motion targets are undefined for single frames."""
    weights = np.ones(len(REGRESSION_TARGETS), np.float32)
    if settings.num_frames == 1:
        for name in _MOTION_TARGETS:
            weights[REGRESSION_TARGETS.index(name)] = 0.0
    return weights


# Weight of the noise head's MSE. Its target, a level in [0, 1] that is 0 for most clips, has a
# variance near 0.07: unweighted, its gradient is drowned by the scene heads' and it learns
# nothing (held-out error no better than always answering 0); 10 learns it without slowing
# the scene heads much (30 did: colour-set accuracy fell from 0.63 to 0.14 at 600 steps).
_NOISE_WEIGHT = 10.0


def _loss(model, settings, params, clips, targets):
    """Sum of the heads' losses: CE (count), BCE summed over the 8 colours, BCE (disc, per
    present object), squared error of the standardised per-colour targets summed over targets
    (per present object), weighted MSE (noise)."""
    _, heads = model.apply({"params": params}, clips)
    count = optax.softmax_cross_entropy_with_integer_labels(heads["count"], targets["count"])
    colours = optax.sigmoid_binary_cross_entropy(heads["colours"], targets["colours"])
    present = targets["colours"]
    num_present = jnp.maximum(jnp.sum(present), 1.0)
    # Targets of absent colours are zeros that mean nothing: mask them out.
    weights = jnp.asarray(_regression_weights(settings))
    squared = jnp.square(heads["per_colour"] - targets["per_colour"]) * weights[None, None, :]
    regression = jnp.sum(jnp.sum(squared, axis=-1) * present) / num_present
    disc = optax.sigmoid_binary_cross_entropy(heads["disc"], targets["disc"])
    disc = jnp.sum(disc * present) / num_present
    losses = {
        "count": jnp.mean(count),
        "colours": jnp.mean(jnp.sum(colours, axis=-1)),
        "per_colour": regression,
        "disc": disc,
        "noise": _NOISE_WEIGHT * jnp.mean(jnp.square(heads["noise"] - targets["noise"])),
    }
    return sum(losses.values()), losses


def train_feature_params(settings: FeatureNetSettings) -> tuple[dict, dict[str, float]]:
    """Trains the network for ``settings`` (a pure function of them).

    Returns:
      ``(params, report)``: the Flax params (numpy), and held-out metrics (see
      ``heldout_metrics``) plus ``train_seconds``.
    """
    start_time = time.perf_counter()
    model = make_model(settings)
    dataset = settings.dataset()
    stats = target_stats(settings)
    batch = settings.batch_size
    params = init_params(settings)
    warmup = max(1, settings.steps // 20)
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, settings.learning_rate, warmup, max(settings.steps, warmup + 1)
    )
    optimiser = optax.adam(schedule)
    opt_state = optimiser.init(params)

    @jax.jit
    def train_step(params, opt_state, clips, targets):
        grads, losses = jax.grad(lambda p: _loss(model, settings, p, clips, targets), has_aux=True)(
            params
        )
        updates, opt_state = optimiser.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, losses

    def load_step(step: int):
        indices = range(step * batch, (step + 1) * batch)
        return load_batch(dataset, indices, settings, stats, settings.noisy_fraction)

    # Rendering is numpy on the host; one thread renders the next batch while XLA runs this one.
    # Batch contents depend only on the step, so the overlap does not change the result.
    log_every = max(1, settings.steps // 10)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(load_step, 0)
        for step in range(settings.steps):
            clips, targets = pending.result()
            if step + 1 < settings.steps:
                pending = pool.submit(load_step, step + 1)
            params, opt_state, losses = train_step(params, opt_state, clips, targets)
            if (step + 1) % log_every == 0:
                logger.info(
                    "shapes features %s: step %d/%d, losses %s",
                    "x".join(map(str, settings.clip_shape)),
                    step + 1,
                    settings.steps,
                    ", ".join(f"{k} {float(v):.3f}" for k, v in losses.items()),
                )
    params = jax.tree.map(np.asarray, jax.device_get(params))
    report = heldout_metrics(params, settings)
    report["train_seconds"] = time.perf_counter() - start_time
    return params, report


def heldout_metrics(params, settings: FeatureNetSettings, batch_size: int = 128) -> dict:
    """Accuracy of the heads on ``num_heldout`` clips never used for training.

    Returns:
      dict of floats: ``count_accuracy`` and ``chance_count_accuracy`` (always guessing the
      most frequent count); ``colour_label_accuracy`` (each of the 8 colours, present or not)
      and ``colour_set_accuracy`` (all 8 right); ``disc_accuracy`` (square or disc, present
      objects); ``position_rmse`` (first and last frame) and ``size_mae``, pixels. With T > 1
      also ``velocity_rmse``, ``speed_mae`` (pixels per frame, per object) and ``velocity_r2``
      (1 - MSE / variance of the true velocity components). ``noise_mae``: error of the noise
      head on the same clips, each with pixel noise of a random standard deviation in [0,
      MAX_NOISE] (in those units). Everything else is measured on clean clips.
    """
    model = make_model(settings)
    dataset = settings.dataset()
    stats = target_stats(settings)
    first = len(dataset) - settings.num_heldout
    apply = jax.jit(lambda p, x: model.apply({"params": p}, x)[1])

    def run(noisy_fraction):
        outputs, all_targets = [], []
        for start in range(first, len(dataset), batch_size):
            indices = range(start, min(start + batch_size, len(dataset)))
            clips, targets = load_batch(dataset, indices, settings, stats, noisy_fraction)
            outputs.append(jax.device_get(apply(params, clips)))
            all_targets.append(targets)
        heads = {k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]}
        targets = {k: np.concatenate([t[k] for t in all_targets]) for k in all_targets[0]}
        return heads, targets

    noisy_heads, noisy_targets = run(1.0)
    noise_mae = float(np.mean(np.abs(noisy_heads["noise"] - noisy_targets["noise"]))) * MAX_NOISE
    heads, targets = run(0.0)
    present = targets["colours"] > 0.5
    mean, std = stats
    # Back to pixels (per frame); only present objects are scored.
    predicted = heads["per_colour"][present] * std + mean  # [objects, 8]
    truth = targets["per_colour"][present] * std + mean
    errors = predicted - truth
    columns = {name: i for i, name in enumerate(REGRESSION_TARGETS)}

    def rmse(names):
        return float(np.sqrt(np.mean(np.square(errors[:, [columns[n] for n in names]]))))

    counts = np.bincount(targets["count"], minlength=settings.num_objects[1] + 1)
    colour_right = (heads["colours"] > 0) == present
    metrics = {
        "count_accuracy": float(np.mean(np.argmax(heads["count"], -1) == targets["count"])),
        "chance_count_accuracy": float(counts.max() / counts.sum()),
        "colour_label_accuracy": float(np.mean(colour_right)),
        "colour_set_accuracy": float(np.mean(np.all(colour_right, axis=-1))),
        "disc_accuracy": float(
            np.mean((heads["disc"][present] > 0) == (targets["disc"][present] > 0.5))
        ),
        "position_rmse": rmse(["y0", "x0", "y1", "x1"]),
        "size_mae": float(np.mean(np.abs(errors[:, columns["size"]]))),
        "noise_mae": noise_mae,
    }
    if settings.num_frames > 1:
        velocity = truth[:, [columns["vy"], columns["vx"]]]
        variance = float(np.mean(np.square(velocity - velocity.mean(axis=0))))
        metrics["velocity_rmse"] = rmse(["vy", "vx"])
        metrics["velocity_r2"] = 1.0 - metrics["velocity_rmse"] ** 2 / max(variance, 1e-12)
        metrics["speed_mae"] = float(np.mean(np.abs(errors[:, columns["speed"]])))
    return metrics
