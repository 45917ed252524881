"""Process-wide choices of the convolution routes, read from the environment once and cached.

``choice(var, allowed)`` reads and checks one of them (``GAN_JAX_CONV_IMPL``,
``GAN_JAX_CONV_MEMORY``, ``GAN_JAX_BF16_PRODUCTS``), so that all three accept blanks and reject
other values alike. ``overridden(var, value, decision)`` sets one for a while: for benchmarks
and tests that compare the choices in one process.
"""

import contextlib
import os
from collections.abc import Mapping


def choice(var: str, allowed: Mapping[str, str]) -> str | None:
    """The value of the environment variable ``var``, stripped; None where it is unset or blank.

    Args:
        var: the variable's name.
        allowed: each accepted value -> what it selects, for the error message.

    Raises:
        ValueError: naming ``var``, its value and every accepted value, if it holds another.
    """
    value = os.environ.get(var, "").strip()
    if not value:
        return None
    if value not in allowed:
        options = ", ".join(f"{name!r} ({what})" for name, what in allowed.items())
        raise ValueError(
            f"environment variable {var}={value!r} is invalid; set it to one of {options}, "
            "or unset it."
        )
    return value


@contextlib.contextmanager
def overridden(var: str, value: str, decision):
    """Within the block the environment variable ``var`` holds ``value`` and the cached
    ``decision`` (a ``functools.cache``'d function that reads it) decides again; both are put
    back after. It acts when a function is traced: jit what runs inside the block."""
    previous = os.environ.get(var)
    os.environ[var] = value
    decision.cache_clear()
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = previous
        decision.cache_clear()
