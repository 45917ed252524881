"""Keep freed host memory in the process, so XLA:CPU steps stop paying page faults.

XLA:CPU allocates each step's temporaries (patch matrices, activations: hundreds of MiB for
a video GAN) with ``malloc`` and frees them when the step ends. glibc serves blocks above its
mmap threshold with fresh ``mmap`` calls and returns them with ``munmap``, so every step
touches new pages: measured here, 0.3 M minor page faults (0.8 s of kernel time) per
16x32x32 batch-32 step and 1 M (3.3 s) at 64x64, about 15-20% of the step. Telling glibc to
serve every block from its heap and never trim it keeps those pages mapped between steps;
the process then holds its peak memory, which a training job does anyway.

The call is Linux/glibc only and is a no-op elsewhere (macOS, musl, or when the allocator is
not glibc's). It changes the allocator's policy for the whole process, so the `gan-jax`
command calls it once at start-up (on any backend: host buffers elsewhere are small); a user's
own training loop may do the same.
"""

import ctypes
import ctypes.util
import functools
import platform

# mallopt parameter numbers from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
# Never give freed heap memory back to the kernel. glibc converts mallopt's int to size_t, so
# -1 is SIZE_MAX; the largest positive int (2 GiB) is too small: a 64x64 video step's free
# heap top passes it and glibc then shrinks the heap with brk every step.
_NEVER_TRIM = -1


@functools.cache
def _glibc():
    """The process's glibc, or None where the C library is something else."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt  # noqa: B018  (raises AttributeError on a libc without it)
    except (OSError, AttributeError):
        return None
    libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    libc.mallopt.restype = ctypes.c_int
    return libc


def keep_freed_memory() -> bool:
    """Makes glibc keep freed blocks for reuse instead of unmapping them.

    Sets M_MMAP_MAX=0 (no block gets its own mapping), M_TRIM_THRESHOLD to the maximum (the
    heap is never shrunk) and M_ARENA_MAX=1 (XLA's worker threads share one heap, so a block
    freed by one thread is reused by the next step's allocation in another). Safe to call
    more than once; affects allocations made after the call.

    Returns:
        True if glibc accepted all three settings, False where this is not glibc (nothing
        changed) or it refused one.
    """
    libc = _glibc()
    if libc is None:
        return False
    settings = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _NEVER_TRIM))
    # mallopt returns 1 on success, 0 on error.
    return all([libc.mallopt(param, value) == 1 for param, value in settings])
