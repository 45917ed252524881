"""Class-conditional generation: G makes a clip of a given class, D judges clip and class.

Config (`cfg.objective`):
    name = "class_conditional"
    labels: the classes `sample_cond` draws from when no label is given (samples during
        training, `gan-jax sample` without `--label`, evaluation); () = every class of the data
        (0 .. num_classes - 1). Bouncing shapes' label is the number of objects, so with
        `data.num_objects = (1, 3)` set `labels = (1, 2, 3)`: 0 never occurs in its clips.
    d_classifier_weight: > 0 adds to D's loss the class cross-entropy, on real clips, of the
        classifier a projection D implies (as P2GAN, Han et al. 2021): the softmax over
        `labels` of D's logits of a clip under each label (D's label-free part cancels), so D
        learns the classes from real data alone. One more D pass per class and update: for a
        few classes. Logged as d/class_loss, d/class_acc.
    g_classifier_weight: > 0 adds the same cross-entropy on G's clips to G's loss (AC-GAN's
        direct push towards the class asked for; logged as g/class_loss, g/class_acc). G
        learns to fool that classifier with clips no longer realistic when it weighs much
        (see experiments/configs/shapes_class_conditional.py); 0 = adversarial terms alone.
    With `d.classifier = True` the two weights train D's own classifier head instead (ADC-GAN,
    Hou et al. 2022): it has 2K classes, real clips of each class and G's clips of each class;
    D's term is the cross-entropy of real clips as their class plus G's clips as G's class of
    their label (logged as d/class_loss, d/fake_class_loss, d/class_acc), G's term is log p(G's
    class) - log p(real class) of its clips. No extra D pass; on bouncing shapes it read fewer
    clips right than the implied classifier (see shapes_class_conditional.py).

Batches: `label` `[N]` (int32: `video_folder`'s class sub-folders, bouncing shapes' object count)
is the condition of G and D; the samples are the dataset's sample entry. The nets take the
label as `cond`: G through a class embedding, D through a projection head (Miyato & Koyama
2018), in the families that offer them (`g.conditional = True`, `d.conditional = True`).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from ml_collections import config_dict

from gan_jax.config import Checker, ConfigError
from gan_jax.data.spec import DataSpec

LABEL_KEY = "label"
CONDITIONS_ON_LABELS = True  # G and D take the labels: build checks their `conditional` keys


@dataclasses.dataclass(frozen=True)
class ClassConditional:
    """The class-conditional objective (see the module docstring and `gan_jax.objectives.base`).

    Attributes:
        num_classes: the data's number of classes.
        labels: the classes `sample_cond` draws from, uniformly.
        d_classifier_weight, g_classifier_weight: weights of the class cross-entropy of D's
            implied classifier for D (real clips) and G (its clips); see the module docstring.
        data_key: the batch entry that holds the samples.
    """

    num_classes: int
    labels: tuple[int, ...]
    data_key: str = "video"
    d_classifier_weight: float = 0.0
    g_classifier_weight: float = 0.0
    conditions_from_data = False  # a label can be drawn without data

    def split(self, batch: dict[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
        if LABEL_KEY not in batch:
            raise KeyError(
                f"batch has no {LABEL_KEY!r} entry (keys: {sorted(batch)}): class-conditional "
                "training needs labelled data (video_folder with class sub-folders, or "
                "bouncing_shapes)"
            )
        return batch[LABEL_KEY].astype(jnp.int32), batch[self.data_key]

    def g_inputs(self, cond: jax.Array) -> jax.Array:
        return cond

    def d_inputs(self, samples: jax.Array, cond: jax.Array) -> tuple[jax.Array, jax.Array]:
        return samples, cond

    def g_terms(self, fake: jax.Array, real: jax.Array, cond: jax.Array) -> dict[str, jax.Array]:
        return {}

    def sample_cond(self, key: jax.Array, num: int) -> jax.Array:
        """`[num]` int32 labels drawn uniformly from `labels`."""
        return jax.random.choice(key, jnp.asarray(self.labels, jnp.int32), (num,))

    def clip(self, samples: jax.Array, cond: jax.Array) -> jax.Array:
        return samples


def default_config() -> config_dict.ConfigDict:
    return config_dict.ConfigDict(
        {
            "name": "class_conditional",
            "labels": (),
            "d_classifier_weight": 0.0,
            "g_classifier_weight": 0.0,
        }
    )


def _labels(objective_cfg: config_dict.ConfigDict, spec: DataSpec) -> tuple[int, ...]:
    labels = tuple(int(label) for label in objective_cfg.labels)
    return labels or tuple(range(spec.num_classes))


def validate(objective_cfg: config_dict.ConfigDict, spec: DataSpec) -> None:
    check = Checker(objective_cfg, "objective")
    check.only_keys(tuple(default_config().keys()))
    if not spec.num_classes or LABEL_KEY not in spec.keys:
        raise ConfigError(
            f"objective.name='class_conditional' needs labelled data, but data.name="
            f"{spec.name!r} yields no labels here; use video_folder with one sub-folder per "
            "class, or bouncing_shapes (label = number of objects)"
        )
    for key in ("d_classifier_weight", "g_classifier_weight"):
        if key in objective_cfg:
            check.number(key, 0.0)
    labels = check.value("labels", (tuple, list))
    bad = [
        label for label in labels if not isinstance(label, int) or not 0 <= label < spec.num_classes
    ]
    if bad:
        raise ConfigError(
            f"objective.labels={tuple(labels)}: {bad[0]!r} is no class of data.name="
            f"{spec.name!r}, whose labels are 0 .. {spec.num_classes - 1}"
        )


def make_objective(objective_cfg: config_dict.ConfigDict, spec: DataSpec) -> ClassConditional:
    return ClassConditional(
        num_classes=int(spec.num_classes),
        labels=_labels(objective_cfg, spec),
        data_key=spec.sample_key,
        # .get: runs saved before these keys existed trained without the terms
        d_classifier_weight=float(objective_cfg.get("d_classifier_weight", 0.0)),
        g_classifier_weight=float(objective_cfg.get("g_classifier_weight", 0.0)),
    )
