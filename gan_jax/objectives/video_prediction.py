"""Video prediction: from the first k frames of a clip, G generates the T - k frames that follow.

The article's encoder–decoder G with an MSE loss beside D's (Mathieu et al. 2016, MCnet 2017,
SAVP 2018): the regression term pulls the prediction towards the true future, the adversarial
term keeps it sharp instead of the blurred mean that MSE alone gives.

Config (`cfg.objective`):
    name = "video_prediction"
    context: k, the frames G sees (1 <= k < T).
    adversarial_weight: weight of G's adversarial loss (0 = the plain regression baseline; D
        still trains, so its accuracy shows how far the regression is from real motion).
    mse_weight: lambda, weight of the MSE on the future frames (0 = adversarial term alone).
    gdl_weight: weight of the gradient-difference loss (Mathieu et al. 2016): the mean squared
        difference of the image gradients' magnitudes, which rewards sharp edges.

Batches: `video` `[N, T, H, W, C]` is split into the context `[N, k, H, W, C]` (G's condition)
and the real future `[N, T - k, H, W, C]`. D judges context ++ future as one clip of T frames,
so the video families' discriminators serve unchanged (an image head judges single frames).
Samples and metrics show the whole clip (`clip`): the k real frames, then the predicted ones.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from ml_collections import config_dict

from gan_jax.config import Checker, ConfigError
from gan_jax.data.spec import DataSpec
from gan_jax.losses import mse_reconstruction

Context = jax.Array  # [N, k, H, W, C]


def gradient_difference(fake: jax.Array, real: jax.Array) -> jax.Array:
    """Gradient-difference loss (Mathieu et al. 2016, alpha = 2): mean over pixels of
    `(|d real| - |d fake|)^2` for the vertical and horizontal differences of each frame.

    Args:
        fake, real: `[N, F, H, W, C]`.
    """
    loss = jnp.zeros((), jnp.float32)
    for axis in (2, 3):
        d_real = jnp.abs(jnp.diff(real, axis=axis))
        d_fake = jnp.abs(jnp.diff(fake, axis=axis))
        loss = loss + jnp.mean(jnp.square(d_real - d_fake))
    return loss


@dataclasses.dataclass(frozen=True)
class VideoPrediction:
    """The prediction objective (see the module docstring and `gan_jax.objectives.base`).

    Attributes:
        context: k, the context frames.
        num_frames: T, the frames of a whole clip (context and future).
        adversarial_weight, mse_weight, gdl_weight: the weights of G's terms.
        data_key: the batch entry that holds the clips.
    """

    context: int
    num_frames: int
    adversarial_weight: float = 1.0
    mse_weight: float = 1.0
    gdl_weight: float = 0.0
    data_key: str = "video"
    conditions_from_data = True  # context frames come from real clips only

    @property
    def future(self) -> int:
        """T - k, the frames G predicts."""
        return self.num_frames - self.context

    def split(self, batch: dict[str, jax.Array]) -> tuple[Context, jax.Array]:
        if self.data_key not in batch:
            raise KeyError(f"batch has no {self.data_key!r} entry (keys: {sorted(batch)})")
        clips = batch[self.data_key]
        if clips.ndim != 5 or clips.shape[1] != self.num_frames:
            raise ValueError(
                f"video_prediction: clips must be [N, {self.num_frames}, H, W, C] (context "
                f"{self.context} + future {self.future}), got {tuple(clips.shape)}"
            )
        return clips[:, : self.context], clips[:, self.context :]

    def g_inputs(self, cond: Context) -> Context:
        return cond

    def d_inputs(self, samples: jax.Array, cond: Context) -> tuple[jax.Array, None]:
        return jnp.concatenate([cond.astype(samples.dtype), samples], axis=1), None

    def g_terms(self, fake: jax.Array, real: jax.Array, cond: Context) -> dict[str, jax.Array]:
        terms = {}
        if self.mse_weight:
            terms["mse"] = self.mse_weight * mse_reconstruction(real, fake)
        if self.gdl_weight:
            terms["gdl"] = self.gdl_weight * gradient_difference(fake, real)
        return terms

    def sample_cond(self, key: jax.Array, num: int) -> Context:
        raise ValueError(
            "video_prediction predicts from context frames of real clips: pass them as the "
            "sampler's cond (objective.split(batch)[0]), or use `gan-jax predict --video`"
        )

    def clip(self, samples: jax.Array, cond: Context) -> jax.Array:
        """`[N, T, H, W, C]`: the context frames followed by the predicted ones."""
        return jnp.concatenate([jnp.asarray(cond, samples.dtype), samples], axis=1)


def default_config() -> config_dict.ConfigDict:
    return config_dict.ConfigDict(
        {
            "name": "video_prediction",
            "context": 4,
            "adversarial_weight": 1.0,
            "mse_weight": 1.0,
            "gdl_weight": 0.0,
        }
    )


def validate(objective_cfg: config_dict.ConfigDict, spec: DataSpec) -> None:
    check = Checker(objective_cfg, "objective")
    check.only_keys(tuple(default_config().keys()))
    if not spec.is_video:
        raise ConfigError(
            f"objective.name='video_prediction' predicts frames of clips, but data.name="
            f"{spec.name!r} has samples of shape {spec.sample_shape}; use a video dataset"
        )
    num_frames = spec.sample_shape[0]
    context = check.integer("context", 1)
    if context >= num_frames:
        raise ConfigError(
            f"objective.context={context} must be smaller than data.num_frames={num_frames}: "
            f"the clip holds the context and at least one future frame"
        )
    weights = [check.number(key, 0.0) for key in ("adversarial_weight", "mse_weight")]
    check.number("gdl_weight", 0.0)
    if not any(weights):
        raise ConfigError(
            "objective.adversarial_weight and objective.mse_weight are both 0: G would learn "
            "nothing; set at least one > 0"
        )


def make_objective(objective_cfg: config_dict.ConfigDict, spec: DataSpec) -> VideoPrediction:
    return VideoPrediction(
        context=int(objective_cfg.context),
        num_frames=int(spec.sample_shape[0]),
        adversarial_weight=float(objective_cfg.adversarial_weight),
        mse_weight=float(objective_cfg.mse_weight),
        gdl_weight=float(objective_cfg.gdl_weight),
        data_key=spec.sample_key,
    )
