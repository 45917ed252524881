"""The metric "label_accuracy": do a class-conditional run's clips show the class asked for?

For `class_conditional` runs on bouncing shapes, whose label is the number of objects: for each
class L of `objective.labels`, the EMA generator draws `eval.num_samples / len(labels)` clips of
label L, and the count head of the shapes feature network (`gan_jax.metrics.shapes_features`,
trained on the data's ground truth; the one `shapes_fd` uses, cached in the same place) reads
how many objects each shows. Reported: `accuracy` (mean over the classes), `accuracy_<L>`, and
beside them `real_accuracy`, the same classifier on real clips of the eval order against their
labels (what a perfect generator would score).
"""

from __future__ import annotations

import jax
import numpy as np

from gan_jax.metrics.registry import VIDEO, Metric
from gan_jax.metrics.shapes_fd import feature_net_missing, shapes_features_dir
from gan_jax.metrics.shapes_features import get_feature_params

_CHUNK = 64
_KEY_SALT = 0x1ABE1


def _label_accuracy(ctx) -> dict[str, float]:
    labels = tuple(int(label) for label in ctx.run.objective.labels)
    per_class = max(1, -(-ctx.num_samples // len(labels)))
    features = ctx.cached(
        "count_head",
        lambda: get_feature_params(
            shapes_features_dir(ctx.cfg, ctx.workdir),
            ctx.cfg.data,
            steps=int(ctx.cfg.eval.count_head_steps),
        ),
    )
    key = jax.random.fold_in(jax.random.key(ctx.seed), _KEY_SALT)
    out, accuracies = {}, []
    for label in labels:
        hits = 0
        for i, start in enumerate(range(0, per_class, _CHUNK)):
            n = min(_CHUNK, per_class - start)
            cond = np.full((n,), label, np.int32)
            clips = ctx.sampler(ctx.state, jax.random.fold_in(key, label * 10_000 + i), n, cond)
            hits += int((features.counts(clips) == label).sum())
        out[f"accuracy_{label}"] = hits / per_class
        accuracies.append(hits / per_class)
    out["accuracy"] = float(np.mean(accuracies))
    right = seen = 0
    for batch in ctx.data_batches(ctx.num_samples, _CHUNK):
        right += int((features.counts(batch[ctx.run.spec.sample_key]) == batch["label"]).sum())
        seen += len(batch["label"])
    out["real_accuracy"] = right / max(seen, 1)
    return out


def _missing(cfg, spec) -> str | None:
    if "labels" not in cfg.objective:
        return (
            f"it scores the classes of generated clips; objective.name={cfg.objective.name!r} "
            "takes none (train with objective.name='class_conditional')"
        )
    return feature_net_missing(cfg, spec)


METRIC = Metric(
    "label_accuracy",
    (VIDEO,),
    _label_accuracy,
    data_names=("bouncing_shapes",),
    missing=_missing,
)
