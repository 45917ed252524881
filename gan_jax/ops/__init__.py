"""Convolution kernels of the video models, without Flax.

* ``conv``: the public ``conv`` / ``conv_transpose`` and the choice of their route ("lax" or
  "fast", by backend; ``GAN_JAX_CONV_IMPL`` overrides it).
* ``fast``: the CPU route's plan per conv: crops, edge splits, Winograd or im2col products
  (``GAN_JAX_CONV_MEMORY=low`` keeps Winograd to the convs of many tiles, for less memory).
* ``im2col``: a block conv as one matrix product, its adjoint (col2im) and kernel gradient.
* ``winograd``: block convs with two taps per dim as Winograd F(2, 2) / F(4, 2) products.
* ``products``: their matrix products, and the dtype of their operands for bf16 nets (bf16
  accumulated in float32 on CPUs with AMX; ``GAN_JAX_BF16_PRODUCTS`` overrides it).
* ``blocks``: space-to-depth layout shared by the above.
* ``settings``: the environment overrides of those choices, set for a while.
"""
