"""keep_freed_memory: freed host memory is reused, so a repeated large allocation stops
faulting in fresh pages (the effect XLA:CPU's per-step temporaries rely on)."""

import platform
import subprocess
import sys

import pytest

from gan_jax import cpu_memory

# Allocates, touches and frees a 256 MiB buffer a few times; prints the minor page faults
# of the last round. Run in a fresh process: the allocator policy is per process.
_PROBE = """
import ctypes, resource, sys
from gan_jax import cpu_memory
if sys.argv[1] == "keep":
    assert cpu_memory.keep_freed_memory()
libc = ctypes.CDLL(None)  # malloc/free as XLA:CPU calls them (no huge-page advice, unlike NumPy)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
size = 256 * 2**20  # far above glibc's mmap threshold
for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    buf = libc.malloc(size)
    ctypes.memset(buf, 1, size)
    libc.free(buf)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(faults)
"""

_GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def _last_round_faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], check=True, capture_output=True, text=True
    )
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not _GLIBC, reason="glibc's allocator only")
def test_keep_freed_memory_stops_repeated_page_faults():
    pages = 256 * 2**20 // 4096
    # glibc's default: each round maps fresh pages and unmaps them again.
    assert _last_round_faults("default") > pages // 2
    # With the policy set, the third round reuses the pages the first one faulted in.
    assert _last_round_faults("keep") < pages // 100


def test_keep_freed_memory_is_idempotent():
    first = cpu_memory.keep_freed_memory()
    assert cpu_memory.keep_freed_memory() == first == _GLIBC
