"""The matrix products of the fast CPU route, and the dtype of their operands for bf16 nets.

XLA:CPU runs a product of bf16 operands that accumulates and returns float32
(``preferred_element_type=float32``) on the AMX tiles of the Intel Xeons that have them
(``amx_bf16`` in the CPU's flags): measured on one, 680-820 GFLOP/s for a 4096^3 product and
150-500 for the video GAN's batched Winograd products, against 200-270 and 35-130 in float32
(timings on a shared machine that moved 2x from one minute to the next).
The same bf16 product returning bf16 ran no faster than float32 there. Without AMX (the AMD
EPYCs with AVX2 these sessions also get) bf16 was measured no faster than float32.

So a bf16 net (``dtype="bfloat16"``) on a CPU with AMX runs its convolutions' products on bf16
operands with float32 accumulation (``bf16_products``); the Winograd transforms stay float32
and only their outputs are rounded to bf16 for the product (``winograd``). Elsewhere the
products keep their operands' dtype, and bf16 Winograd convolutions run wholly in float32.
``GAN_JAX_BF16_PRODUCTS`` (``1`` or ``0``) overrides the choice; ``bf16_products_route``
sets it for a while (tests and benchmarks compare both in one process).
"""

import contextlib
import functools

import jax
import jax.numpy as jnp
from jax import lax

from gan_jax.ops import settings

ENV_VAR = "GAN_JAX_BF16_PRODUCTS"
_CHOICES = {"1": "bf16 operands with float32 accumulation", "0": "the operands' own dtype"}
_CPUINFO = "/proc/cpuinfo"


def cpu_flags(path: str = _CPUINFO) -> frozenset[str]:
    """The first processor's feature flags in ``path`` (Linux); empty where it is unreadable."""
    try:
        with open(path, encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "flags":
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


@functools.cache
def bf16_products() -> bool:
    """Whether bf16 convolutions of the fast route multiply bf16 operands into float32, decided
    on the first call of the process: the CPU reports ``amx_bf16``, unless
    ``GAN_JAX_BF16_PRODUCTS`` says otherwise. ``bf16_products.cache_clear()`` decides again.

    Raises:
        ValueError: if ``GAN_JAX_BF16_PRODUCTS`` holds a value other than 1 or 0.
    """
    override = settings.choice(ENV_VAR, _CHOICES)
    if override:
        return override == "1"
    return "amx_bf16" in cpu_flags()


@contextlib.contextmanager
def bf16_products_route(enabled: bool):
    """Within the block ``bf16_products()`` returns ``enabled``. It acts when a function is
    traced: jit what runs inside the block."""
    with settings.overridden(ENV_VAR, "1" if enabled else "0", bf16_products):
        yield


def operand_dtype(dtype) -> jnp.dtype | None:
    """bf16 when a conv of ``dtype`` runs its products on bf16 operands (``bf16_products``),
    else None (the operands' own dtype)."""
    return jnp.dtype(jnp.bfloat16) if jnp.dtype(dtype) == jnp.bfloat16 and bf16_products() else None


def dot(a: jax.Array, b: jax.Array, dimension_numbers, operands=None) -> jax.Array:
    """``lax.dot_general(a, b, dimension_numbers)``; with ``operands`` (bf16) both operands are
    rounded to it and the product accumulates and returns float32, cast back to ``a``'s dtype."""
    if operands is None:
        return lax.dot_general(a, b, dimension_numbers)
    out = lax.dot_general(
        a.astype(operands),
        b.astype(operands),
        dimension_numbers,
        preferred_element_type=jnp.float32,
    )
    return out.astype(a.dtype)
