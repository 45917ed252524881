"""Process-wide choices of the convolution routes, read from the environment once and cached.

``overridden(var, value, decision)`` sets one for a while: for benchmarks and tests that
compare the choices in one process.
"""

import contextlib
import os


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
